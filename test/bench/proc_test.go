package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/test/testbed"
)

// procStatusKiB reads one memory line of /proc/<pid>/status (VmRSS, VmHWM), in KiB.
func procStatusKiB(pid int, key string) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", key, pid)
}

// retryAfter is how long a refused CNI call (code 11) waits before it is
// retried, as the kubelet retries a sandbox.
const retryAfter = 50 * time.Millisecond

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, 100 a second
// on Linux.
const userHZ = 100

// procCPU is the CPU time, user and system, of all the process's threads, to
// the nanosecond: the process's CPU clock (MAKE_PROCESS_CPUCLOCK(pid,
// CPUCLOCK_SCHED) of the kernel's posix-timers.h), where /proc/<pid>/stat
// counts whole clock ticks (10 ms).
func procCPU(pid int) (time.Duration, error) {
	clock := (^int32(pid))<<3 | 2
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, uintptr(int(clock)), uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return 0, fmt.Errorf("CPU clock of pid %d: %w", pid, errno)
	}
	return time.Duration(ts.Nano()), nil
}

// reapedCPU is the CPU time, user and system, of the children the process has
// waited for (cutime and cstime of /proc/<pid>/stat), to the clock tick.
func reapedCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: count fields after it.
	// fields[0] is the state (field 3 of proc(5)); cutime and cstime are 16 and 17.
	_, rest, ok := strings.Cut(string(data), ") ")
	fields := strings.Fields(rest)
	if !ok || len(fields) < 15 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, data)
	}
	var ticks int64
	for _, f := range fields[13:15] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// resetPeak makes the kernel's VmHWM of the process start again from its
// current RSS.
func resetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// mib reads a memory line of the process's status in MiB, failing tb on error.
func mib(tb testing.TB, pid int, key string) float64 {
	tb.Helper()
	kib, err := procStatusKiB(pid, key)
	if err != nil {
		tb.Fatal(err)
	}
	return kib / 1024
}

// settle waits until the process's RSS holds within 2% over three reads a second
// apart, for up to two minutes, and returns the last read in MiB and whether it
// settled: a process that never does is measured anyway, and the log says so.
func settle(tb testing.TB, pid int) (float64, bool) {
	tb.Helper()
	const reads, bound = 3, 2 * time.Minute
	var last []float64
	for deadline := time.Now().Add(bound); ; time.Sleep(time.Second) {
		last = append(last, mib(tb, pid, "VmRSS"))
		if len(last) > reads {
			last = last[1:]
		}
		if len(last) == reads && spread(last) <= 0.02 {
			return last[reads-1], true
		}
		if time.Now().After(deadline) {
			benchLog("RSS of pid %d did not settle within %s: last reads %v MiB", pid, bound, last)
			return last[len(last)-1], false
		}
	}
}

// spread is (max-min)/min of the values.
func spread(v []float64) float64 {
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	if lo == 0 {
		return 0
	}
	return (hi - lo) / lo
}

// rssSampler reads a process's VmRSS about every interval until stopped: the
// memory timeline of a burst. On a loaded machine its reads come late or not
// at all, so each is kept with the time it was taken, and end lays them on the
// interval's grid.
type rssSampler struct {
	every time.Duration
	start time.Time
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	reads []rssRead
}

type rssRead struct {
	at  time.Duration // since start
	mib float64
}

func sampleRSS(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{every: every, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if kib, err := procStatusKiB(pid, "VmRSS"); err == nil {
				s.mu.Lock()
				s.reads = append(s.reads, rssRead{at: time.Since(s.start), mib: kib / 1024})
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// elapsed is the time since the sampler started.
func (s *rssSampler) elapsed() time.Duration { return time.Since(s.start) }

// end stops the sampler and returns the timeline on the grid of its interval:
// each point is the largest read taken in its interval, or the point before it
// when none was.
func (s *rssSampler) end() []float64 {
	close(s.stop)
	<-s.done
	if len(s.reads) == 0 {
		return nil
	}
	grid := make([]float64, int(s.reads[len(s.reads)-1].at/s.every)+1)
	seen := make([]bool, len(grid))
	for _, r := range s.reads {
		i := int(r.at / s.every)
		grid[i], seen[i] = max(grid[i], r.mib), true
	}
	for i := range grid {
		if !seen[i] && i > 0 {
			grid[i] = grid[i-1]
		}
	}
	return grid
}

// burstStats is what one burst of CNI calls came to.
type burstStats struct {
	took    time.Duration
	refused int64 // code 11 answers, each retried
	failed  []error
}

// cniBurst runs op for every sandbox at once and retries each refusal (CNI code
// 11, try again later) after a short back-off, as the kubelet retries a pod
// sandbox whose network set-up was refused.
func cniBurst(ctx context.Context, sbs []testbed.Sandbox, op func(context.Context, testbed.Sandbox) error) burstStats {
	var (
		st      burstStats
		refused atomic.Int64
		mu      sync.Mutex
		wg      sync.WaitGroup
	)
	start := time.Now()
	for _, sb := range sbs {
		wg.Go(func() {
			for {
				err := op(ctx, sb)
				var ce *types.Error
				if errors.As(err, &ce) && ce.Code == cnicode.TryAgainLater && ctx.Err() == nil {
					refused.Add(1)
					time.Sleep(retryAfter) // the runtime's back-off, not a wait for a condition
					continue
				}
				if err != nil {
					mu.Lock()
					st.failed = append(st.failed, fmt.Errorf("%s: %w", sb.Pod.Name, err))
					mu.Unlock()
				}
				return
			}
		})
	}
	wg.Wait()
	st.took, st.refused = time.Since(start), refused.Load()
	return st
}

// newSandboxes gives each pod a fresh sandbox: a network namespace of its own,
// deleted when the benchmark ends if not before, and a container ID.
func newSandboxes(tb testing.TB, pods []testbed.Pod, idPrefix string) ([]testbed.Sandbox, []*testbed.NetNS) {
	tb.Helper()
	sbs := make([]testbed.Sandbox, len(pods))
	nss := make([]*testbed.NetNS, len(pods))
	for i, p := range pods {
		nss[i] = testbed.NewNetNS(tb)
		sbs[i] = testbed.Sandbox{Pod: p, ContainerID: fmt.Sprintf("%s-%d", idPrefix, i), NetNS: nss[i].Path}
	}
	return sbs, nss
}

// deleteNetNS removes the namespaces now rather than at the end of the
// benchmark, so that a long run does not pile them up.
func deleteNetNS(tb testing.TB, nss []*testbed.NetNS) {
	tb.Helper()
	for _, n := range nss {
		if err := n.Delete(); err != nil {
			tb.Error(err)
		}
	}
}

// benchLog prints a line of a benchmark's account to stderr: the testing
// package keeps only the first ten lines a benchmark logs.
func benchLog(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}
