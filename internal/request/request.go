// Package request is the typed form of one CNI invocation: the command, the CNI_*
// environment, the Kubernetes pod named in CNI_ARGS, and the stdin config. It is
// built once at the edge (the thin plugin's process environment, or the daemon's
// request body) and passed down by value, so nothing below ever reads an
// environment of its own.
package request

import (
	"unicode/utf8"

	"fmt"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/pkg/utils"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/podnet"
)

// CNI commands, the values of CNI_COMMAND: the one definition in the project
// (the CNI library exports none). Version is answered by the process boundary
// (package plugin) and never becomes a Request.
const (
	Add     = "ADD"
	Del     = "DEL"
	Check   = "CHECK"
	Status  = "STATUS"
	GC      = "GC"
	Version = "VERSION"
)

// Commands are the commands that make a Request, in the spec's order.
var Commands = []string{Add, Del, Check, Status, GC}

// Request is one CNI invocation.
type Request struct {
	Command     string
	ContainerID string
	// NetNS is CNI_NETNS; DEL may come without it (the sandbox is gone).
	NetNS  string
	IfName string
	// Path is CNI_PATH, split.
	Path []string
	// Args are all CNI_ARGS pairs, in order.
	Args Args
	// Pod is named by K8S_POD_NAMESPACE, K8S_POD_NAME and K8S_POD_UID.
	Pod podnet.PodRef
	// Config is the stdin configuration, exactly as received.
	Config []byte
}

// HasPod reports whether CNI_ARGS name a Kubernetes pod.
func (r *Request) HasPod() bool { return r.Pod.Namespace != "" && r.Pod.Name != "" }

// Error says a CNI variable is missing or malformed; the boundary reports it with
// CNI code 4 (invalid environment variables).
type Error struct {
	Var    string
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Var, e.Reason) }

// required lists the variables each command needs, per the CNI spec: DEL may lack
// CNI_NETNS, STATUS and GC concern no container.
var required = map[string][]string{
	Add:    {"CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"},
	Check:  {"CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"},
	Del:    {"CNI_CONTAINERID", "CNI_IFNAME"},
	Status: nil,
	GC:     nil,
}

// FromEnv builds the request of command from a CNI environment and stdin.
func FromEnv(command string, getenv func(string) string, stdin []byte) (*Request, error) {
	need, ok := required[command]
	if !ok {
		return nil, &Error{Var: "CNI_COMMAND", Reason: fmt.Sprintf("%q is not one of %s", command, strings.Join(Commands, ", "))}
	}
	for _, v := range need {
		if getenv(v) == "" {
			return nil, &Error{Var: v, Reason: "required for " + command + " but not set"}
		}
	}
	args, err := ParseArgs(getenv("CNI_ARGS"))
	if err != nil {
		return nil, err
	}
	r := &Request{
		Command:     command,
		ContainerID: getenv("CNI_CONTAINERID"),
		NetNS:       getenv("CNI_NETNS"),
		IfName:      getenv("CNI_IFNAME"),
		Args:        args,
		Config:      stdin,
	}
	if r.ContainerID != "" && !validContainerID(r.ContainerID) {
		return nil, &Error{Var: "CNI_CONTAINERID", Reason: fmt.Sprintf("%q must be alphanumeric, '-', '_' or '.', starting alphanumeric", r.ContainerID)}
	}
	if r.IfName != "" {
		if err := validIfName(r.IfName); err != nil {
			return nil, err
		}
	}
	for _, p := range filepath.SplitList(getenv("CNI_PATH")) {
		if p != "" {
			r.Path = append(r.Path, p)
		}
	}
	r.Pod.Namespace, _ = args.Get("K8S_POD_NAMESPACE")
	r.Pod.Name, _ = args.Get("K8S_POD_NAME")
	r.Pod.UID, _ = args.Get("K8S_POD_UID")
	return r, nil
}

// validIfName applies the CNI library's interface name rule (what skel
// enforces for every plugin) and requires UTF-8, so the name survives the
// JSON of records and network-status unchanged.
func validIfName(name string) error {
	if !utf8.ValidString(name) {
		return &Error{Var: "CNI_IFNAME", Reason: fmt.Sprintf("%q is not UTF-8", name)}
	}
	if err := utils.ValidateInterfaceName(name); err != nil {
		return &Error{Var: "CNI_IFNAME", Reason: fmt.Sprintf("%q: %s", name, strings.TrimSpace(err.Msg+" "+err.Details))}
	}
	return nil
}

// validContainerID follows the CNI spec's container ID rule; it also keeps the ID
// safe to use in file names of the attachment store.
func validContainerID(id string) bool {
	for i, c := range id {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || !strings.ContainsRune("-_.", c)) {
			return false
		}
	}
	return id != ""
}

// Args are CNI_ARGS pairs in order.
type Args [][2]string

// ParseArgs parses CNI_ARGS, "K1=V1;K2=V2". This is the one parser of CNI_ARGS in
// the project. A value may itself contain '=' (only the first one splits), unlike
// upstream's daemon, which rejects such pairs; empty items are skipped.
func ParseArgs(s string) (Args, error) {
	var out Args
	for _, item := range strings.Split(s, ";") {
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		if !ok || k == "" {
			return nil, &Error{Var: "CNI_ARGS", Reason: fmt.Sprintf("item %q is not KEY=VALUE", item)}
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// Get returns the value of the first pair with key.
func (a Args) Get(key string) (string, bool) {
	for _, kv := range a {
		if kv[0] == key {
			return kv[1], true
		}
	}
	return "", false
}

// String encodes the pairs as CNI_ARGS.
func (a Args) String() string {
	parts := make([]string, len(a))
	for i, kv := range a {
		parts[i] = kv[0] + "=" + kv[1]
	}
	return strings.Join(parts, ";")
}

// CNICode reports the CNI code of a bad environment (4).
func (e *Error) CNICode() uint { return cnicode.InvalidEnvironment }
