package store

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// blocked runs lock in a goroutine and reports whether it is still waiting
// after 200 ms; the channel closes once it has taken the lock and released it.
func blocked(t *testing.T, lock func() (func(), error)) (bool, <-chan struct{}) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		unlock, err := lock()
		if err != nil {
			t.Errorf("lock: %v", err)
			return
		}
		unlock()
	}()
	select {
	case <-done:
		return false, done
	case <-time.After(200 * time.Millisecond):
		return true, done
	}
}

// TestLocks proves, within one process as in the daemon, which locks exclude
// which: a sandbox's lock excludes only the same sandbox's; the records' lock
// shared excludes only exclusive; sandbox locks and the records' lock are
// independent (commands take both, GC only the records').
func TestLocks(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	sandbox := func(id string) func() (func(), error) {
		return func() (func(), error) { return s.LockSandbox(id) }
	}
	records := func(exclusive bool) func() (func(), error) {
		return func() (func(), error) { return s.Lock(exclusive) }
	}
	tests := []struct {
		name        string
		held, other func() (func(), error)
		wantBlocked bool
	}{
		{"the same sandbox waits", sandbox("c1"), sandbox("c1"), true},
		{"another sandbox does not", sandbox("c1"), sandbox("c2"), false},
		{"shared does not wait for shared", records(false), records(false), false},
		{"exclusive waits for shared", records(false), records(true), true},
		{"shared waits for exclusive", records(true), records(false), true},
		{"the records' lock does not wait for a sandbox's", sandbox("c1"), records(true), false},
		{"a sandbox's lock does not wait for the records'", records(true), sandbox("c1"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			unlock, err := tt.held()
			if err != nil {
				t.Fatal(err)
			}
			got, done := blocked(t, tt.other)
			unlock()
			<-done
			if got != tt.wantBlocked {
				t.Errorf("blocked = %v, want %v", got, tt.wantBlocked)
			}
		})
	}
}

// TestLocksAcrossProcesses proves that a sandbox's lock, and the records'
// lock taken exclusively, held by another process (a second thin plugin, a GC)
// are waited for, and are free once that process is gone, even killed.
func TestLocksAcrossProcesses(t *testing.T) {
	if os.Getenv("STORE_LOCK_HOLDER") != "" {
		return
	}
	tests := []struct {
		held string
		lock func(s Store) (func(), error)
	}{
		{"sandbox", func(s Store) (func(), error) { return s.LockSandbox("c1") }},
		{"exclusive", func(s Store) (func(), error) { return s.Lock(false) }},
	}
	for _, tt := range tests {
		t.Run(tt.held, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestLockHolder$")
			cmd.Env = append(os.Environ(), "STORE_LOCK_HOLDER="+dir, "STORE_LOCK_HELD="+tt.held)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "held\n" {
				t.Fatalf("holder said %q, %v", line, err)
			}
			got, done := blocked(t, func() (func(), error) { return tt.lock(Store{Dir: dir}) })
			if !got {
				t.Fatal("the lock held by another process was taken at once")
			}
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the lock of a killed process was not released")
			}
		})
	}
}

// TestLockHolder is the other process of TestLocksAcrossProcesses: it takes
// the lock STORE_LOCK_HELD names (sandbox c1's, or the records' exclusively)
// and holds it until killed.
func TestLockHolder(t *testing.T) {
	dir := os.Getenv("STORE_LOCK_HOLDER")
	if dir == "" {
		t.Skip("run by TestLocksAcrossProcesses")
	}
	s := Store{Dir: dir}
	var err error
	if os.Getenv("STORE_LOCK_HELD") == "sandbox" {
		_, err = s.LockSandbox("c1")
	} else {
		_, err = s.Lock(true)
	}
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("held")
	time.Sleep(time.Minute)
}
