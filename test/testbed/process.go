package testbed

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a long-running program started by a test (etcd, kube-apiserver, later
// our daemon). It writes its output to a log file, dies with the test binary
// (Pdeathsig), and is ended by its PID.
type Process struct {
	Name string
	Log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error

	mu      sync.Mutex
	stopped bool
}

// StartProcess starts bin with args, its output appended to logPath.
func StartProcess(name, bin string, args []string, env []string, logPath string) (*Process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	trackPID(cmd.Process.Pid)
	p := &Process{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// PID is the process ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM, waits up to grace, then SIGKILLs, and waits for the exit. It
// is safe to call twice.
func (p *Process) Stop(grace time.Duration) {
	p.mu.Lock()
	already := p.stopped
	p.stopped = true
	p.mu.Unlock()
	if !already {
		_ = syscall.Kill(p.PID(), syscall.SIGTERM)
	}
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(p.PID(), syscall.SIGKILL)
		<-p.done
	}
	untrackPID(p.PID())
}

// Kill ends the process at once with SIGKILL and waits for it.
func (p *Process) Kill() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	_ = syscall.Kill(p.PID(), syscall.SIGKILL)
	<-p.done
	untrackPID(p.PID())
}

// Tail returns the end of the process's log, for error messages.
func (p *Process) Tail(n int) string {
	data, err := os.ReadFile(p.Log)
	if err != nil {
		return ""
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// errExited is returned while waiting for a process that has already ended.
var errExited = errors.New("process exited")

// failureTailLines is how much of each process's log a failed test prints.
const failureTailLines = 40

// tailsRegistered holds the (test, key) pairs that already print tails on failure,
// so a test that reaches a shared process through several helpers prints it once.
var tailsRegistered sync.Map

type tailsKey struct {
	tb  testing.TB
	key string
}

// TailsOnFailure makes tb print, if it ends failed, the last lines of the logs of
// the processes procs returns at that time (a restarted daemon's new process, not
// the one it had when registered). The helpers that hand a test a control plane
// or a daemon call it, so every integration test that fails shows what those
// processes said last. key names the set; a second call with the same test and key
// does nothing.
func TailsOnFailure(tb testing.TB, key string, procs func() []*Process) {
	k := tailsKey{tb, key}
	if _, dup := tailsRegistered.LoadOrStore(k, true); dup {
		return
	}
	tb.Cleanup(func() {
		defer tailsRegistered.Delete(k)
		if !tb.Failed() {
			return
		}
		for _, p := range procs() {
			if p != nil {
				tb.Logf("--- %s (pid %d), the last %d lines of %s:\n%s", p.Name, p.PID(), failureTailLines, p.Log, p.Tail(failureTailLines))
			}
		}
	})
}

// waitFor polls ready until it returns nil, the process exits or the timeout
// passes. ready's own calls should be bounded well below timeout, so a slow answer
// is retried rather than ending the wait.
func (p *Process) waitFor(timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if exited, err := p.Exited(); exited {
			return fmt.Errorf("%s: %w (%v); log:\n%s", p.Name, errExited, err, p.Tail(30))
		}
		if last = ready(); last == nil {
			return nil
		}
		time.Sleep(pollInterval)
	}
	return fmt.Errorf("%s not ready after %s: %v; log:\n%s", p.Name, timeout, last, p.Tail(30))
}

// trackedPIDs are the long-running processes the tests started on purpose; the leak
// check does not report them.
var (
	trackedMu   sync.Mutex
	trackedPIDs = map[int]bool{}
)

func trackPID(pid int) {
	trackedMu.Lock()
	defer trackedMu.Unlock()
	trackedPIDs[pid] = true
}

func untrackPID(pid int) {
	trackedMu.Lock()
	defer trackedMu.Unlock()
	delete(trackedPIDs, pid)
}

func isTracked(pid int) bool {
	trackedMu.Lock()
	defer trackedMu.Unlock()
	return trackedPIDs[pid]
}
