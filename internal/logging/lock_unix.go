//go:build unix

package logging

import (
	"errors"
	"os"
	"syscall"
)

// flock takes the flock of f, shared or exclusive, waiting for it, and returns
// its release. A flock belongs to an open file, not to a process: two opens of
// one folder in the same process exclude each other as two processes do. The
// kernel releases it if the process dies.
func flock(f *os.File, exclusive bool) (func(), error) {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		return nil, err
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }, nil
}

// tryLock takes the exclusive flock of f if no one holds it, and reports
// whether it did. Closing f releases it.
func tryLock(f *os.File) (bool, error) {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}
