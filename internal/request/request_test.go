package request

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/podnet"
)

func TestFromEnv(t *testing.T) {
	full := map[string]string{
		"CNI_CONTAINERID": "abc123",
		"CNI_NETNS":       "/var/run/netns/x",
		"CNI_IFNAME":      "eth0",
		"CNI_PATH":        "/opt/cni/bin:/usr/lib/cni",
		"CNI_ARGS":        "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod-1;K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=u-1;X=a=b",
	}
	env := func(m map[string]string, drop ...string) func(string) string {
		return func(k string) string {
			for _, d := range drop {
				if d == k {
					return ""
				}
			}
			return m[k]
		}
	}
	got, err := FromEnv(Add, env(full), []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Request{
		Command: Add, ContainerID: "abc123", NetNS: "/var/run/netns/x", IfName: "eth0",
		Path: []string{"/opt/cni/bin", "/usr/lib/cni"},
		Args: Args{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "ns1"}, {"K8S_POD_NAME", "pod-1"},
			{"K8S_POD_INFRA_CONTAINER_ID", "abc123"}, {"K8S_POD_UID", "u-1"}, {"X", "a=b"}},
		Pod:    podnet.PodRef{Namespace: "ns1", Name: "pod-1", UID: "u-1"},
		Config: []byte("{}"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}

	errCases := []struct {
		name    string
		command string
		drop    []string
		args    string
		wantVar string
	}{
		{name: "ADD needs a netns", command: Add, drop: []string{"CNI_NETNS"}, wantVar: "CNI_NETNS"},
		{name: "CHECK needs a container ID", command: Check, drop: []string{"CNI_CONTAINERID"}, wantVar: "CNI_CONTAINERID"},
		{name: "DEL needs an ifname", command: Del, drop: []string{"CNI_IFNAME"}, wantVar: "CNI_IFNAME"},
		{name: "unknown command", command: "FROB", wantVar: "CNI_COMMAND"},
		{name: "item without =", command: Add, args: "K8S_POD_NAME", wantVar: "CNI_ARGS"},
		{name: "empty key", command: Add, args: "=v", wantVar: "CNI_ARGS"},
	}
	for _, tt := range errCases {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]string{}
			for k, v := range full {
				m[k] = v
			}
			if tt.args != "" {
				m["CNI_ARGS"] = tt.args
			}
			_, err := FromEnv(tt.command, env(m, tt.drop...), nil)
			var re *Error
			if !errors.As(err, &re) || re.Var != tt.wantVar {
				t.Fatalf("got %v, want a request error on %s", err, tt.wantVar)
			}
		})
	}
}

func TestFromEnvOptionalVariables(t *testing.T) {
	for _, tt := range []struct {
		command string
		env     map[string]string
	}{
		{Del, map[string]string{"CNI_CONTAINERID": "c", "CNI_IFNAME": "eth0"}},
		{Status, map[string]string{}},
		{GC, map[string]string{}},
	} {
		t.Run(tt.command, func(t *testing.T) {
			r, err := FromEnv(tt.command, func(k string) string { return tt.env[k] }, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.HasPod() {
				t.Errorf("HasPod true without CNI_ARGS")
			}
		})
	}
}

func TestContainerIDValidation(t *testing.T) {
	for id, ok := range map[string]bool{"abc": true, "a-b_c.d": true, "-abc": false, "../x": false, "a/b": false, "a b": false} {
		env := map[string]string{"CNI_CONTAINERID": id, "CNI_IFNAME": "eth0"}
		_, err := FromEnv(Del, func(k string) string { return env[k] }, nil)
		if (err == nil) != ok {
			t.Errorf("container ID %q: err %v, want ok=%v", id, err, ok)
		}
	}
}

func TestArgsString(t *testing.T) {
	a, err := ParseArgs("A=1;;B=x=y")
	if err != nil {
		t.Fatal(err)
	}
	if got := a.String(); got != "A=1;B=x=y" {
		t.Errorf("String() = %q", got)
	}
}
