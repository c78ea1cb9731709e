package attach

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/selection"
)

// TestResolveInlineDelegates proves that with inline delegates the first is the
// cluster network (default, CNI_IFNAME, the runtime's runtimeConfig) and the
// others follow with generated names and no runtimeConfig; a delegate
// without cniVersion gets the plugin's, one with it is passed byte for byte.
func TestResolveInlineDelegates(t *testing.T) {
	dir := t.TempDir()
	second := `{"cniVersion":"0.4.0",  "name":"extra", "type":"macvlan","mtu":9000}`
	conf := testConf(t, dir, `,"runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}`+
		`,"delegates":[{"name":"cbr0","type":"bridge"},`+second+`]`)
	in := Input{Conf: conf, Req: addRequest(t, defaultArgs), Pod: testPod(), NADs: nads()}
	planned, err := Resolve(t.Context(), in)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	want := []summary{
		{Network: "cbr0", IfName: "eth0", Default: true},
		{Network: "extra", IfName: "net1"},
	}
	if diff := cmp.Diff(want, summarize(planned)); diff != "" {
		t.Fatalf("planned (-want +got):\n%s", diff)
	}
	wantCaps := map[string]string{"portMappings": `[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]`}
	if diff := cmp.Diff(wantCaps, rawStrings(planned[0].CapabilityArgs)); diff != "" {
		t.Errorf("cluster network capability args (-want +got):\n%s", diff)
	}
	if planned[1].CapabilityArgs != nil {
		t.Errorf("R-7.5 second delegate got capability args %v, want none", rawStrings(planned[1].CapabilityArgs))
	}
	wantFirst := map[string]any{"cniVersion": "1.0.0", "name": "cbr0", "type": "bridge"}
	if diff := cmp.Diff(wantFirst, decodeExact(t, planned[0].Config)); diff != "" {
		t.Errorf("first delegate config, cniVersion backfilled (-want +got):\n%s", diff)
	}
	if string(planned[1].Config) != second {
		t.Errorf("second delegate config = %s, want the bytes unchanged: %s", planned[1].Config, second)
	}
}

