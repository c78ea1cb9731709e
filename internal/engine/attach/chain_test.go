package attach

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Plugin configurations dropped into chain folders.
const (
	tuningConf = `{"type":"tuning","sysctl":{"net.ipv4.conf.eth0.rp_filter":"0"}}`
	sbrConf    = `{"type":"sbr"}`
)

// TestResolveLoadedConfiguration proves that a cluster network read from disk
// is the configuration as the source loads it (libcni's loading, which
// appends a conflist's subdirectory plugins), whether clusterNetwork names the
// file, its folder or the network in confDir; while a NAD without spec.config
// gets the on-disk file's own bytes, as upstream takes libcni's list Bytes.
func TestResolveLoadedConfiguration(t *testing.T) {
	const (
		file    = testDir + "/conf/10-cluster.conflist"
		ownList = `{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"bridge"}]}`
		chained = `{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"bridge"},{"type":"tuning"}]}`
	)
	confs := func(t *testing.T) *fakeConfs {
		f := onDisk(t, [2]string{file, ownList})
		f.paths[file] = fakeConf{conf: ownList, loaded: chained}
		f.paths[testDir+"/conf"] = fakeConf{conf: ownList, loaded: chained, file: file}
		return f
	}
	for _, ref := range []string{file, testDir + "/conf", "cluster"} {
		t.Run("clusterNetwork "+ref, func(t *testing.T) {
			conf := testConf(t, testDir, `,"clusterNetwork":`+quoteJSON(ref))
			planned, err := Resolve(t.Context(), Input{Conf: conf, Req: addRequest(t, defaultArgs), Confs: confs(t)})
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if len(planned) != 1 || planned[0].Network != "cluster" || string(planned[0].Config) != chained {
				t.Errorf("planned %v with config %s, want the cluster network alone with %s", summarize(planned), planned[0].Config, chained)
			}
		})
	}
	t.Run("a NAD without spec.config", func(t *testing.T) {
		conf := testConf(t, testDir, `,"delegates":[{"cniVersion":"1.0.0","name":"cbr0","type":"bridge"}]`)
		in := Input{Conf: conf, Req: addRequest(t, defaultArgs), Pod: testPod(), NADs: nads([3]string{"ns1", "cluster", ""}),
			Selections: parseSel(t, "cluster"), Confs: confs(t)}
		planned, err := Resolve(t.Context(), in)
		if err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		if got := string(planned[1].Config); got != ownList {
			t.Errorf("config %s, want the file's own %s", got, ownList)
		}
	})
}

// TestResolveAuxiliaryChain proves upstream's auxiliary CNI chain: with
// auxiliaryCNIChainName set and plugins in the chain's folder by the
// clusterNetwork path, a conflist {cniVersion of the meta-plugin, name = chain
// name, disableCheck true, plugins [passthru, ...the folder's plugins in
// order]} is planned last, marked Auxiliary, with a generated interface;
// without plugins there is none.
func TestResolveAuxiliaryChain(t *testing.T) {
	const (
		file        = testDir + "/conf/10-cluster.conflist"
		clusterList = `{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"bridge"}]}`
	)
	tests := []struct {
		name      string
		plugins   []string
		wantChain bool
	}{
		{name: "chain from the folder's plugins", plugins: []string{tuningConf, sbrConf}, wantChain: true},
		{name: "no plugins, no chain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			confs := onDisk(t, [2]string{file, clusterList})
			confs.plugins[file+"|aux"] = tt.plugins
			conf := testConf(t, testDir, `,"clusterNetwork":`+quoteJSON(file)+`,"auxiliaryCNIChainName":"aux"`)
			conf.CNIVersion = "1.1.0"
			in := Input{Conf: conf, Req: addRequest(t, defaultArgs), Pod: testPod(),
				NADs:       nads([3]string{"ns1", "net-a", `{"cniVersion":"1.0.0","type":"macvlan"}`}),
				Selections: parseSel(t, "net-a"), Confs: confs}
			planned, err := Resolve(t.Context(), in)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			want := []summary{
				{Network: "cluster", IfName: "eth0", Default: true},
				{Network: "ns1/net-a", IfName: "net1", NAD: "ns1/net-a", Selection: "ns1/net-a"},
			}
			if tt.wantChain {
				want = append(want, summary{Network: "aux", IfName: "net2"})
			}
			if diff := cmp.Diff(want, summarize(planned)); diff != "" {
				t.Fatalf("planned (-want +got):\n%s", diff)
			}
			for i, p := range planned {
				if p.Auxiliary != (tt.wantChain && i == len(planned)-1) {
					t.Errorf("%s Auxiliary = %v", p.Network, p.Auxiliary)
				}
			}
			if !tt.wantChain {
				return
			}
			wantConfig := map[string]any{
				"cniVersion":   "1.1.0",
				"name":         "aux",
				"disableCheck": true,
				"plugins": []any{
					map[string]any{"type": "passthru", "name": "passthru-cni"},
					map[string]any{"type": "tuning", "sysctl": map[string]any{"net.ipv4.conf.eth0.rp_filter": "0"}},
					map[string]any{"type": "sbr"},
				},
			}
			aux := planned[len(planned)-1]
			if diff := cmp.Diff(wantConfig, decodeExact(t, aux.Config)); diff != "" {
				t.Errorf("auxiliary chain config (-want +got):\n%s", diff)
			}
			if aux.NAD != nil || aux.Selection != nil || aux.Default {
				t.Errorf("auxiliary chain has NAD %v selection %v default %v, want none", aux.NAD, aux.Selection, aux.Default)
			}
		})
	}
}

// TestResolveAuxiliaryChainRefused proves that the auxiliary chain is refused
// with a *ConfigError when clusterNetwork is not a path (a NAD or network name,
// or inline delegates), since its folder could not be found, and when its
// folder cannot be read (the source refuses a chain name that cannot name a
// folder, say), wrapping the source's error.
func TestResolveAuxiliaryChainRefused(t *testing.T) {
	const file = testDir + "/conf/10-cluster.conflist"
	sourceErr := errors.New(`name ".." cannot name a plugin folder`)
	tests := []struct {
		name    string
		extra   string
		err     error
		wantErr error
	}{
		{name: "clusterNetwork is a name", extra: `,"clusterNetwork":"cluster"`},
		{name: "inline delegates", extra: `,"delegates":[{"name":"cbr0","type":"bridge"}]`},
		{name: "the folder cannot be read", extra: `,"clusterNetwork":` + quoteJSON(file), err: sourceErr, wantErr: sourceErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			confs := onDisk(t, [2]string{file, `{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"bridge"}]}`})
			confs.plugins[file+"|aux"] = []string{tuningConf}
			conf := testConf(t, testDir, tt.extra+`,"auxiliaryCNIChainName":"aux"`)
			in := Input{Conf: conf, Req: addRequest(t, defaultArgs), Confs: confs}
			if tt.err != nil {
				// The cluster network resolves first; only the chain's folder fails.
				confs.err = tt.err
			}
			_, err := Resolve(t.Context(), in)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Resolve error = %v, want *ConfigError", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Resolve error = %v, want it to wrap %v", err, tt.wantErr)
			}
		})
	}
}
