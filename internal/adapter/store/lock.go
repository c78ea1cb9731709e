package store

import (
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// The store's locks are open file description locks on bytes of one file,
// <Dir>/.lock, so that no file is made per sandbox and none is left behind:
//
//   - byte 0 is the records' lock: shared for the commands of sandboxes, from
//     before one reads or writes its record until its delegates are done;
//     exclusive for a GC, which therefore never meets an ADD or a DEL half done
//     (the CNI spec lets no GC run while an ADD or DEL is in progress);
//   - byte 1+h, h a 62-bit hash of a container ID, is that sandbox's lock,
//     which serialises its commands, even when they come from two
//     processes: the thin plugin started twice by a runtime that gave up on an
//     ADD and sent the DEL. Two sandboxes whose IDs hash alike merely wait for
//     each other.
//
// An open file description lock belongs to the open file, not to the process
// (unlike a classic POSIX record lock), so two goroutines of the daemon, each
// with its own open of the file, exclude each other as two processes do; the
// kernel drops it when the file is closed, so a killed process holds nothing.
// All locks being record locks of one kind, they never interact with each
// other in unexpected ways, as flock and record locks do on NFS.

// fOFDSetLkW is Linux's F_OFD_SETLKW (fcntl.h), which package syscall does not
// name: wait for an open file description lock.
const fOFDSetLkW = 38

// Lock takes the records' lock: shared (several ADDs and DELs at once) or
// exclusive (GC). The returned function releases it.
func (s Store) Lock(exclusive bool) (func(), error) {
	how := int16(syscall.F_RDLCK)
	if exclusive {
		how = syscall.F_WRLCK
	}
	return s.lockByte(0, how)
}

// LockSandbox takes the lock of one sandbox, exclusively; the returned function
// releases it. Its commands take it before the records' lock.
func (s Store) LockSandbox(containerID string) (func(), error) {
	h := fnv.New64a()
	_, _ = h.Write([]byte(containerID))
	return s.lockByte(1+int64(h.Sum64()>>2), syscall.F_WRLCK)
}

// lockByte waits for a lock of the kind given on one byte of the lock file.
func (s Store) lockByte(offset int64, how int16) (func(), error) {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("record folder: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(s.Dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("record lock: %w", err)
	}
	lk := syscall.Flock_t{Type: how, Whence: io.SeekStart, Start: offset, Len: 1}
	for {
		err = syscall.FcntlFlock(f.Fd(), fOFDSetLkW, &lk)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("record lock: %w", err)
	}
	// Closing the file, its only descriptor, releases the lock.
	return func() { f.Close() }, nil
}
