package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/test/testbed"
)

// BenchmarkDaemonMemory measures multus-daemon's memory at rest, once its caches
// are filled, and its peak during a burst of 50 pods added and deleted at once
// through an in-flight bound of 4 (the runtime retries what is refused), side by
// side with the reference bridge plugin's peak for one VERSION call. Run:
//
//	go test -run XXX -bench DaemonMemory -benchtime 1x ./test/e2e/
func BenchmarkDaemonMemory(b *testing.B) {
	bed := testbed.Require(b)
	cp := testbed.SharedControlPlane(b)
	kc, nc := cp.AdminClients(b)
	d := testbed.StartDaemon(b, cp, testbed.DaemonOptions{Config: map[string]any{"maxInFlight": 4}})
	tmp := b.TempDir()
	ns := fmt.Sprintf("bench-%d", os.Getpid())
	ctx := b.Context()
	testbed.CreateNamespace(ctx, b, kc, ns)
	rec := func(name string) string {
		return fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"recorder","recordDir":%q}`, name, filepath.Join(tmp, "records"))
	}
	testbed.CreateNAD(ctx, b, nc, ns, "sec", rec("sec"), nil)
	conf := []byte(fmt.Sprintf(`{"cniVersion":"1.0.0","name":"multus-cni-network","type":"multus-shim","daemonSocketDir":%q,
		"cniDir":%q,"binDir":%q,"delegates":[%s]}`, d.SocketDir, filepath.Join(tmp, "cni"), bed.CNIPluginDir(), rec("cluster")))
	rt := testbed.NewRuntime([]string{testbed.BinDir(b, "multus-shim", "recorder"), bed.CNIPluginDir()}, filepath.Join(tmp, "cache"))
	time.Sleep(time.Second)
	rest := procKiB(b, d.Process.PID(), "VmRSS")
	var bridgePeak, burstPeak float64
	for i := 0; b.Loop(); i++ {
		sbs := make([]testbed.Sandbox, 50)
		for j := range sbs {
			name := fmt.Sprintf("pod-%d-%d", i, j)
			pod := testbed.CreatePod(ctx, b, kc, ns, name, map[string]string{"k8s.v1.cni.cncf.io/networks": "sec"})
			sbs[j] = testbed.Sandbox{Pod: testbed.Pod{Namespace: ns, Name: name, UID: string(pod.UID)},
				ContainerID: fmt.Sprintf("bench-%d-%d", i, j), NetNS: testbed.NewNetNS(b).Path}
		}
		// Reset the daemon's peak, so the burst's is what is read after it.
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", d.Process.PID()), []byte("5"), 0); err != nil {
			b.Fatal(err)
		}
		burst(b, func(sb testbed.Sandbox) error { _, err := rt.Add(ctx, conf, sb); return err }, sbs)
		burst(b, func(sb testbed.Sandbox) error { return rt.Del(ctx, conf, sb) }, sbs)
		burstPeak = max(burstPeak, procKiB(b, d.Process.PID(), "VmHWM"))
		bridgePeak = max(bridgePeak, timedPeakKiB(b, filepath.Join(bed.CNIPluginDir(), "bridge")))
	}
	b.ReportMetric(rest/1024, "daemon-rest-MiB")
	b.ReportMetric(burstPeak/1024, "daemon-burst-peak-MiB")
	b.ReportMetric(bridgePeak/1024, "bridge-MiB")
}

// burst runs op for every sandbox at once, retrying refusals (code 11) as kubelet
// does.
func burst(b *testing.B, op func(testbed.Sandbox) error, sbs []testbed.Sandbox) {
	var wg sync.WaitGroup
	for _, sb := range sbs {
		wg.Go(func() {
			for {
				err := op(sb)
				var ce *types.Error
				if errors.As(err, &ce) && ce.Code == cnicode.TryAgainLater {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				if err != nil {
					b.Error(err)
				}
				return
			}
		})
	}
	wg.Wait()
}

// procKiB reads a memory line (VmRSS, VmHWM) of /proc/<pid>/status, in KiB.
func procKiB(b *testing.B, pid int, key string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			n, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatalf("no %s in /proc/%d/status", key, pid)
	return 0
}

// timedPeakKiB is a plugin's peak RSS for one VERSION call, by /usr/bin/time.
func timedPeakKiB(b *testing.B, bin string) float64 {
	var out bytes.Buffer
	cmd := exec.Command("/usr/bin/time", "-f", "%M", bin)
	cmd.Env = []string{"CNI_COMMAND=VERSION"}
	cmd.Stdin = strings.NewReader(`{"cniVersion":"1.0.0"}`)
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		b.Fatal(err)
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(out.String()), 64)
	if err != nil {
		b.Fatal(err)
	}
	return n
}
