package testbed

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
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

// waitFor polls ready every interval until it returns nil, the process exits or
// the timeout passes.
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
		time.Sleep(100 * time.Millisecond)
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
