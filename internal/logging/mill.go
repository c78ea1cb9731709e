package logging

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// mill prunes the backups of one log file and compresses them, in a goroutine
// of its own, off the path of the CNI command or daemon request that rotated
// the file. In a thin invocation, which exits when its command is done, the
// goroutine may be cut short: every step is safe to interrupt, and the next
// process to open the log file starts a mill that takes up what is left.
type mill struct {
	path string
	rot  rotation
	now  func() time.Time
	warn func(error) // set before the first kick

	mu      sync.Mutex
	running bool
	again   bool
	done    sync.WaitGroup // for tests
}

// kick starts the mill, or has the running one make another pass when it is
// done, for a backup made since its pass began.
func (m *mill) kick() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running {
		m.again = true
		return
	}
	m.running = true
	m.done.Add(1)
	go m.run()
}

// run makes passes until no kick came during the last one.
func (m *mill) run() {
	defer m.done.Done()
	for {
		for _, err := range m.pass() {
			if m.warn != nil {
				m.warn(err)
			}
		}
		m.mu.Lock()
		if !m.again {
			m.running = false
			m.mu.Unlock()
			return
		}
		m.again = false
		m.mu.Unlock()
	}
}

// pass prunes the backups past the limits, under the folder's lock as a
// rotation does, then compresses the uncompressed ones, oldest first.
func (m *mill) pass() []error {
	unlock, err := lockDir(filepath.Dir(m.path))
	if err != nil {
		return []error{fmt.Errorf("lock log folder: %w", err)}
	}
	problems := m.rot.prune(m.path, m.now())
	backups, err := listBackups(m.path)
	unlock()
	if err != nil {
		return append(problems, err)
	}
	if !m.rot.compress {
		return problems
	}
	for i := len(backups) - 1; i >= 0; i-- {
		if b := backups[i].path; !strings.HasSuffix(b, ".gz") {
			if err := compressBackup(b, m.rot.compressor); err != nil {
				problems = append(problems, fmt.Errorf("compress %s: %w", b, err))
			}
		}
	}
	return problems
}

// lockDir takes the exclusive flock of the folder dir and returns its release.
func lockDir(dir string) (func(), error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	unlock, err := flock(d, true)
	if err != nil {
		d.Close()
		return nil, err
	}
	return func() { unlock(); d.Close() }, nil
}

// copyAll is the compressor: it copies src to dst, the gzip stream. Tests
// inject one that blocks.
func copyAll(dst io.Writer, src io.Reader) error {
	_, err := io.Copy(dst, src)
	return err
}

// compressBackup replaces the backup src by its gzip-compressed copy src.gz,
// unless another process is compressing it: the flock of src says so. The copy
// is written to src.gz.tmp, synced, and renamed to src.gz before src is removed,
// so that src.gz, when it exists, is complete, and an interrupted compression
// leaves src whole. The rename and removal hold the folder's lock, so that a
// rotation's pruning never sees both names of one backup.
func compressBackup(src string, compress func(io.Writer, io.Reader) error) error {
	in, err := os.Open(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // compressed or pruned meanwhile
	}
	if err != nil {
		return err
	}
	defer in.Close()
	if ok, err := tryLock(in); !ok {
		return err
	}
	// Another process may have compressed and removed src between our open
	// and our lock.
	if same, err := isFile(src, in); !same {
		return err
	}
	dst, tmp := src+".gz", src+".gz.tmp"
	if _, err := os.Stat(dst); errors.Is(err, fs.ErrNotExist) {
		if err := writeGzip(tmp, filepath.Base(src), in, compress); err != nil {
			os.Remove(tmp)
			return err
		}
	} else if err != nil {
		return err
	} else {
		tmp = "" // an earlier compression was cut short after its rename
	}
	unlock, err := lockDir(filepath.Dir(src))
	if err != nil {
		return err
	}
	defer unlock()
	if same, err := isFile(src, in); !same {
		if tmp != "" {
			os.Remove(tmp) // pruned while compressed
		}
		return err
	}
	if tmp != "" {
		if err := os.Rename(tmp, dst); err != nil {
			os.Remove(tmp)
			return err
		}
	}
	return os.Remove(src)
}

// writeGzip writes the gzip-compressed content of in to the file path, named
// name in its header, and syncs it.
func writeGzip(path, name string, in io.Reader, compress func(io.Writer, io.Reader) error) error {
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	zw.Name = name
	err = compress(zw, in)
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// isFile reports whether the file at path is still the open file f.
func isFile(path string, f *os.File) (bool, error) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	open, err := f.Stat()
	if err != nil {
		return false, err
	}
	return os.SameFile(info, open), nil
}
