package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/polynet-cni/polynet/test/testbed"
)

// invocation is one run of a top-level CNI binary as the runtime makes it: the
// CNI environment and a configuration on stdin.
type invocation struct {
	bin   string
	env   map[string]string
	stdin []byte
}

// cost is what one process tree cost: its wall time and the user+system time of
// the process and every descendant it waited for.
type cost struct {
	wall time.Duration
	cpu  time.Duration
}

// errRefused is a CNI error of code 11 (try again later), which a runtime retries.
var errRefused = errors.New("refused, try again later (CNI code 11)")

// execCNI runs the invocation, bounded by testbed.CallTimeout. With peaks set,
// the process runs under GNU time, which appends "<kind> <peak KiB>" to the file
// peaks (see peakWrappers). A failure wraps errRefused when the plugin answered
// code 11.
func execCNI(ctx context.Context, inv invocation, peaks string) (cost, error) {
	ctx, cancel := context.WithTimeout(ctx, testbed.CallTimeout)
	defer cancel()
	name, args := inv.bin, []string(nil)
	if peaks != "" {
		name, args = "/usr/bin/time", []string{"-a", "-o", peaks, "-f", filepath.Base(inv.bin) + " %M", inv.bin}
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range inv.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = bytes.NewReader(inv.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	c := cost{wall: time.Since(start)}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			c.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	if err != nil {
		var ce types.Error
		if json.Unmarshal(stdout.Bytes(), &ce) == nil && ce.Code == 11 {
			return c, fmt.Errorf("%s %s: %w: %s", filepath.Base(inv.bin), inv.env["CNI_COMMAND"], errRefused, ce.Msg)
		}
		return c, fmt.Errorf("%s %s: %v\nstdout: %s\nstderr: %s", filepath.Base(inv.bin), inv.env["CNI_COMMAND"], err, stdout.Bytes(), tail(stderr.String(), 2000))
	}
	return c, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// peakWrappers writes, into dir, one script per plugin in pluginDir that runs
// the real plugin under GNU time, appending "<plugin> <peak KiB>" to the file
// peaks.
//
// The detour exists because a Go program starts its children with vfork: until
// it execs, the child shares its parent's memory, and the kernel carries the
// parent's peak RSS into the child's (exec_mmap records the old memory's high
// water mark). So a plugin that multus, the daemon or libcni starts would report
// at least its parent's peak. GNU time forks, so the plugin it starts begins
// clean, and time reports that plugin's own peak. Only the memory runs use the
// wrappers: they add two short processes per plugin call, which the timed runs
// must not pay.
func peakWrappers(dir, pluginDir, peaks string, plugins []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, p := range plugins {
		script := fmt.Sprintf("#!/bin/sh\nexec /usr/bin/time -a -o %q -f '%s %%M' %q \"$@\"\n", peaks, p, filepath.Join(pluginDir, p))
		if err := os.WriteFile(filepath.Join(dir, p), []byte(script), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// readPeaks returns the largest peak (MiB) of each process kind in a peaks
// file and empties the file for the next run.
func readPeaks(path string) (map[string]float64, error) {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			// GNU time prints "Command exited with non-zero status N" first
			// when the plugin failed; the run reports that failure itself.
			continue
		}
		kib, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: line %q", path, sc.Text())
		}
		out[f[0]] = max(out[f[0]], kib/1024)
	}
	return out, os.WriteFile(path, nil, 0o644)
}

// daemonMeter reads a running daemon's own CPU time, that of the plugins it
// has reaped, and its peak RSS since the last reset.
type daemonMeter struct{ pid int }

// cpu is the daemon's user+system time so far, its own (to the nanosecond, by
// the process CPU clock) plus its reaped children's (in clock ticks, from
// /proc/<pid>/stat: the error of a difference of two readings is below one
// tick, and averages out over the rounds).
func (d daemonMeter) cpu() (time.Duration, error) {
	// MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED) of the kernel's posix-timers.h.
	clock := (^int32(d.pid))<<3 | 2
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, uintptr(int(clock)), uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return 0, fmt.Errorf("CPU clock of pid %d: %w", d.pid, errno)
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses; cutime and
	// cstime are fields 16 and 17 of proc(5), here 13 and 14.
	_, rest, ok := strings.Cut(string(data), ") ")
	fields := strings.Fields(rest)
	if !ok || len(fields) < 15 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected %q", d.pid, data)
	}
	var ticks int64
	for _, f := range fields[13:15] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", d.pid, err)
		}
		ticks += n
	}
	const userHZ = 100 // USER_HZ, the unit of /proc's times on Linux
	return time.Duration(ts.Nano()) + time.Duration(ticks)*time.Second/userHZ, nil
}

// resetPeak sets the daemon's high water mark of RSS to its current RSS.
func (d daemonMeter) resetPeak() error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", d.pid), []byte("5"), 0)
}

// peakMiB is the daemon's VmHWM since the last resetPeak.
func (d daemonMeter) peakMiB() (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kib / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", d.pid)
}
