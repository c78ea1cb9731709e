package request

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParseArgs reads whatever CNI_ARGS holds. Properties: ParseArgs never
// panics; a refusal is an *Error about CNI_ARGS; accepted pairs have a key
// without '=' and neither part holds ';'; and the pairs round-trip: their
// String parses back to the same pairs, which is the input without its empty
// items.
func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{
		"IgnoreUnknown=1;K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns-5d78c9869d-x2x7c;K8S_POD_INFRA_CONTAINER_ID=8f1e0c2b;K8S_POD_UID=5e0a8c0e-7d1f-4a47-9b1a-2f0b3c9e1d11",
		"X=a=b;;Y=", "", ";", "K8S_POD_NAME", "=v", "a=1;a=2", "K=\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args, err := ParseArgs(s)
		if err != nil {
			var re *Error
			if !errors.As(err, &re) || re.Var != "CNI_ARGS" || args != nil {
				t.Fatalf("ParseArgs(%q) refused with %v (%T) and %v; want an *Error about CNI_ARGS alone", s, err, err, args)
			}
			return
		}
		for _, kv := range args {
			if kv[0] == "" || strings.Contains(kv[0], "=") || strings.ContainsRune(kv[0]+kv[1], ';') {
				t.Fatalf("ParseArgs(%q) gave the pair %q", s, kv)
			}
		}
		encoded := args.String()
		var items []string
		for item := range strings.SplitSeq(s, ";") {
			if item != "" {
				items = append(items, item)
			}
		}
		if encoded != strings.Join(items, ";") {
			t.Fatalf("ParseArgs(%q).String() = %q, want the input without empty items", s, encoded)
		}
		back, err := ParseArgs(encoded)
		if err != nil || !cmp.Equal(args, back) {
			t.Fatalf("ParseArgs(String()) = %q, %v; want %q", back, err, args)
		}
	})
}

// FuzzFromEnv builds the request of one invocation from a fuzzed environment.
// Properties: FromEnv never panics; a refusal is an *Error naming a CNI
// variable; an accepted request has a known command, every variable the spec
// requires for it, a container ID safe to use as a file name (CNI's rule), a
// CNI_PATH without empty entries, the pod of the first K8S_POD_* pairs, and the
// stdin bytes exactly as given.
func FuzzFromEnv(f *testing.F) {
	f.Add("ADD", "8f1e0c2b4a", "/var/run/netns/cni-4f1e", "eth0", "/opt/cni/bin:/usr/libexec/cni",
		"IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod-1;K8S_POD_UID=u-1", []byte(`{"cniVersion":"1.0.0","name":"multus-cni-network","type":"multus"}`))
	f.Add("DEL", "c1", "", "net1", "", "K8S_POD_NAME=a;K8S_POD_NAME=b", []byte(nil))
	f.Add("GC", "", "", "", "::", "", []byte(`{"cni.dev/valid-attachments":[]}`))
	f.Add("STATUS", "-bad", "", "", "", "", []byte(`{}`))
	f.Add("VERSION", "c", "n", "i", "", "", []byte(`{}`))
	f.Add("CHECK", "a/../../etc", "/n", "eth0", "", "", []byte(`{}`))
	f.Fuzz(func(t *testing.T, command, containerID, netns, ifName, path, args string, stdin []byte) {
		env := map[string]string{
			"CNI_CONTAINERID": containerID, "CNI_NETNS": netns, "CNI_IFNAME": ifName, "CNI_PATH": path, "CNI_ARGS": args,
		}
		r, err := FromEnv(command, func(k string) string { return env[k] }, stdin)
		if err != nil {
			var re *Error
			if !errors.As(err, &re) || !strings.HasPrefix(re.Var, "CNI_") || r != nil {
				t.Fatalf("refused with %v (%T) and %+v; want an *Error naming a CNI variable alone", err, err, r)
			}
			return
		}
		if !slices.Contains(Commands, r.Command) || r.Command != command {
			t.Fatalf("accepted command %q as %q", command, r.Command)
		}
		for _, v := range required[command] {
			if env[v] == "" {
				t.Fatalf("%s accepted without %s", command, v)
			}
		}
		if r.ContainerID != containerID || (containerID != "" && !validContainerID(containerID)) ||
			strings.ContainsAny(containerID, "/\x00") || containerID == "." || containerID == ".." {
			t.Fatalf("accepted container ID %q as %q", containerID, r.ContainerID)
		}
		if slices.Contains(r.Path, "") {
			t.Fatalf("CNI_PATH %q gave an empty entry: %q", path, r.Path)
		}
		want, _ := ParseArgs(args)
		for key, got := range map[string]string{"K8S_POD_NAMESPACE": r.Pod.Namespace, "K8S_POD_NAME": r.Pod.Name, "K8S_POD_UID": r.Pod.UID} {
			if first, _ := want.Get(key); got != first {
				t.Fatalf("pod %s is %q, want the first %q", key, got, first)
			}
		}
		if string(r.Config) != string(stdin) || r.NetNS != netns || r.IfName != ifName {
			t.Fatalf("request %+v does not carry the invocation as given", r)
		}
	})
}
