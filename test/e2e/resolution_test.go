package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polynet-cni/polynet/internal/cnicode"
)

// TestClusterNetworkSources resolves the cluster network each way upstream
// accepts: inline delegates, clusterNetwork as a NAD name in multusNamespace, as
// the name of a configuration in confDir, as a folder and as a file; and the pod's
// v1.multus-cni.io/default-network annotation replacing it. The recorder stands in
// for the cluster network's plugin so each case shows which configuration ran.
func TestClusterNetworkSources(t *testing.T) {
	modes(t, func(t *testing.T) {
		const v = "1.0.0"
		tests := []struct {
			name        string
			setup       func(e *env) map[string]any
			annotations map[string]string
			wantNetwork string
			wantName    string
		}{
			{
				name:        "inline delegates",
				setup:       func(e *env) map[string]any { return map[string]any{"delegates": []any{e.recorderMap(v, "inline-net")}} },
				wantNetwork: "inline-net", wantName: "inline-net",
			},
			{
				name: "clusterNetwork names a NAD in multusNamespace",
				setup: func(e *env) map[string]any {
					ns := e.namespace + "-sys"
					e.nad(ns+"/nad-cluster", e.recorderConf(v, "", nil), nil)
					return map[string]any{"delegates": nil, "clusterNetwork": "nad-cluster", "multusNamespace": ns}
				},
				wantNetwork: "-sys/nad-cluster", wantName: "nad-cluster",
			},
			{
				name: "clusterNetwork names a configuration in confDir",
				setup: func(e *env) map[string]any {
					e.writeConf("10-x.conflist", e.recorderList(v, "disk-net"))
					return map[string]any{"delegates": nil, "clusterNetwork": "disk-net"}
				},
				wantNetwork: "disk-net", wantName: "disk-net",
			},
			{
				name: "clusterNetwork is a folder: its first file",
				setup: func(e *env) map[string]any {
					dir := filepath.Join(e.confDir, "primary")
					e.writeConf("primary/20-b.conf", e.recorderConf(v, "second-file", nil))
					e.writeConf("primary/10-a.conf", e.recorderConf(v, "first-file", nil))
					return map[string]any{"delegates": nil, "clusterNetwork": dir}
				},
				wantNetwork: "first-file", wantName: "first-file",
			},
			{
				name: "clusterNetwork is a file",
				setup: func(e *env) map[string]any {
					path := e.writeConf("cluster.conflist", e.recorderList(v, "file-net"))
					return map[string]any{"delegates": nil, "clusterNetwork": path}
				},
				wantNetwork: "file-net", wantName: "file-net",
			},
			{
				name: "the default-network annotation replaces the cluster network",
				setup: func(e *env) map[string]any {
					e.nad("override", e.recorderConf(v, "override-net", nil), nil)
					return map[string]any{"delegates": []any{e.recorderMap(v, "inline-net")}}
				},
				annotations: map[string]string{"v1.multus-cni.io/default-network": "NS/override"},
				wantNetwork: "/override", wantName: "override-net",
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e := newEnv(t)
				conf := e.multusConf(v, tt.setup(e))
				ann := map[string]string{}
				for k, val := range tt.annotations {
					ann[k] = strings.ReplaceAll(val, "NS", e.namespace)
				}
				_, sb, _ := e.pod("pod-1", ann)
				e.add(conf, sb)
				adds := e.recordsFor("ADD")
				if len(adds) != 1 || adds[0].Env["CNI_IFNAME"] != "eth0" {
					t.Fatalf("recorded ADDs %+v, want one on eth0", adds)
				}
				var got struct{ Name string }
				if err := adds[0].Conf(&got); err != nil || got.Name != tt.wantName {
					t.Errorf("cluster network config name %q (%v), want %q", got.Name, err, tt.wantName)
				}
				status := e.networkStatus("pod-1")
				if len(status) != 1 || !strings.HasSuffix(status[0].Name, tt.wantNetwork) || !status[0].Default {
					t.Errorf("network-status %+v, want one default entry named ...%s", status, tt.wantNetwork)
				}
				e.del(conf, sb)
			})
		}
	})
}

// TestDefaultNetworksSkipSystemNamespaces adds defaultNetworks to every pod but
// those of systemNamespaces, after the cluster network and before the
// annotation's networks, numbering their interfaces in that order.
func TestDefaultNetworksSkipSystemNamespaces(t *testing.T) {
	modes(t, func(t *testing.T) {
		const v = "1.0.0"
		e := newEnv(t)
		e.writeConf("cluster.conflist", e.recorderList(v, "cluster-rec"))
		e.writeConf("extra.conf", e.recorderConf(v, "extra-net", nil))
		e.nad("sel", e.recorderConf(v, "sel-net", nil), nil)
		conf := e.multusConf(v, map[string]any{
			"delegates": nil, "clusterNetwork": filepath.Join(e.confDir, "cluster.conflist"),
			"defaultNetworks": []string{"extra-net"}, "systemNamespaces": []string{e.namespace + "-sys"},
		})
		_, sb, _ := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "sel"})
		e.add(conf, sb)
		var order []string
		for _, r := range e.recordsFor("ADD") {
			var c struct{ Name string }
			_ = r.Conf(&c)
			order = append(order, c.Name+"@"+r.Env["CNI_IFNAME"])
		}
		if got, want := strings.Join(order, ","), "cluster-rec@eth0,extra-net@net1,sel-net@net2"; got != want {
			t.Errorf("ADD order %s, want %s (R-6.2)", got, want)
		}
		e.del(conf, sb)

		// A pod of a system namespace gets the cluster network only.
		sys := e.namespace + "-sys"
		e.namespace = sys
		testbedNamespace(e, sys)
		_, sb2, _ := e.pod("pod-2", nil)
		before := len(e.recordsFor("ADD"))
		e.add(conf, sb2)
		if got := len(e.recordsFor("ADD")) - before; got != 1 {
			t.Errorf("a pod of a system namespace got %d attachments, want the cluster network only", got)
		}
		e.del(conf, sb2)
	})
}

