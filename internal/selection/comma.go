package selection

import "strings"

// commaSyntax is the grammar of one comma-form item, quoted in errors so that a
// user sees what would have been accepted.
const commaSyntax = "want [namespace/]name[@interface]"

// parseComma parses the comma-delimited form, extended as upstream
// Multus does with an optional "@interface" suffix. Empty items, as left by a
// trailing comma, are skipped; the index in errors counts only the items kept,
// so it matches the position the element would have had in the result.
func parseComma(value, defaultNamespace string) ([]Element, error) {
	var elements []Element
	for item := range strings.SplitSeq(value, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		e, err := parseCommaItem(len(elements), item, defaultNamespace)
		if err != nil {
			return nil, err
		}
		elements = append(elements, e)
	}
	return elements, nil
}

// parseCommaItem parses one trimmed, non-empty item of the comma form.
func parseCommaItem(index int, item, defaultNamespace string) (Element, error) {
	invalid := func(field, value, reason, req string) *InvalidError {
		return &InvalidError{Index: index, Field: field, Value: value, Reason: reason, Requirement: req}
	}
	if strings.Count(item, "@") > 1 {
		return Element{}, invalid("", item, "has more than one '@'; "+commaSyntax, reqComma)
	}
	network, ifname, hasInterface := strings.Cut(item, "@")
	if strings.Count(network, "/") > 1 {
		return Element{}, invalid("", item, "has more than one '/'; "+commaSyntax, reqComma)
	}
	e := Element{Namespace: defaultNamespace}
	if ns, name, ok := strings.Cut(network, "/"); ok {
		if r := labelReason(ns); r != "" {
			return Element{}, invalid("namespace", ns, r, reqLabel)
		}
		e.Namespace, e.Name = ns, name
	} else {
		e.Name = network
	}
	if r := labelReason(e.Name); r != "" {
		return Element{}, invalid("name", e.Name, r, reqLabel)
	}
	if hasInterface {
		if r := interfaceReason(ifname); r != "" {
			err := invalid("interface", ifname, r, reqInterface)
			err.Network = e.Ref()
			return Element{}, err
		}
		e.Interface = ifname
	}
	return e, nil
}
