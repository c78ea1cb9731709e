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

// cpu is the daemon's user+system time so far, its own (to the nanosecond)
// plus its reaped children's (in clock ticks: the error of a difference of two
// readings is below one tick, and averages out over the rounds).
func (d daemonMeter) cpu() (time.Duration, error) {
	own, err := procCPU(d.pid)
	if err != nil {
		return 0, err
	}
	reaped, err := reapedCPU(d.pid)
	return own + reaped, err
}

// resetPeak sets the daemon's high water mark of RSS to its current RSS.
func (d daemonMeter) resetPeak() error { return resetPeak(d.pid) }

// peakMiB is the daemon's VmHWM since the last resetPeak.
func (d daemonMeter) peakMiB() (float64, error) {
	kib, err := procStatusKiB(d.pid, "VmHWM")
	return kib / 1024, err
}
