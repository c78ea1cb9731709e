package attach

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/request"
	"github.com/polynet-cni/polynet/internal/selection"
)

// fakeNADs is a NADGetter over a map keyed "namespace/name". A missing entry is a
// *podnet.NotFoundError, as the real getters return; err, when set, is returned
// for every lookup instead.
type fakeNADs struct {
	nads map[string]*podnet.NAD
	err  error
}

func (f *fakeNADs) NAD(_ context.Context, namespace, name string) (*podnet.NAD, error) {
	if f.err != nil {
		return nil, f.err
	}
	if n, ok := f.nads[namespace+"/"+name]; ok {
		return n, nil
	}
	return nil, &podnet.NotFoundError{Kind: "NetworkAttachmentDefinition", Namespace: namespace, Name: name}
}

// nads builds a fakeNADs from (namespace, name, spec.config) triples.
func nads(defs ...[3]string) *fakeNADs {
	f := &fakeNADs{nads: map[string]*podnet.NAD{}}
	for _, d := range defs {
		f.nads[d[0]+"/"+d[1]] = &podnet.NAD{Namespace: d[0], Name: d[1], Config: d[2]}
	}
	return f
}

// testConf parses a plugin configuration with config.ParsePlugin, so defaults
// apply. cniDir and confDir are set to folders under dir; extra is appended to
// the object's keys and must start with a comma.
func testConf(t *testing.T, dir, extra string) *config.PluginConf {
	t.Helper()
	text := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"multus","type":"multus","cniDir":%q,"confDir":%q%s}`,
		filepath.Join(dir, "cni"), confDirOf(dir), extra)
	conf, err := config.ParsePlugin([]byte(text))
	if err != nil {
		t.Fatalf("ParsePlugin(%s): %v", text, err)
	}
	return conf
}

// confDirOf is the confDir testConf uses for dir.
func confDirOf(dir string) string { return filepath.Join(dir, "conf") }

// writeFile writes a file, creating its folder.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// defaultArgs are the CNI_ARGS a kubelet-driven runtime sends.
const defaultArgs = "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod-1;K8S_POD_INFRA_CONTAINER_ID=c1;K8S_POD_UID=uid-1"

// addRequest builds an ADD request with request.FromEnv, CNI_IFNAME eth0.
func addRequest(t *testing.T, cniArgs string) *request.Request {
	t.Helper()
	env := map[string]string{
		"CNI_CONTAINERID": "c1",
		"CNI_NETNS":       "/var/run/netns/c1",
		"CNI_IFNAME":      "eth0",
		"CNI_PATH":        "/opt/cni/bin",
		"CNI_ARGS":        cniArgs,
	}
	req, err := request.FromEnv(request.Add, func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	return req
}

// testPod is the pod defaultArgs name.
func testPod() *podnet.Pod {
	return &podnet.Pod{Namespace: "ns1", Name: "pod-1", UID: "uid-1"}
}

// parseSel parses a networks annotation for a pod of namespace ns1.
func parseSel(t *testing.T, value string) []selection.Element {
	t.Helper()
	elems, err := selection.Parse(value, "ns1")
	if err != nil {
		t.Fatalf("selection.Parse(%s): %v", value, err)
	}
	return elems
}

// summary is the part of a Planned that tests compare.
type summary struct {
	Network   string
	IfName    string
	Default   bool
	NAD       string
	Selection string
}

func summarize(planned []Planned) []summary {
	out := make([]summary, 0, len(planned))
	for _, p := range planned {
		s := summary{Network: p.Network, IfName: p.IfName, Default: p.Default}
		if p.NAD != nil {
			s.NAD = p.NAD.Ref()
		}
		if p.Selection != nil {
			s.Selection = p.Selection.Ref()
		}
		out = append(out, s)
	}
	return out
}

// rawStrings turns capability arguments into comparable text.
func rawStrings(m map[string]json.RawMessage) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

// decodeExact decodes JSON keeping numbers as json.Number, so comparisons see
// the exact digits.
func decodeExact(t *testing.T, data []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
	return m
}
