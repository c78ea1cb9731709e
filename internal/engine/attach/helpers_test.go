package attach

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
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

// testDir is the folder of the tests' configurations that concern files:
// planning reads none, the fakeConfs answer for them.
const testDir = "/node"

// fakeConfs is a ConfSource of canned answers, so that planning's tests need
// no disk: what the node's folders hold and how libcni loads them is package
// confdir's, tested there.
type fakeConfs struct {
	// paths maps a path to what Load answers for it.
	paths map[string]fakeConf
	// named maps a folder and a network name, joined with "/", to the path
	// Find answers with.
	named map[string]string
	// plugins maps a path and a chain name, joined with "|", to what Plugins
	// answers.
	plugins map[string][]string
	// err fails Find and Plugins.
	err error
}

// fakeConf is what a path holds.
type fakeConf struct {
	// conf is the file's own bytes, Find's answer.
	conf string
	// loaded is Load's answer, conf when empty: a conflist with the plugins
	// of its folder appended, say.
	loaded string
	// file is the file Load reads, the path itself when empty: a folder's
	// first configuration file.
	file string
	// err is Load's error.
	err error
}

// onDisk returns a fakeConfs holding the files given as (path, content), Find
// answering each by its "name" in its folder.
func onDisk(t *testing.T, files ...[2]string) *fakeConfs {
	t.Helper()
	f := &fakeConfs{paths: map[string]fakeConf{}, named: map[string]string{}, plugins: map[string][]string{}}
	for _, file := range files {
		var c struct{ Name string }
		if err := json.Unmarshal([]byte(file[1]), &c); err != nil {
			t.Fatalf("%s: %v", file[0], err)
		}
		f.paths[file[0]] = fakeConf{conf: file[1]}
		f.named[filepath.Dir(file[0])+"/"+c.Name] = file[0]
	}
	return f
}

func (f *fakeConfs) Find(dir, name string) ([]byte, string, error) {
	if f.err != nil {
		return nil, "", f.err
	}
	path, ok := f.named[dir+"/"+name]
	if !ok {
		return nil, "", nil
	}
	return []byte(f.paths[path].conf), path, nil
}

func (f *fakeConfs) Load(path string) ([]byte, string, error) {
	c, ok := f.paths[path]
	if !ok {
		return nil, "", &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
	}
	file := cmp.Or(c.file, path)
	if c.err != nil {
		return nil, file, c.err
	}
	return []byte(cmp.Or(c.loaded, c.conf)), file, nil
}

func (f *fakeConfs) Plugins(ref, name string) ([]json.RawMessage, error) {
	if f.err != nil {
		return nil, f.err
	}
	var out []json.RawMessage
	for _, p := range f.plugins[ref+"|"+name] {
		out = append(out, json.RawMessage(p))
	}
	return out, nil
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
