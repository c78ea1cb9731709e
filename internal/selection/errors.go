package selection

import (
	"fmt"
	"strings"
)

// Requirement numbers of the standard cited by errors, kept in one place so a
// typo cannot make an error point at the wrong section.
const (
	reqLabel        = "R-3.3"
	reqComma        = "R-4.1.1"
	reqJSON         = "R-4.1.2"
	reqName         = "R-4.1.2.1.1"
	reqNamespace    = "R-4.1.2.1.2"
	reqIPs          = "R-4.1.2.1.3"
	reqMAC          = "R-4.1.2.1.4"
	reqInterface    = "R-4.1.2.1.5"
	reqCNIArgs      = "R-4.1.2.1.6"
	reqPortMappings = "R-4.1.2.1.7"
	reqBandwidth    = "R-4.1.2.1.8"
	reqDefaultRoute = "R-4.1.2.1.9"
	reqGUID         = "R-4.1.2.1.10"
	reqClaim        = "R-4.1.2.1.11"
)

// InvalidError reports that the annotation is invalid as the standard defines
// it. The standard says an implementation SHALL ignore an invalid annotation;
// Parse leaves that decision to the caller, which may prefer to fail the pod
// loudly, and gives it enough structure to explain the problem to a user.
type InvalidError struct {
	// Index is the 0-based position of the faulty element, or -1 when the whole
	// value is at fault (for example when it is not valid JSON).
	Index int
	// Network is "namespace/name" of the faulty element when it is known.
	Network string
	// Field is the JSON key at fault, with a path for keys nested in an object
	// ("portMappings[1].protocol", "bandwidth.ingressBurst"), or "" for a
	// syntax problem.
	Field string
	// Value is the offending value; it is printed with %q and may be "".
	Value string
	// Reason says what is wrong and what is allowed.
	Reason string
	// Requirement is the section of the standard that is violated, e.g.
	// "R-4.1.2.1.3".
	Requirement string
}

// Error returns a one-line message naming the element, the network, the field,
// the value and the requirement, in that order, omitting what is unknown.
func (e *InvalidError) Error() string {
	parts := []string{"networks annotation"}
	if where := elementPart(e.Index, e.Network); where != "" {
		parts = append(parts, where)
	}
	if e.Field != "" {
		parts = append(parts, fmt.Sprintf("field %q", e.Field))
	}
	what := e.Reason
	if e.Value != "" {
		what = fmt.Sprintf("%q %s", e.Value, e.Reason)
	}
	parts = append(parts, what)
	return strings.Join(parts, ": ") + requirementPart(e.Requirement)
}

// ConflictError reports an element that combines keys which the standard says
// MUST result in an error rather than be ignored: "ips" together with
// "ipam-claim-reference" (R-4.1.2.1.11). It is a distinct type so that a caller
// that ignores invalid annotations still fails on a conflict.
type ConflictError struct {
	// Index is the 0-based position of the element.
	Index int
	// Network is "namespace/name" of the element.
	Network string
	// Fields are the JSON keys that must not be combined.
	Fields []string
	// Requirement is the section of the standard that is violated.
	Requirement string
}

// Error returns a one-line message naming the element, the network, the
// conflicting keys and the requirement.
func (e *ConflictError) Error() string {
	quoted := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		quoted[i] = fmt.Sprintf("%q", f)
	}
	parts := []string{"networks annotation"}
	if where := elementPart(e.Index, e.Network); where != "" {
		parts = append(parts, where)
	}
	parts = append(parts, "fields "+strings.Join(quoted, " and ")+" must not be used together")
	return strings.Join(parts, ": ") + requirementPart(e.Requirement)
}

// elementPart formats the element index and network, or returns "" when the
// whole value is at fault.
func elementPart(index int, network string) string {
	if index < 0 {
		return ""
	}
	if network == "" {
		return fmt.Sprintf("element %d", index)
	}
	return fmt.Sprintf("element %d (network %q)", index, network)
}

// requirementPart formats the requirement suffix, or returns "" when none is
// cited (for upstream extension keys that the standard does not define).
func requirementPart(req string) string {
	if req == "" {
		return ""
	}
	return " (" + req + ")"
}
