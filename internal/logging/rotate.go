package logging

import (
	"cmp"
	"errors"
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
	compressor func(io.Writer, io.Reader) error
}

// newRotation converts the limits of o to the units rotation works in.
func newRotation(o Options) rotation {
	r := rotation{
		maxSize:    int64(max(o.MaxSizeMB, 0)) << 20,
		maxBackups: max(o.MaxBackups, 0),
		maxAge:     time.Duration(max(o.MaxAgeDays, 0)) * 24 * time.Hour,
		compress:   o.Compress,
		compressor: o.compressor,
	}
	if r.compressor == nil {
		r.compressor = copyAll
	}
	return r
}

// expired reports whether the backup b, the i-th newest, is past maxBackups or
// maxAge at time now.
func (r rotation) expired(i int, b backup, now time.Time) bool {
	return r.maxBackups > 0 && i >= r.maxBackups || r.maxAge > 0 && now.Sub(b.at) > r.maxAge
}

// pending reports whether the log file at path has backups for the mill to
// work on at time now: one past the limits, or one to compress.
func (r rotation) pending(path string, now time.Time) bool {
	if !r.compress && r.maxBackups == 0 && r.maxAge == 0 {
		return false
	}
	backups, err := listBackups(path)
	if err != nil {
		return true // for the mill to report
	}
	for i, b := range backups {
		if r.expired(i, b, now) || r.compress && !strings.HasSuffix(b.path, ".gz") {
			return true
		}
	}
	return false
}

// backupName returns the name a log file is rotated to at time now: its name
// with the UTC time inserted before the extension, in the same folder, e.g.
// multus-2006-01-02T15-04-05.000.log.
func backupName(path string, now time.Time) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-" + now.UTC().Format(backupTimeLayout) + ext
}

// backup is a rotated log file found in the log folder.
type backup struct {
	path string
	at   time.Time
}

// prune removes the backups of the log file at path beyond maxBackups, oldest
// first, and those older than maxAge, with what an interrupted compression of
// them left. The caller holds the folder's lock exclusively.
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
		if !r.expired(i, b, now) {
			continue
		}
		for _, name := range []string{b.path, b.path + ".gz.tmp"} {
			if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				problems = append(problems, err)
			}
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
