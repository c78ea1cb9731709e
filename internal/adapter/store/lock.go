package store

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Lock takes the store's lock, across processes (flock on <Dir>/.lock): shared
// for an ADD, from before its record is written until its delegates are done;
// exclusive for a GC. A GC therefore never sees an ADD half made, with delegates
// that cached results its record does not yet vouch for, and never tears such an
// attachment down; ADDs still run in parallel with each other. The returned
// function releases the lock.
func (s Store) Lock(exclusive bool) (func(), error) {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("record folder: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(s.Dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("record lock: %w", err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("record lock: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