// TestResolveClusterNetworkSources proves where clusterNetwork is looked up: a NAD
// in multusNamespace, else a configuration of that name in confDir; a path names
// a folder or a file, which the source loads. Configurations that need no edit
// keep their exact bytes; a path without a configuration is a missing network,
// one the source cannot load an invalid configuration that names its file.
func TestResolveClusterNetworkSources(t *testing.T) {
	const (
		nadConf   = `{"cniVersion":"1.0.0", "name":"cluster-net","type":"flannel"}`
		diskList  = `{ "cniVersion": "1.0.0",  "name": "cluster-net", "plugins": [ {"type":"bridge"} ] }`
		otherConf = `{"cniVersion":"1.0.0","name":"other","type":"bridge"}`
		confDir   = testDir + "/conf"
		folder    = testDir + "/cluster.d"
	)
	loadErr := errors.New("error parsing configuration list: invalid value \"yes\" for loadOnlyInlinedPlugins")
	tests := []struct {
		name string
		// extra are the plugin config keys; nads nil is delegates-only mode.
		extra      string
		nads       NADGetter
		confs      *fakeConfs
		want       summary
		wantBytes  string
		wantFields map[string]any
		wantErr    any
		// wantSource is the source a *ConfigError names.
		wantSource string
	}{
		{
			name:  "NAD in multusNamespace kube-system",
			extra: `,"clusterNetwork":"cluster-net"`,
			nads: nads(
				[3]string{"kube-system", "cluster-net", nadConf},
				[3]string{"ns1", "cluster-net", otherConf},
			),
			confs:     onDisk(t, [2]string{confDir + "/10-cluster.conflist", diskList}),
			want:      summary{Network: "kube-system/cluster-net", IfName: "eth0", Default: true, NAD: "kube-system/cluster-net"},
			wantBytes: nadConf,
		},
		{
			name:  "NAD in a configured multusNamespace",
			extra: `,"clusterNetwork":"cluster-net","multusNamespace":"net-system"`,
			nads: nads(
				[3]string{"kube-system", "cluster-net", otherConf},
				[3]string{"net-system", "cluster-net", nadConf},
			),
			want:      summary{Network: "net-system/cluster-net", IfName: "eth0", Default: true, NAD: "net-system/cluster-net"},
			wantBytes: nadConf,
		},
		{
			name:      "missing NAD falls back to confDir by name",
			extra:     `,"clusterNetwork":"cluster-net"`,
			nads:      nads(),
			confs:     onDisk(t, [2]string{confDir + "/05-other.conf", otherConf}, [2]string{confDir + "/10-cluster.conflist", diskList}),
			want:      summary{Network: "cluster-net", IfName: "eth0", Default: true},
			wantBytes: diskList,
		},
		{
			name:      "delegates-only mode reads confDir by name",
			extra:     `,"clusterNetwork":"cluster-net"`,
			confs:     onDisk(t, [2]string{confDir + "/10-cluster.conflist", diskList}),
			want:      summary{Network: "cluster-net", IfName: "eth0", Default: true},
			wantBytes: diskList,
		},
		{
			name:  "a folder gives the configuration of the file the source chose",
			extra: `,"clusterNetwork":` + quote(folder),
			nads:  nads(),
			confs: &fakeConfs{paths: map[string]fakeConf{
				folder: {conf: `{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"ptp"}]}`, file: folder + "/10-a.conflist"},
			}},
			want:      summary{Network: "a", IfName: "eth0", Default: true},
			wantBytes: `{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"ptp"}]}`,
		},
		{
			name:      "a file",
			extra:     `,"clusterNetwork":"/somewhere/cluster.conf"`,
			nads:      nads(),
			confs:     onDisk(t, [2]string{"/somewhere/cluster.conf", `{"cniVersion":"0.3.1","name":"cbr0","type":"bridge"}`}),
			want:      summary{Network: "cbr0", IfName: "eth0", Default: true},
			wantBytes: `{"cniVersion":"0.3.1","name":"cbr0","type":"bridge"}`,
		},
		{
			name:  "a file without cniVersion gets the plugin's",
			extra: `,"clusterNetwork":"/somewhere/cluster.conflist"`,
			nads:  nads(),
			confs: onDisk(t, [2]string{"/somewhere/cluster.conflist", `{"name":"cbr0","plugins":[{"type":"bridge","mtu":1450}]}`}),
			want:  summary{Network: "cbr0", IfName: "eth0", Default: true},
			wantFields: map[string]any{"cniVersion": "1.0.0", "name": "cbr0", "plugins": []any{
				map[string]any{"type": "bridge", "mtu": json.Number("1450")},
			}},
		},
		{
			name:       "a NAD config without cniVersion gets the plugin's",
			extra:      `,"clusterNetwork":"cluster-net"`,
			nads:       nads([3]string{"kube-system", "cluster-net", `{"type":"flannel"}`}),
			want:       summary{Network: "kube-system/cluster-net", IfName: "eth0", Default: true, NAD: "kube-system/cluster-net"},
			wantFields: map[string]any{"cniVersion": "1.0.0", "name": "cluster-net", "type": "flannel"},
		},
		{
			name:    "a name found nowhere fails",
			extra:   `,"clusterNetwork":"cluster-net"`,
			nads:    nads(),
			confs:   onDisk(t, [2]string{confDir + "/05-other.conf", otherConf}),
			wantErr: new(*NetworkNotFoundError),
		},
		{
			name:    "a path holding no configuration fails",
			extra:   `,"clusterNetwork":` + quote(folder),
			nads:    nads(),
			wantErr: new(*NetworkNotFoundError),
		},
		{
			name:       "a configuration the source cannot load fails, naming its file",
			extra:      `,"clusterNetwork":` + quote(folder),
			nads:       nads(),
			confs:      &fakeConfs{paths: map[string]fakeConf{folder: {file: folder + "/10-a.conflist", err: loadErr}}},
			wantErr:    new(*ConfigError),
			wantSource: folder + "/10-a.conflist",
		},
		{
			name:       "a confDir that cannot be read fails",
			extra:      `,"clusterNetwork":"cluster-net"`,
			confs:      &fakeConfs{err: errors.New("permission denied")},
			wantErr:    new(*ConfigError),
			wantSource: "confDir " + confDir,
		},
		{
			name:       "a file without a name fails",
			extra:      `,"clusterNetwork":"/somewhere/cluster.conf"`,
			nads:       nads(),
			confs:      &fakeConfs{paths: map[string]fakeConf{"/somewhere/cluster.conf": {conf: `{"cniVersion":"1.0.0","type":"bridge"}`}}},
			wantErr:    new(*ConfigError),
			wantSource: "/somewhere/cluster.conf",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Conf: testConf(t, testDir, tt.extra), Req: addRequest(t, defaultArgs), Pod: testPod(), NADs: tt.nads}
			if tt.confs != nil {
				in.Confs = tt.confs
			}
			planned, err := Resolve(t.Context(), in)
			if tt.wantErr != nil {
				if !errors.As(err, tt.wantErr) {
					t.Fatalf("Resolve error = %v, want %T", err, tt.wantErr)
				}
				var ce *ConfigError
				if errors.As(err, &ce) && ce.Source != tt.wantSource {
					t.Errorf("error %v names source %q, want %q", err, ce.Source, tt.wantSource)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if diff := cmp.Diff([]summary{tt.want}, summarize(planned)); diff != "" {
				t.Errorf("planned (-want +got):\n%s", diff)
			}
			if tt.wantBytes != "" && string(planned[0].Config) != tt.wantBytes {
				t.Errorf("config = %s, want byte for byte %s", planned[0].Config, tt.wantBytes)
			}
			if tt.wantFields != nil {
				if diff := cmp.Diff(tt.wantFields, decodeExact(t, planned[0].Config)); diff != "" {
					t.Errorf("config (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// quote returns s as a JSON string.
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestResolveDefaultNetworkOverride proves that the pod's default-network
// annotation replaces the cluster network, which keeps the default flag, the
// interface CNI_IFNAME and the runtime's runtimeConfig, while the configured
// defaultNetworks still follow.
func TestResolveDefaultNetworkOverride(t *testing.T) {
	const rc = `,"runtimeConfig":{"mac":"c2:00:00:00:00:01"}`
	tests := []struct {
		name    string
		extra   string
		nads    NADGetter
		want    []summary
		wantErr any
	}{
		{
			name:  "replaces clusterNetwork",
			extra: `,"clusterNetwork":"cluster-net"` + rc,
			nads: nads(
				[3]string{"kube-system", "cluster-net", `{"cniVersion":"1.0.0","type":"flannel"}`},
				[3]string{"kube-system", "alt", `{"cniVersion":"1.0.0","type":"calico"}`},
			),
			want: []summary{{Network: "kube-system/alt", IfName: "eth0", Default: true, NAD: "kube-system/alt"}},
		},
		{
			name:  "defaultNetworks still follow",
			extra: `,"clusterNetwork":"cluster-net","defaultNetworks":["dn1"]` + rc,
			nads: nads(
				[3]string{"kube-system", "cluster-net", `{"cniVersion":"1.0.0","type":"flannel"}`},
				[3]string{"kube-system", "alt", `{"cniVersion":"1.0.0","type":"calico"}`},
				[3]string{"kube-system", "dn1", `{"cniVersion":"1.0.0","type":"macvlan"}`},
			),
			want: []summary{
				{Network: "kube-system/alt", IfName: "eth0", Default: true, NAD: "kube-system/alt"},
				{Network: "kube-system/dn1", IfName: "net1", NAD: "kube-system/dn1"},
			},
		},
		{
			name:  "replaces the first inline delegate",
			extra: `,"delegates":[{"cniVersion":"1.0.0","name":"cbr0","type":"bridge"}]` + rc,
			nads:  nads([3]string{"kube-system", "alt", `{"cniVersion":"1.0.0","type":"calico"}`}),
			want:  []summary{{Network: "kube-system/alt", IfName: "eth0", Default: true, NAD: "kube-system/alt"}},
		},
		{
			name:    "a missing override NAD fails",
			extra:   `,"clusterNetwork":"cluster-net"` + rc,
			nads:    nads([3]string{"kube-system", "cluster-net", `{"cniVersion":"1.0.0","type":"flannel"}`}),
			wantErr: new(*NetworkNotFoundError),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			in := Input{
				Conf: testConf(t, dir, tt.extra), Req: addRequest(t, defaultArgs), Pod: testPod(), NADs: tt.nads,
				DefaultNetwork: &selection.Element{Namespace: "kube-system", Name: "alt"},
			}
			planned, err := Resolve(t.Context(), in)
			if tt.wantErr != nil {
				if !errors.As(err, tt.wantErr) {
					t.Fatalf("Resolve error = %v, want %T", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if diff := cmp.Diff(tt.want, summarize(planned)); diff != "" {
				t.Errorf("planned (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]string{"mac": `"c2:00:00:00:00:01"`}, rawStrings(planned[0].CapabilityArgs)); diff != "" {
				t.Errorf("override's capability args (-want +got):\n%s", diff)
			}
			for _, p := range planned[1:] {
				if p.CapabilityArgs != nil {
					t.Errorf("R-7.5 %s got the runtime's runtimeConfig", p.Network)
				}
			}
		})
	}
}

// TestResolveDefaultNetworkOverrideKeepsOtherInlineDelegates proves that the
// default-network annotation replaces only the cluster network (delegate 0):
// the other inline delegates are still attached, as upstream does
// (multus-features §4.1: "Replaces the cluster network (delegate 0)").
func TestResolveDefaultNetworkOverrideKeepsOtherInlineDelegates(t *testing.T) {
	dir := t.TempDir()
	in := Input{
		Conf: testConf(t, dir, `,"delegates":[{"cniVersion":"1.0.0","name":"cbr0","type":"bridge"},{"cniVersion":"1.0.0","name":"extra","type":"macvlan"}]`),
		Req:  addRequest(t, defaultArgs), Pod: testPod(),
		NADs:           nads([3]string{"kube-system", "alt", `{"cniVersion":"1.0.0","type":"calico"}`}),
		DefaultNetwork: &selection.Element{Namespace: "kube-system", Name: "alt"},
	}
	planned, err := Resolve(t.Context(), in)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	want := []summary{
		{Network: "kube-system/alt", IfName: "eth0", Default: true, NAD: "kube-system/alt"},
		{Network: "extra", IfName: "net1"},
	}
	if diff := cmp.Diff(want, summarize(planned)); diff != "" {
		t.Errorf("the override must replace the cluster network only (-want +got):\n%s", diff)
	}
}

// TestResolveDefaultNetworks proves that defaultNetworks follow the cluster
// network only when clusterNetwork is set, each from a NAD in multusNamespace or
// confDir, and never for pods in systemNamespaces; annotation networks come after
// them and are numbered after them.
func TestResolveDefaultNetworks(t *testing.T) {
	cluster := [3]string{"kube-system", "cluster-net", `{"cniVersion":"1.0.0","type":"flannel"}`}
	dn1 := [3]string{"kube-system", "dn1", `{"cniVersion":"1.0.0","type":"macvlan"}`}
	dn2 := [3]string{"kube-system", "dn2", `{"cniVersion":"1.0.0","type":"ipvlan"}`}
	sel := [3]string{"ns1", "net-a", `{"cniVersion":"1.0.0","type":"macvlan"}`}
	tests := []struct {
		name    string
		extra   string
		args    string
		files   [][2]string
		nads    *fakeNADs
		want    []summary
		wantErr any
	}{
		{
			name:  "added after clusterNetwork, before annotation networks",
			extra: `,"clusterNetwork":"cluster-net","defaultNetworks":["dn1","dn2"]`,
			nads:  nads(cluster, dn1, dn2, sel),
			want: []summary{
				{Network: "kube-system/cluster-net", IfName: "eth0", Default: true, NAD: "kube-system/cluster-net"},
				{Network: "kube-system/dn1", IfName: "net1", NAD: "kube-system/dn1"},
				{Network: "kube-system/dn2", IfName: "net2", NAD: "kube-system/dn2"},
				{Network: "ns1/net-a", IfName: "net3", NAD: "ns1/net-a", Selection: "ns1/net-a"},
			},
		},
		{
			name:  "a default network from confDir",
			extra: `,"clusterNetwork":"cluster-net","defaultNetworks":["disk-net"]`,
			files: [][2]string{{testDir + "/conf/30-disk.conf", `{"cniVersion":"1.0.0","name":"disk-net","type":"bridge"}`}},
			nads:  nads(cluster, sel),
			want: []summary{
				{Network: "kube-system/cluster-net", IfName: "eth0", Default: true, NAD: "kube-system/cluster-net"},
				{Network: "disk-net", IfName: "net1"},
				{Network: "ns1/net-a", IfName: "net2", NAD: "ns1/net-a", Selection: "ns1/net-a"},
			},
		},
		{
			name:  "not for a pod in the default systemNamespaces",
			extra: `,"clusterNetwork":"cluster-net","defaultNetworks":["dn1","dn2"]`,
			args:  "K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=pod-1;K8S_POD_UID=uid-1",
			nads:  nads(cluster, dn1, dn2, [3]string{"kube-system", "net-a", sel[2]}),
			want: []summary{
				{Network: "kube-system/cluster-net", IfName: "eth0", Default: true, NAD: "kube-system/cluster-net"},
				{Network: "kube-system/net-a", IfName: "net1", NAD: "kube-system/net-a", Selection: "kube-system/net-a"},
			},
		},
		{
			name:  "not for a pod in configured systemNamespaces",
			extra: `,"clusterNetwork":"cluster-net","defaultNetworks":["dn1"],"systemNamespaces":["ns1"]`,
			nads:  nads(cluster, dn1, sel),
			want: []summary{
				{Network: "kube-system/cluster-net", IfName: "eth0", Default: true, NAD: "kube-system/cluster-net"},
				{Network: "ns1/net-a", IfName: "net1", NAD: "ns1/net-a", Selection: "ns1/net-a"},
			},
		},
		{
			name:  "systemNamespaces are matched against the pod's namespace, not its name",
			extra: `,"clusterNetwork":"cluster-net","defaultNetworks":["dn1"],"systemNamespaces":["pod-1"]`,
			nads:  nads(cluster, dn1, sel),
			want: []summary{
				{Network: "kube-system/cluster-net", IfName: "eth0", Default: true, NAD: "kube-system/cluster-net"},
				{Network: "kube-system/dn1", IfName: "net1", NAD: "kube-system/dn1"},
				{Network: "ns1/net-a", IfName: "net2", NAD: "ns1/net-a", Selection: "ns1/net-a"},
			},
		},
		{
			name:  "ignored with inline delegates",
			extra: `,"delegates":[{"cniVersion":"1.0.0","name":"cbr0","type":"bridge"}],"defaultNetworks":["dn1"]`,
			nads:  nads(dn1, sel),
			want: []summary{
				{Network: "cbr0", IfName: "eth0", Default: true},
				{Network: "ns1/net-a", IfName: "net1", NAD: "ns1/net-a", Selection: "ns1/net-a"},
			},
		},
		{
			name:    "a missing default network fails",
			extra:   `,"clusterNetwork":"cluster-net","defaultNetworks":["dn1","nowhere"]`,
			nads:    nads(cluster, dn1, sel),
			wantErr: new(*NetworkNotFoundError),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if args == "" {
				args = defaultArgs
			}
			req := addRequest(t, args)
			elems, err := selection.Parse("net-a", req.Pod.Namespace)
			if err != nil {
				t.Fatal(err)
			}
			in := Input{Conf: testConf(t, testDir, tt.extra), Req: req, NADs: tt.nads, Selections: elems,
				Pod: &podnet.Pod{Namespace: req.Pod.Namespace, Name: req.Pod.Name, UID: "uid-1"}, Confs: onDisk(t, tt.files...)}
			planned, err := Resolve(t.Context(), in)
			if tt.wantErr != nil {
				if !errors.As(err, tt.wantErr) {
					t.Fatalf("Resolve error = %v, want %T", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if diff := cmp.Diff(tt.want, summarize(planned)); diff != "" {
				t.Errorf("planned (-want +got):\n%s", diff)
			}
			for _, p := range planned[1:] {
				if p.Default {
					t.Errorf("%s is marked default; only the cluster network is", p.Network)
				}
			}
		})
	}
}

// TestResolveNADSource proves for a selected network:
// spec.config first, with the NAD's name injected when it has none and its bytes
// untouched otherwise; an empty spec uses the on-disk configuration of the NAD's
// name in confDir (which file that is, conflists first, is package confdir's
// test); nothing found, a missing NAD and delegates-only mode fail with
// *NetworkNotFoundError, an unreadable confDir with *ConfigError.
func TestResolveNADSource(t *testing.T) {
	const (
		exact     = `{"cniVersion":"1.0.0",  "name":"other-name","type":"macvlan", "master":"eth1","big":12345678901234567890}`
		diskList  = `{"cniVersion":"1.0.0","name":"net-a","plugins":[{"type":"macvlan"},{"type":"tuning"}]}`
		diskConf  = `{"cniVersion":"1.0.0","name":"net-a","type":"ipvlan"}`
		diskOther = `{"cniVersion":"1.0.0","name":"other","type":"bridge"}`
	)
	tests := []struct {
		name  string
		spec  string
		noNAD bool
		// delegatesOnly runs without a NAD getter.
		delegatesOnly bool
		files         [][2]string
		confErr       error
		wantBytes     string
		wantFields    map[string]any
		wantErr       any
		wantReason    string
	}{
		{
			name:      "R-3.4.1 spec.config is used first, even with a file of the same name",
			spec:      `{"cniVersion":"1.0.0","name":"net-a","type":"macvlan"}`,
			files:     [][2]string{{testDir + "/conf/00-net-a.conflist", diskList}},
			wantBytes: `{"cniVersion":"1.0.0","name":"net-a","type":"macvlan"}`,
		},
		{
			name:      "R-3.4.2 a config with a name keeps its exact bytes",
			spec:      exact,
			wantBytes: exact,
		},
		{
			name:       "R-3.4.2 the NAD name is injected when spec.config has none",
			spec:       `{"cniVersion":"1.0.0","type":"macvlan","master":"eth1","big":12345678901234567890}`,
			wantFields: map[string]any{"cniVersion": "1.0.0", "name": "net-a", "type": "macvlan", "master": "eth1", "big": json.Number("12345678901234567890")},
		},
		{
			name:       "R-3.4.2 the NAD name is injected when spec.config's name is empty",
			spec:       `{"cniVersion":"1.0.0","name":"","plugins":[{"type":"macvlan"}]}`,
			wantFields: map[string]any{"cniVersion": "1.0.0", "name": "net-a", "plugins": []any{map[string]any{"type": "macvlan"}}},
		},
		{
			name:       "cniVersion is backfilled when spec.config has none",
			spec:       `{"name":"net-a","type":"macvlan"}`,
			wantFields: map[string]any{"cniVersion": "1.0.0", "name": "net-a", "type": "macvlan"},
		},
		{
			name:      "R-3.4.1 an empty spec uses the configuration of the NAD's name in confDir",
			files:     [][2]string{{testDir + "/conf/00-other.conf", diskOther}, {testDir + "/conf/10-net-a.conflist", diskList}},
			wantBytes: diskList,
		},
		{
			name:      "a spec.config of white space counts as empty",
			spec:      " \n\t",
			files:     [][2]string{{testDir + "/conf/10-net-a.conf", diskConf}},
			wantBytes: diskConf,
		},
		{
			name:    "R-3.4.1 an empty spec and no file of the name fails",
			files:   [][2]string{{testDir + "/conf/10-other.conf", diskOther}},
			wantErr: new(*NetworkNotFoundError),
		},
		{
			name:       "an empty spec and a confDir that cannot be read fails",
			confErr:    errors.New("open /node/conf: permission denied"),
			wantErr:    new(*ConfigError),
			wantReason: "confDir /node/conf",
		},
		{
			name:    "a missing NAD fails",
			noNAD:   true,
			wantErr: new(*NetworkNotFoundError),
		},
		{
			name:          "delegates-only mode fails, saying so",
			delegatesOnly: true,
			wantErr:       new(*NetworkNotFoundError),
			wantReason:    "delegates-only",
		},
		{
			name:    "a spec.config that is no CNI configuration fails",
			spec:    `{"cniVersion":"1.0.0","name":"net-a"}`,
			wantErr: new(*ConfigError),
		},
		{
			name:    "a plugin type that is a path fails",
			spec:    `{"cniVersion":"1.0.0","name":"net-a","type":"../../sbin/reboot"}`,
			wantErr: new(*ConfigError),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			confs := onDisk(t, tt.files...)
			confs.err = tt.confErr
			var getter NADGetter = nads([3]string{"ns1", "net-a", tt.spec})
			if tt.noNAD {
				getter = nads()
			}
			if tt.delegatesOnly {
				getter = nil
			}
			in := Input{
				Conf:       testConf(t, testDir, `,"delegates":[{"cniVersion":"1.0.0","name":"cbr0","type":"bridge"}]`),
				Req:        addRequest(t, defaultArgs),
				Pod:        testPod(),
				NADs:       getter,
				Selections: parseSel(t, "net-a"),
				Confs:      confs,
			}
			planned, err := Resolve(t.Context(), in)
			if tt.wantErr != nil {
				if !errors.As(err, tt.wantErr) {
					t.Fatalf("Resolve error = %v, want %T", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantReason) {
					t.Errorf("error %q does not mention %q", err, tt.wantReason)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			p := planned[1]
			if p.Network != "ns1/net-a" || p.NAD == nil || p.NAD.Ref() != "ns1/net-a" {
				t.Errorf("network %q from NAD %v, want ns1/net-a", p.Network, p.NAD)
			}
			if tt.wantBytes != "" && string(p.Config) != tt.wantBytes {
				t.Errorf("config = %s, want byte for byte %s", p.Config, tt.wantBytes)
			}
			if tt.wantFields != nil {
				if diff := cmp.Diff(tt.wantFields, decodeExact(t, p.Config)); diff != "" {
					t.Errorf("config (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestResolveNADReadError proves that an API failure other than "not found" is
// reported as such, not as a missing network.
func TestResolveNADReadError(t *testing.T) {
	dir := t.TempDir()
	apiErr := errors.New("connection refused")
	in := Input{
		Conf:       testConf(t, dir, `,"delegates":[{"cniVersion":"1.0.0","name":"cbr0","type":"bridge"}]`),
		Req:        addRequest(t, defaultArgs),
		Pod:        testPod(),
		NADs:       &fakeNADs{err: apiErr},
		Selections: parseSel(t, "net-a"),
	}
	_, err := Resolve(t.Context(), in)
	if !errors.Is(err, apiErr) {
		t.Fatalf("Resolve error = %v, want it to wrap %v", err, apiErr)
	}
	var nf *NetworkNotFoundError
	if errors.As(err, &nf) {
		t.Errorf("an API failure was reported as a missing network: %v", err)
	}
}

// TestResolveNamespaceIsolation proves with namespaceIsolation: a pod may
// use NADs of its own namespace and of globalNamespaces ("default" when unset);
// any other namespace fails with *RefusedError.
func TestResolveNamespaceIsolation(t *testing.T) {
	all := nads(
		[3]string{"ns1", "net-a", `{"cniVersion":"1.0.0","type":"macvlan"}`},
		[3]string{"default", "net-a", `{"cniVersion":"1.0.0","type":"macvlan"}`},
		[3]string{"shared", "net-a", `{"cniVersion":"1.0.0","type":"macvlan"}`},
		[3]string{"other", "net-a", `{"cniVersion":"1.0.0","type":"macvlan"}`},
	)
	tests := []struct {
		name        string
		extra       string
		annotation  string
		nilGlobal   bool
		wantRefused bool
	}{
		{name: "R-7.4 own namespace is allowed", extra: `,"namespaceIsolation":true`, annotation: "net-a"},
		{name: "R-7.4 own namespace named explicitly is allowed", extra: `,"namespaceIsolation":true`, annotation: "ns1/net-a"},
		{name: "R-7.4 default is global when globalNamespaces is unset", extra: `,"namespaceIsolation":true`, annotation: "default/net-a"},
		{name: "R-7.4 default is global when globalNamespaces is empty in the struct", extra: `,"namespaceIsolation":true`, annotation: "default/net-a", nilGlobal: true},
		{name: "R-7.4 a configured global namespace is allowed", extra: `,"namespaceIsolation":true,"globalNamespaces":"shared,infra"`, annotation: "shared/net-a"},
		{name: "R-7.4 default is not global when globalNamespaces is set", extra: `,"namespaceIsolation":true,"globalNamespaces":"shared"`, annotation: "default/net-a", wantRefused: true},
		{name: "R-7.4 another namespace fails", extra: `,"namespaceIsolation":true`, annotation: "other/net-a", wantRefused: true},
		{name: "R-7.4 other namespace refused with a nil list too", extra: `,"namespaceIsolation":true`, annotation: "other/net-a", nilGlobal: true, wantRefused: true},
		{name: "R-7.4 refusal of a later element fails the whole pod", extra: `,"namespaceIsolation":true`, annotation: "net-a,other/net-a", wantRefused: true},
		{name: "without isolation any namespace is allowed", annotation: "other/net-a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := testConf(t, dir, `,"delegates":[{"cniVersion":"1.0.0","name":"cbr0","type":"bridge"}]`+tt.extra)
			if tt.nilGlobal {
				conf.GlobalNamespaces = nil
			}
			in := Input{Conf: conf, Req: addRequest(t, defaultArgs), Pod: testPod(), NADs: all, Selections: parseSel(t, tt.annotation)}
			planned, err := Resolve(t.Context(), in)
			if tt.wantRefused {
				var re *RefusedError
				if !errors.As(err, &re) {
					t.Fatalf("Resolve error = %v, want *RefusedError", err)
				}
				if re.Network != "other/net-a" && re.Network != "default/net-a" {
					t.Errorf("refused network %q", re.Network)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if len(planned) != 1+len(in.Selections) {
				t.Errorf("%d attachments, want %d", len(planned), 1+len(in.Selections))
			}
		})
	}
}
