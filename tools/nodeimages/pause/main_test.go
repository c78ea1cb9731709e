package main

import (
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// TestReapsChildrenAndStopsOnSIGTERM runs the pause loop in this process: a child
// that exits is reaped, and SIGTERM ends the loop instead of the process.
func TestReapsChildrenAndStopsOnSIGTERM(t *testing.T) {
	s := listen()
	defer signal.Stop(s.stop)
	defer signal.Stop(s.child)
	reaped := make(chan int, 8)
	done := make(chan struct{})
	go func() {
		s.wait(func(pid int) { reaped <- pid })
		close(done)
	}()

	truePath := "/bin/true"
	if _, err := os.Stat(truePath); err != nil {
		truePath = "/usr/bin/true"
	}
	pid, err := syscall.ForkExec(truePath, []string{"true"}, &syscall.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	timeout := time.After(30 * time.Second)
	select {
	case got := <-reaped:
		if got != pid {
			t.Fatalf("reaped %d, started %d", got, pid)
		}
	case <-timeout:
		t.Fatalf("child %d was not reaped", pid)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-timeout:
		t.Fatal("SIGTERM did not stop the loop")
	}
}
