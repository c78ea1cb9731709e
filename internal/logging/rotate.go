package logging

import (
	"cmp"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// backupTimeLayout is the UTC time in a backup's name. It sorts as text, and has
// no ':' so that the name is valid on every file system.
const backupTimeLayout = "2006-01-02T15-04-05.000"

// rotation holds the rotation limits of a log file.
type rotation struct {
	maxSize    int64 // bytes; 0 means never rotate
	maxBackups int   // 0 means no limit
	maxAge     time.Duration
	compress   bool
}

// newRotation converts the limits of o to the units rotation works in.
func newRotation(o Options) rotation {
	return rotation{
		maxSize:    int64(max(o.MaxSizeMB, 0)) << 20,
		maxBackups: max(o.MaxBackups, 0),
		maxAge:     time.Duration(max(o.MaxAgeDays, 0)) * 24 * time.Hour,
		compress:   o.Compress,
	}
}

// openFile rotates the log file at path if it is due, then opens it for
// appending, creating it and its folder if missing. Problems with rotation are
// returned apart from the error, because they must not stop logging.
func openFile(path string, r rotation, now time.Time) (*os.File, []error, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, fmt.Errorf("logging: create log folder: %w", err)
	}
	var problems []error
	if r.due(path) {
		problems = r.rotate(path, now)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, problems, fmt.Errorf("logging: open log file: %w", err)
	}
	return f, problems, nil
}

// due reports whether the file at path has reached the rotation size.
func (r rotation) due(path string) bool {
	if r.maxSize <= 0 {
		return false
	}
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular() && info.Size() >= r.maxSize
}

// rotate renames the file at path to a backup named after now, compresses it
// if asked to, and prunes old backups. Several processes may open the same
// file at once, so it holds a lock on the folder and checks again that the file
// is due: the process that lost the race finds the fresh file another process
// has just created, and must leave it alone.
func (r rotation) rotate(path string, now time.Time) []error {
	unlock, err := lockDir(filepath.Dir(path))
	if err != nil {
		return []error{fmt.Errorf("lock log folder: %w", err)}
	}
	defer unlock()
	if !r.due(path) {
		return nil
	}
	backup := backupName(path, now)
	for _, name := range []string{backup, backup + ".gz"} {
		if _, err := os.Lstat(name); !errors.Is(err, fs.ErrNotExist) {
			return []error{fmt.Errorf("backup %s exists, not overwriting it", name)}
		}
	}
	if err := os.Rename(path, backup); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return []error{err}
	}
	var problems []error
	if r.compress {
		if err := compressFile(backup); err != nil {
			problems = append(problems, fmt.Errorf("compress %s: %w", backup, err))
		}
	}
	return append(problems, r.prune(path, now)...)
}

// backupName returns the name a log file is rotated to at time now: its name
// with the UTC time inserted before the extension, in the same folder, e.g.
// multus-2006-01-02T15-04-05.000.log.
func backupName(path string, now time.Time) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-" + now.UTC().Format(backupTimeLayout) + ext
}

// compressFile replaces the file src by its gzip-compressed copy src.gz. The copy
// is written under a temporary name first, so that an interrupted compression
// never leaves a truncated src.gz behind the removal of src.
func compressFile(src string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	dst := src + ".gz"
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(tmp)
		}
	}()
	zw := gzip.NewWriter(out)
	zw.Name = filepath.Base(src)
	if _, err := io.Copy(zw, in); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	return os.Remove(src)
}

// backup is a rotated log file found in the log folder.
type backup struct {
	path string
	at   time.Time
}

// prune removes the backups of the log file at path beyond maxBackups, oldest
// first, and those older than maxAge.
func (r rotation) prune(path string, now time.Time) []error {
	if r.maxBackups == 0 && r.maxAge == 0 {
		return nil
	}
	backups, err := listBackups(path)
	if err != nil {
		return []error{err}
	}
	var problems []error
	for i, b := range backups {
		tooMany := r.maxBackups > 0 && i >= r.maxBackups
		tooOld := r.maxAge > 0 && now.Sub(b.at) > r.maxAge
		if !tooMany && !tooOld {
			continue
		}
		if err := os.Remove(b.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			problems = append(problems, err)
		}
	}
	return problems
}

// listBackups returns the backups of the log file at path, newest first. A
// backup is recognized by its name, as backupName makes it, optionally with
// ".gz"; the time in the name dates it, which unlike the modification time
// survives copying.
func listBackups(path string) ([]backup, error) {
	dir := filepath.Dir(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	ext := filepath.Ext(path)
	prefix := strings.TrimSuffix(filepath.Base(path), ext) + "-"
	var backups []backup
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		rest = strings.TrimSuffix(rest, ".gz")
		stamp, ok := strings.CutSuffix(rest, ext)
		if !ok {
			continue
		}
		at, err := time.Parse(backupTimeLayout, stamp)
		if err != nil {
			continue
		}
		backups = append(backups, backup{path: filepath.Join(dir, e.Name()), at: at})
	}
	slices.SortFunc(backups, func(a, b backup) int {
		return cmp.Or(b.at.Compare(a.at), strings.Compare(b.path, a.path))
	})
	return backups, nil
}
