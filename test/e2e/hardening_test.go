package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/mode/socketapi"
	"github.com/polynet-cni/polynet/test/testbed"
)

// TestPodDeviceIDNeedsOptIn: a deviceID in the pod's networks annotation, for
// a NAD that names no device-plugin resource, is refused with code 102 naming
// the pod, the network and the key to set, and no delegate runs; with the
// operator's allowPodDeviceID it reaches the delegate as upstream passes it.
func TestPodDeviceIDNeedsOptIn(t *testing.T) {
	modes(t, func(t *testing.T) {
		const v = "1.0.0"
		e := newEnv(t)
		e.nad("hostdev", e.recorderConf(v, "hostdev", map[string]any{"capabilities": map[string]bool{"deviceID": true}}), nil)
		annotation := map[string]string{"k8s.v1.cni.cncf.io/networks": `[{"name":"hostdev","deviceID":"0000:05:00.0"}]`}

		_, sb, _ := e.pod("pod-1", annotation)
		conf := e.multusConf(v, nil)
		_, err := e.rt.Add(e.ctx, conf, sb)
		ran := len(e.recordsFor("ADD"))
		e.del(conf, sb) // as the runtime does after a failed ADD
		ce := cniError(t, err)
		if ce.Code != cnicode.NetworkRefused {
			t.Errorf("ADD with a pod-chosen device: %v, want code %d", err, cnicode.NetworkRefused)
		}
		for _, want := range []string{e.namespace + "/pod-1", e.namespace + "/hostdev", "0000:05:00.0", "allowPodDeviceID"} {
			if !strings.Contains(ce.Msg, want) {
				t.Errorf("error %q does not name %s", ce.Msg, want)
			}
		}
		if ran != 0 {
			t.Errorf("%d delegates ran for the refused pod", ran)
		}

		_, sb2, _ := e.pod("pod-2", annotation)
		allowed := e.multusConf(v, map[string]any{"allowPodDeviceID": true})
		e.add(allowed, sb2)
		adds := e.recordsFor("ADD")[ran:]
		if len(adds) != 1 || !strings.Contains(adds[0].Stdin, `"deviceID":"0000:05:00.0"`) {
			t.Errorf("with allowPodDeviceID the delegate got %+v, want the pod's deviceID", adds)
		}
		e.del(allowed, sb2)
	})
}

// TestTooManyNetworks: a pod requesting more networks than maxNetworksPerPod
// is refused with code 102 naming the pod, the count and the key, before any
// delegate runs; at the bound it is attached.
func TestTooManyNetworks(t *testing.T) {
	modes(t, func(t *testing.T) {
		const v = "1.0.0"
		e := newEnv(t)
		for _, n := range []string{"a", "b", "c"} {
			e.nad(n, e.recorderConf(v, n, nil), nil)
		}
		conf := e.multusConf(v, map[string]any{"maxNetworksPerPod": 2})

		_, sb, _ := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "a,b,c"})
		_, err := e.rt.Add(e.ctx, conf, sb)
		ran := len(e.recordsFor("ADD"))
		e.del(conf, sb) // as the runtime does after a failed ADD
		ce := cniError(t, err)
		if ce.Code != cnicode.NetworkRefused {
			t.Errorf("ADD of 3 networks over a bound of 2: %v, want code %d", err, cnicode.NetworkRefused)
		}
		for _, want := range []string{e.namespace + "/pod-1", "3 networks", "maxNetworksPerPod"} {
			if !strings.Contains(ce.Msg, want) {
				t.Errorf("error %q does not name %s", ce.Msg, want)
			}
		}
		if ran != 0 {
			t.Errorf("%d delegates ran for the refused pod", ran)
		}

		_, sb2, _ := e.pod("pod-2", map[string]string{"k8s.v1.cni.cncf.io/networks": "a,b"})
		e.add(conf, sb2)
		if n := len(e.recordsFor("ADD")) - ran; n != 2 {
			t.Errorf("%d delegate ADDs at the bound, want 2", n)
		}
		e.del(conf, sb2)
	})
}

