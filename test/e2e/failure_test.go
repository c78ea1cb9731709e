package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFailureOfSecondOfThreeRollsBack: R-7.2a, the failure of an attachment fails
// the ADD at once; the third network is never attempted; the attachments already
// made (the real bridge + host-local cluster network) and the failed one are torn
// down in reverse; the error names the pod, the network and the delegate and keeps
// the delegate's CNI code; nothing is left: no link, no address, no record.
func TestFailureOfSecondOfThreeRollsBack(t *testing.T) {
	modes(t, func(t *testing.T) {
		for _, v := range []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
			t.Run(v, func(t *testing.T) {
				e := newEnv(t)
				e.nad("second", e.recorderConf(v, "second", map[string]any{
					"errors": map[string]any{"ADD": map[string]any{"code": 142, "msg": "scripted: no VF left"}},
				}), nil)
				e.nad("third", e.recorderConf(v, "third", nil), nil)
				_, sb, netns := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "second,third"})
				_, err := e.rt.Add(e.ctx, e.multusConf(v, nil), sb)
				ce := cniError(t, err)
				if ce.Code != 142 {
					t.Errorf("code %d, want the delegate's 142", ce.Code)
				}
				for _, want := range []string{e.namespace + "/pod-1", e.namespace + "/second", "recorder", "scripted: no VF left"} {
					if !strings.Contains(ce.Msg, want) {
						t.Errorf("error %q does not name %q", ce.Msg, want)
					}
				}
				if got := strings.Join(e.ifnames(), ","); got != "second@net1" {
					t.Errorf("recorder ADDs %s: the third network must not be attempted", got)
				}
				if dels := e.recordsFor("DEL"); len(dels) != 1 || dels[0].Env["CNI_IFNAME"] != "net1" {
					t.Errorf("rollback DELs %+v, want the failed attachment's", dels)
				}
				if got := links(t, netns); len(got) != 1 {
					t.Errorf("pod links after the failed ADD %v, want only lo: the cluster network was not rolled back", got)
				}
				if _, err := os.Stat(e.recordFile(sb)); !os.IsNotExist(err) {
					t.Errorf("the record survived a complete rollback")
				}
				if evs := e.eventsWith("pod-1", "Warning NetworkAttachmentFailed"); !strings.Contains(evs, "Warning NetworkAttachmentFailed") {
					t.Errorf("no failure event: %s", evs)
				}
				// The runtime still sends DEL after a failed ADD; it must succeed.
				e.del(e.multusConf(v, nil), sb)
			})
		}
	})
}

// TestDelTearsDownEverythingAndKeepsRecordOnFailure: R-7.2b, one failing delegate
// does not stop the others; the DEL fails with the delegate's code; the record
// stays, so the runtime's retry, once the delegate recovers, finishes the job.
func TestDelTearsDownEverythingAndKeepsRecordOnFailure(t *testing.T) {
	modes(t, func(t *testing.T) {
		const v = "1.0.0"
		e := newEnv(t)
		broken := filepath.Join(t.TempDir(), "broken")
		if err := os.WriteFile(broken, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		e.nad("flaky", e.recorderConf(v, "flaky", map[string]any{
			"errors":      map[string]any{"DEL": map[string]any{"code": 11, "msg": "scripted: busy"}},
			"errorsWhile": broken,
		}), nil)
		e.nad("fine", e.recorderConf(v, "fine", nil), nil)
		_, sb, netns := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "fine,flaky,fine"})
		conf := e.multusConf(v, nil)
		e.add(conf, sb)

		err := e.rt.Del(e.ctx, conf, sb)
		if ce := cniError(t, err); ce.Code != 11 || !strings.Contains(ce.Msg, "flaky") {
			t.Fatalf("DEL: got %v, want the delegate's code 11 naming the network", err)
		}
		var order []string
		for _, r := range e.recordsFor("DEL") {
			order = append(order, r.Env["CNI_IFNAME"])
		}
		if got := strings.Join(order, ","); got != "net3,net2,net1" {
			t.Errorf("DEL order %s, want every attachment in reverse: net3,net2,net1", got)
		}
		if got := links(t, netns); len(got) != 1 {
			t.Errorf("the cluster network was not torn down although another delegate failed: %v", got)
		}
		if _, err := os.Stat(e.recordFile(sb)); err != nil {
			t.Fatalf("the record was removed although a delegate failed: %v", err)
		}

		if err := os.Remove(broken); err != nil {
			t.Fatal(err)
		}
		e.del(conf, sb)
		if _, err := os.Stat(e.recordFile(sb)); !os.IsNotExist(err) {
			t.Errorf("the record survived a successful DEL")
		}
		e.del(conf, sb) // DEL twice succeeds
	})
}

// TestDelVariants: DEL after the pod is deleted, DEL of a sandbox whose netns is
// gone, DEL twice, DEL with neither record nor pod, and DEL of a corrupt record
// (refused, with the file named, and kept).
func TestDelVariants(t *testing.T) {
	modes(t, func(t *testing.T) {
		const v = "1.0.0"
		e := newEnv(t)
		e.nad("sec", e.recorderConf(v, "sec", nil), nil)
		conf := e.multusConf(v, nil)
		ann := map[string]string{"k8s.v1.cni.cncf.io/networks": "sec"}

		t.Run("after the pod and its NAD are deleted", func(t *testing.T) {
			_, sb, netns := e.pod("gone", ann)
			e.add(conf, sb)
			e.deletePod("gone")
			e.deleteNAD("sec")
			e.del(conf, sb)
			if got := links(t, netns); len(got) != 1 {
				t.Errorf("links left: %v", got)
			}
			e.nad("sec", e.recorderConf(v, "sec", nil), nil)
		})
		t.Run("netns already gone", func(t *testing.T) {
			_, sb, netns := e.pod("nonetns", ann)
			e.add(conf, sb)
			if err := netns.Delete(); err != nil {
				t.Fatal(err)
			}
			e.del(conf, sb)
			sb.NetNS = ""
			e.del(conf, sb)
		})
		t.Run("no record and no pod", func(t *testing.T) {
			sb := e.sandboxFor("never-existed", "uid-x")
			e.del(conf, sb)
		})
		t.Run("corrupt record is refused and kept", func(t *testing.T) {
			_, sb, _ := e.pod("corrupt", ann)
			e.add(conf, sb)
			path := e.recordFile(sb)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, data[:len(data)/2], 0o600); err != nil {
				t.Fatal(err)
			}
			err = e.rt.Del(e.ctx, conf, sb)
			if ce := cniError(t, err); ce.Code != 106 || !strings.Contains(ce.Msg, path) {
				t.Errorf("got %v, want code 106 naming %s", err, path)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("the corrupt record was removed: %v", err)
			}
			// Restore it so the test's own teardown can finish.
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			e.del(conf, sb)
		})
	})
}

// sandboxFor is a sandbox of a pod that exists nowhere.
func (e *env) sandboxFor(name, uid string) testbedSandbox {
	return testbedSandbox{
		Pod:         testbedPod{Namespace: e.namespace, Name: name, UID: uid},
		ContainerID: fmt.Sprintf("ctr-%d-%s", e.idx, name),
		NetNS:       "/var/run/netns/does-not-exist",
	}
}
