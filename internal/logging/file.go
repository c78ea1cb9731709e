package logging

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// file is a log file that several processes may append to at once: thin plugin
// invocations, each living for one CNI command, and possibly a daemon living for
// days. It therefore keeps no state that another process can invalidate unseen:
// before every write it looks at the file at its path again, follows it there if
// another process has rotated it, and rotates it itself when it is full.
//
// The folder's flock orders writes and rotations across processes: a write holds
// it shared, a rotation exclusively. So no line is ever written to a file after
// its rotation, which makes a backup final once renamed and safe to compress,
// and of two processes finding the file full only the first rotates it.
type file struct {
	path string
	rot  rotation
	now  func() time.Time
	mill *mill

	mu  sync.Mutex
	dir *os.File // the folder, opened for its flock
	f   *os.File // the file at path as last seen; nil when it could not be opened
	id  os.FileInfo
	// size is the file's size as last seen, plus what this process wrote since.
	size int64
	// retryAt is the size from which a rotation that failed is tried again, so
	// that a persistent failure is reported once per maxSize, not every line.
	retryAt int64
	closed  bool
	warn    func(error)
}

// openFile opens the log file at path for appending, creating it and its folder
// if missing. It does not rotate it: the first write that finds it full does.
func openFile(path string, r rotation, now func() time.Time) (*file, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("logging: create log folder: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("logging: open log folder: %w", err)
	}
	w := &file{path: path, rot: r, now: now, dir: d, mill: &mill{path: path, rot: r, now: now}}
	if err := w.follow(); err != nil {
		d.Close()
		return nil, err
	}
	return w, nil
}

// start sets where problems of rotation, pruning and compression are reported,
// once the logger exists, and starts the mill if earlier processes left backups
// to compress or past the limits. Looking costs the caller a listing of the
// folder; the work itself is the mill's.
func (w *file) start(warn func(error)) {
	w.mu.Lock()
	w.warn = warn
	w.mu.Unlock()
	w.mill.warn = warn
	if w.rot.pending(w.path, w.now()) {
		w.mill.kick()
	}
}

// Write appends p, one record, in one write, so that records of concurrent
// processes never interleave, rotating the file first if it is full. Problems
// of rotation do not stop the write; they are reported once it is done.
func (w *file) Write(p []byte) (int, error) {
	w.mu.Lock()
	n, problems, err := w.write(p, true)
	warn := w.warn
	w.mu.Unlock()
	if warn != nil {
		for _, problem := range problems {
			warn(problem)
		}
	}
	return n, err
}

// appender returns a writer appending to the file as Write does, but never
// rotating it, for the records that report problems: slog's handler holds its
// lock while it writes, so those records go through a handler of their own, and
// they must not cause a rotation that reports another problem.
func (w *file) appender() io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		n, _, err := w.write(p, false)
		return n, err
	})
}

// writerFunc is a function that is an io.Writer.
type writerFunc func([]byte) (int, error)

// Write calls f.
func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// write holds the folder's lock shared while it writes; a write that finds the
// file full takes it exclusively instead, and checks again, since another
// process may have rotated the file in between.
func (w *file) write(p []byte, mayRotate bool) (int, []error, error) {
	if w.closed {
		return 0, nil, os.ErrClosed
	}
	unlock, err := w.lockAndFollow(false)
	if err != nil {
		return 0, nil, err
	}
	var problems []error
	if mayRotate && w.full() {
		unlock()
		if unlock, err = w.lockAndFollow(true); err != nil {
			return 0, nil, err
		}
		if w.full() {
			problems = w.rotate()
		}
	}
	defer unlock()
	if w.f == nil {
		return 0, problems, errors.New("logging: no log file after a failed rotation")
	}
	n, err := w.f.Write(p)
	w.size += int64(n)
	return n, problems, err
}

// lockAndFollow takes the folder's lock and makes f the file at path.
func (w *file) lockAndFollow(exclusive bool) (func(), error) {
	unlock, err := flock(w.dir, exclusive)
	if err != nil {
		return nil, fmt.Errorf("logging: lock log folder: %w", err)
	}
	if err := w.follow(); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// follow makes f the file at path, opening it anew, or creating it, when
// another process has rotated the one f is, and updates size, which other
// processes' writes change too.
func (w *file) follow() error {
	info, err := os.Stat(w.path)
	if err == nil && w.f != nil && os.SameFile(info, w.id) {
		w.size = info.Size()
		return nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("logging: log file: %w", err)
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("logging: open log file: %w", err)
	}
	id, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("logging: log file: %w", err)
	}
	if w.f != nil {
		w.f.Close()
	}
	w.f, w.id, w.size, w.retryAt = f, id, id.Size(), 0
	return nil
}

// full reports whether the file is due for rotation: it has reached maxSize,
// and no rotation of it has failed since it last grew by maxSize.
func (w *file) full() bool {
	return w.rot.maxSize > 0 && w.size >= w.rot.maxSize && w.size >= w.retryAt
}

// rotate renames the full file to a backup named after now, opens a new file
// and prunes old backups; the mill compresses the backup in the background, so
// that no CNI command waits for gzip. The caller holds the folder's lock
// exclusively.
func (w *file) rotate() []error {
	now := w.now()
	backup := backupName(w.path, now)
	failed := func(err error) []error {
		w.retryAt = w.size + w.rot.maxSize
		return []error{err}
	}
	for _, name := range []string{backup, backup + ".gz"} {
		if _, err := os.Lstat(name); !errors.Is(err, fs.ErrNotExist) {
			return failed(fmt.Errorf("backup %s exists, not overwriting it", name))
		}
	}
	if err := os.Rename(w.path, backup); err != nil {
		return failed(err)
	}
	if err := w.follow(); err != nil {
		// Lines must not go on to the backup, which may be compressed any time:
		// put the file back, or write nothing until it can be opened.
		if undo := os.Rename(backup, w.path); undo != nil {
			w.f.Close()
			w.f = nil
		}
		return failed(err)
	}
	problems := w.rot.prune(w.path, now)
	if w.rot.compress {
		w.mill.kick()
	}
	return problems
}

// Close closes the file. It does not wait for the mill: a thin invocation must
// not spend its CNI command on compression; what the mill leaves undone, the
// next process to open the file takes up.
func (w *file) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	var err error
	if w.f != nil {
		err = w.f.Close()
	}
	w.dir.Close()
	return err
}