// TestDeviceInfoOverTheBound: device-info files are read up to 64 KiB. A
// device plugin's file over it fails the attachment before its delegate runs,
// naming the file and the bound; an attachment's own file over it after ADD
// (the chain's) leaves the pod attached, its network-status entry without
// device-info, and a Warning event naming the file.
func TestDeviceInfoOverTheBound(t *testing.T) {
	modes(t, func(t *testing.T) {
		const v = "1.0.0"
		e := newEnv(t)
		tmp := t.TempDir()
		devinfo := filepath.Join(tmp, "devinfo")
		socket := filepath.Join(tmp, "kubelet.sock")
		serveKubelet(t, socket, &kubelet{namespace: e.namespace, name: "pod-1", devices: map[string][]string{"example.com/sriov": {"0000:03:00.2"}}, get: true})
		big := map[string]any{"type": "pci", "version": "1.1.0", "pci": map[string]string{"pci-address": "0000:03:00.2"}, "pad": strings.Repeat("x", 70<<10)}
		dpFile := filepath.Join(devinfo, "dp", "example.com-sriov-0000:03:00.2-device.json")
		writeJSON(t, dpFile, big)
		caps := map[string]any{"capabilities": map[string]bool{"deviceID": true, "CNIDeviceInfoFile": true}}
		e.nad("sriov", e.recorderConf(v, "sriov", caps), map[string]string{"k8s.v1.cni.cncf.io/resourceName": "example.com/sriov"})
		e.nad("writer", e.recorderConf(v, "writer", caps), nil)
		conf := e.multusConf(v, map[string]any{"podResourcesSocket": socket, "deviceInfoDir": devinfo})

		_, sb, _ := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "sriov"})
		_, err := e.rt.Add(e.ctx, conf, sb)
		ran := len(e.recordsFor("ADD"))
		e.del(conf, sb) // as the runtime does after a failed ADD
		ce := cniError(t, err)
		for _, want := range []string{dpFile, "65536 bytes"} {
			if !strings.Contains(ce.Msg, want) {
				t.Errorf("ADD with an oversized device plugin file: %q does not name %s", ce.Msg, want)
			}
		}
		if ran != 0 {
			t.Errorf("%d delegates ran with an oversized device-info file", ran)
		}

		// The chain's file, as a plugin declaring CNIDeviceInfoFile leaves it.
		_, sb2, _ := e.pod("pod-2", map[string]string{"k8s.v1.cni.cncf.io/networks": "writer"})
		chainFile := filepath.Join(devinfo, "cni", fmt.Sprintf("%s-writer-%s_net1", e.namespace, sb2.ContainerID))
		writeJSON(t, chainFile, big)
		e.add(conf, sb2)
		st := e.networkStatus("pod-2")
		if len(st) != 2 || st[1].Name != e.namespace+"/writer" || st[1].DeviceInfo != nil {
			t.Errorf("network-status %+v, want the writer's entry without device-info", st)
		}
		if evs := e.eventsWith("pod-2", chainFile); !strings.Contains(evs, "Warning NetworkStatusFailed") || !strings.Contains(evs, "65536 bytes") {
			t.Errorf("events lack a Warning naming %s and the bound:\n%s", chainFile, evs)
		}
		e.del(conf, sb2)
		if _, err := os.Stat(chainFile); !os.IsNotExist(err) {
			t.Errorf("the attachment's device-info file survived DEL: %v", err)
		}
	})
}

