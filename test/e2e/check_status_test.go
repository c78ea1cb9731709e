package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/test/testbed"
)

// TestCheckEveryAttachment runs CHECK on every attachment from its record, with the
// real bridge and macvlan plugins, and proves it fails, naming the attachment, when
// an interface or an address is removed behind our back.
func TestCheckEveryAttachment(t *testing.T) {
	modes(t, func(t *testing.T) {
		for _, v := range []string{"0.4.0", "1.0.0", "1.1.0"} {
			t.Run(v, func(t *testing.T) {
				e := newEnv(t)
				master := fmt.Sprintf("mvc%d", e.idx)
				addBridge(t, master)
				e.nad("mv", fmt.Sprintf(`{"cniVersion":%q,"type":"macvlan","master":%q,"capabilities":{"ips":true},"ipam":{"type":"static"}}`, v, master), nil)
				_, sb, netns := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": `[{"name":"mv","ips":["10.201.0.5/24"]}]`})
				conf := e.multusConf(v, nil)
				e.add(conf, sb)
				if err := e.rt.Check(e.ctx, conf, sb); err != nil {
					t.Fatalf("CHECK of a healthy pod: %v\nlog:\n%s", err, readFile(e.logFile))
				}

				removeLink(t, netns, "net1")
				err := e.rt.Check(e.ctx, conf, sb)
				if err == nil || !strings.Contains(err.Error(), e.namespace+"/mv") || !strings.Contains(err.Error(), "net1") {
					t.Errorf("CHECK with net1 gone: %v, want a failure naming %s/mv and net1", err, e.namespace)
				}

				e.del(conf, sb)
				_, sb2, netns2 := e.pod("pod-2", nil)
				e.add(conf, sb2)
				flushAddrs(t, netns2, "eth0")
				err = e.rt.Check(e.ctx, conf, sb2)
				if err == nil || !strings.Contains(err.Error(), "cluster-net") {
					t.Errorf("CHECK with eth0's address gone: %v, want a failure naming the cluster network", err)
				}
				e.del(conf, sb2)
			})
		}
	})
}

// TestCheckUnknownSandbox: CHECK of a sandbox we hold no record of fails with the
// spec's "unknown container" (3).
func TestCheckUnknownSandbox(t *testing.T) {
	modes(t, func(t *testing.T) {
		e := newEnv(t)
		_, sb, _ := e.pod("pod-1", nil)
		res, err := testbed.ExecPlugin(e.ctx, testbed.Invocation{
			Binary: e.binary(), Env: testbed.CNIEnv("CHECK", sb, e.bed.CNIPluginDir()),
			Stdin: e.multusConf("1.0.0", nil),
		})
		if err != nil {
			t.Fatal(err)
		}
		if ce, err := res.CNIError(); err != nil || ce.Code != cnicode.UnknownContainer {
			t.Errorf("CHECK of an unknown sandbox: %s (%v), want code 3", res.Stdout, err)
		}
	})
}

// TestStatus: STATUS (CNI 1.1) answers whether pods can be added now. It passes
// with the real bridge cluster network; fails with 50 when the readiness
// indicator is missing or the API server refuses our credentials; passes on a
// cluster network's own STATUS error with its code; and skips the STATUS of a
// cluster network older than 1.1.0.
func TestStatus(t *testing.T) {
	e := newEnv(t)
	status := func(conf []byte) error { return e.rt.Status(e.ctx, conf) }
	if err := status(e.multusConf("1.1.0", nil)); err != nil {
		t.Errorf("STATUS with the real bridge cluster network: %v", err)
	}
	missing := e.multusConf("1.1.0", map[string]any{"readinessindicatorfile": "/nonexistent/ready"})
	if ce := cniError(t, status(missing)); ce.Code != cnicode.PluginNotAvailable || !strings.Contains(ce.Msg, "/nonexistent/ready") {
		t.Errorf("STATUS without the readiness indicator: %v, want code 50", ce)
	}
	down := e.recorderMap("1.1.0", "cluster")
	down["errors"] = map[string]any{"STATUS": map[string]any{"code": 51, "msg": "scripted: limited connectivity"}}
	if ce := cniError(t, status(e.multusConf("1.1.0", map[string]any{"delegates": []any{down}}))); ce.Code != 51 {
		t.Errorf("STATUS of a failing cluster network: %v, want its code 51", ce)
	}
	old := e.recorderMap("1.0.0", "cluster")
	old["errors"] = down["errors"]
	if err := status(e.multusConf("1.1.0", map[string]any{"delegates": []any{old}})); err != nil {
		t.Errorf("STATUS of a 1.0.0 cluster network must be skipped: %v", err)
	}
	bad := e.cp.AdminConfig()
	bad.CertData, bad.KeyData, bad.BearerToken = nil, nil, "not-a-token"
	if err := writeKubeconfig(e.kubeconfig, bad); err != nil {
		t.Fatal(err)
	}
	if ce := cniError(t, status(e.multusConf("1.1.0", nil))); ce.Code != cnicode.PluginNotAvailable || !strings.Contains(ce.Msg, "401") {
		t.Errorf("STATUS with rejected credentials: %v, want code 50 with the 401", ce)
	}
}

func removeLink(t *testing.T, netns *testbed.NetNS, name string) {
	t.Helper()
	err := netns.Do(func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		return netlink.LinkDel(l)
	})
	if err != nil {
		t.Fatalf("removing %s: %v", name, err)
	}
}

func flushAddrs(t *testing.T, netns *testbed.NetNS, name string) {
	t.Helper()
	err := netns.Do(func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if err := netlink.AddrDel(l, &a); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("flushing %s: %v", name, err)
	}
}
