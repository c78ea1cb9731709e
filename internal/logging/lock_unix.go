//go:build unix

package logging

import (
	"os"
	"syscall"
)

// lockDir takes an exclusive flock on the folder dir and returns its release.
// Every process rotating a log file in dir takes it, so that one rotation is
// complete before another process checks whether the file is due. The kernel
// releases it if the process dies.
func lockDir(dir string) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