// TestThickSecondDaemonRefused: a daemon started on the socket folder of a
// running one exits with an error naming the socket and the other daemon,
// instead of unlinking the running daemon's socket; the running daemon keeps
// serving.
func TestThickSecondDaemonRefused(t *testing.T) {
	const v = "1.0.0"
	e := thickEnv(t, nil)
	second, err := testbed.LaunchDaemon(t, e.cp, t.TempDir(), testbed.DaemonOptions{
		Config: map[string]any{"socketDir": e.daemon.SocketDir, "daemonSocketDir": e.daemon.SocketDir}, NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Process.Stop(5 * time.Second)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if exited, err := second.Process.Exited(); exited {
			if err == nil {
				t.Error("the second daemon exited 0")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second daemon did not stop:\n%s", second.Process.Tail(20))
		}
	}
	socket := socketapi.SocketPath(e.daemon.SocketDir)
	if log := second.Process.Tail(20); !strings.Contains(log, socket) || !strings.Contains(log, "another multus-daemon") {
		t.Errorf("the second daemon's output does not name %s and another multus-daemon:\n%s", socket, log)
	}
	e.nad("sec", e.recorderConf(v, "sec", nil), nil)
	conf := e.multusConf(v, nil)
	_, sb, _ := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "sec"})
	e.add(conf, sb)
	e.del(conf, sb)
}

// TestThickChrootRefusesPathTypes runs delegates chrooted (chrootDir "/", the
// node's own root): a network works, and a delegate whose "type" holds a path
// ("../" or "/") is refused with nothing run, through /cni and /delegate alike
// (CVE-2021-20206). ChrootExec's own refusal, which libcni relies on here, is
// proven in internal/adapter/delegate.
func TestThickChrootRefusesPathTypes(t *testing.T) {
	const v = "1.0.0"
	e := thickEnv(t, map[string]any{"chrootDir": "/"})
	e.nad("sec", e.recorderConf(v, "sec", nil), nil)
	conf := e.multusConf(v, nil)
	_, sb, _ := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "sec"})
	e.add(conf, sb)
	if n := len(e.recordsFor("ADD")); n != 1 {
		t.Fatalf("%d delegate ADDs in chroot mode, want 1", n)
	}
	recorder := testbed.Binary(t, "recorder")
	evil := "../../../../../../.." + recorder
	e.nad("evil", fmt.Sprintf(`{"cniVersion":%q,"name":"evil","type":%q,"recordDir":%q}`, v, evil, e.recordDir), nil)
	pod2, sb2, _ := e.pod("pod-2", map[string]string{"k8s.v1.cni.cncf.io/networks": "evil"})
	if _, err := e.rt.Add(e.ctx, conf, sb2); err == nil || !strings.Contains(err.Error(), "not a plain file name") {
		t.Errorf("ADD of type %q: %v, want a refusal", evil, err)
	}
	client := socketapi.Client{Socket: socketapi.SocketPath(e.daemon.SocketDir), ConnectTimeout: time.Second, RequestTimeout: time.Minute}
	env := testbed.CNIEnv("ADD", testbed.Sandbox{Pod: testbed.Pod{Namespace: e.namespace, Name: "pod-2", UID: string(pod2.UID)},
		ContainerID: sb2.ContainerID, NetNS: sb2.NetNS, IfName: "net9"}, e.bed.CNIPluginDir(), testbed.BinDir(t, "recorder"))
	for _, typ := range []string{evil, recorder} {
		hot := fmt.Sprintf(`{"cniVersion":%q,"name":"hot","type":%q,"recordDir":%q}`, v, typ, e.recordDir)
		// The daemon's plugin configuration, whose delegate this is, refuses it.
		if _, err := client.Do(e.ctx, socketapi.PathDelegate, &socketapi.Request{Env: env, Config: []byte(hot)}); err == nil ||
			!strings.Contains(err.Error(), `field "delegates[0]"`) {
			t.Errorf("/delegate ADD of type %q: %v, want a refusal", typ, err)
		}
	}
	if n := len(e.recordsFor("ADD")); n != 1 {
		t.Errorf("%d delegate ADDs, want only the first pod's", n)
	}
	e.del(conf, sb2)
	e.del(conf, sb)
}