// TestNADConfigResolution covers: spec.config as a conf and as
// a conflist, a NAD without spec.config served by an on-disk conflist before a
// conf of the same name, the NAD's name injected into a config without one, and a
// NAD that resolves to nothing failing the ADD with NoNetworkFound.
func TestNADConfigResolution(t *testing.T) {
	modes(t, func(t *testing.T) {
		const v = "1.0.0"
		e := newEnv(t)
		e.nad("plain-conf", e.recorderConf(v, "", nil), nil) // no name: injects it
		e.nad("a-list", fmt.Sprintf(`{"cniVersion":%q,"name":"a-list","plugins":[%s]}`, v, e.recorderConf(v, "", nil)), nil)
		e.nad("on-disk", "", nil)
		e.writeConf("50-on-disk.conf", e.recorderConf(v, "on-disk", map[string]any{"ip": "192.0.2.50/24"}))
		e.writeConf("90-on-disk.conflist", e.recorderList(v, "on-disk"))
		conf := e.multusConf(v, nil)
		_, sb, _ := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "plain-conf,a-list,on-disk"})
		e.add(conf, sb)
		adds := e.recordsFor("ADD")
		if len(adds) != 3 {
			t.Fatalf("%d recorder ADDs, want 3", len(adds))
		}
		var c0 struct{ Name string }
		if err := adds[0].Conf(&c0); err != nil || c0.Name != "plain-conf" {
			t.Errorf("R-3.4.2: the NAD name was not injected: %s", adds[0].Stdin)
		}
		if strings.Contains(adds[2].Stdin, "192.0.2.50") {
			t.Errorf("R-3.4.1: the on-disk conf was used although a conflist of that name exists: %s", adds[2].Stdin)
		}
		e.del(conf, sb)

		t.Run("R-3.4.1 a NAD that resolves to nothing fails", func(t *testing.T) {
			e.nad("empty", "", nil)
			for _, sel := range []string{"empty", "absent"} {
				_, sb, _ := e.pod("pod-"+sel, map[string]string{"k8s.v1.cni.cncf.io/networks": sel})
				_, err := e.rt.Add(e.ctx, conf, sb)
				if ce := cniError(t, err); ce.Code != cnicode.NetworkNotFound || !strings.Contains(ce.Msg, e.namespace+"/"+sel) {
					t.Errorf("%s: got %v, want code %d naming the network", sel, err, cnicode.NetworkNotFound)
				}
				if evs := e.eventsWith("pod-"+sel, "Warning NoNetworkFound"); !strings.Contains(evs, "Warning NoNetworkFound") {
					t.Errorf("%s: no NoNetworkFound event: %s", sel, evs)
				}
				if _, err := os.Stat(e.recordFile(sb)); !os.IsNotExist(err) {
					t.Errorf("%s: a record was left for a failed ADD", sel)
				}
			}
		})

		t.Run("a plugin type that is a path never runs", func(t *testing.T) {
			e.nad("evil", fmt.Sprintf(`{"cniVersion":%q,"type":"../../../bin/true"}`, v), nil)
			_, sb, _ := e.pod("pod-evil", map[string]string{"k8s.v1.cni.cncf.io/networks": "evil"})
			_, err := e.rt.Add(e.ctx, conf, sb)
			if ce := cniError(t, err); ce.Code != cnicode.InvalidNetworkConfig || !strings.Contains(ce.Msg, "not a plain file name") {
				t.Errorf("got %v, want an invalid-config error", err)
			}
		})
	})
}

// recorderMap is a recorder conf as a map, for inline delegates.
func (e *env) recorderMap(version, name string) map[string]any {
	var m map[string]any
	_ = json.Unmarshal([]byte(e.recorderConf(version, name, nil)), &m)
	return m
}

// recorderList is a conflist of one recorder.
func (e *env) recorderList(version, name string) string {
	return fmt.Sprintf(`{"cniVersion":%q,"name":%q,"plugins":[%s]}`, version, name, e.recorderConf(version, "", nil))
}

// writeConf writes a configuration file under confDir and returns its path.
func (e *env) writeConf(rel, content string) string {
	e.t.Helper()
	path := filepath.Join(e.confDir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return path
}
