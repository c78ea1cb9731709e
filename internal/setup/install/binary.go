// Package install puts what the per-pod binaries need onto the host: the
// binaries themselves, copied so that a running copy is never written over, and
// the thin plugin's kubeconfig, rewritten whenever the ServiceAccount token it
// carries rotates. The two installers (install_multus and thin_entrypoint) use it.
package install

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/polynet-cni/polynet/internal/atomicfile"
)

// Action is what Binary did.
type Action string

const (
	// Installed: there was no file at the target.
	Installed Action = "installed"
	// Replaced: a different file was there; it was replaced by a rename, so
	// processes still running it keep the old file until they exit.
	Replaced Action = "replaced"
	// Unchanged: the same content was already there; nothing was written.
	Unchanged Action = "unchanged"
)

// Result says what Binary did, for the installer's one line of output.
type Result struct {
	Source string
	Path   string
	Action Action
	Size   int64
	SHA256 string
	// Busy counts the processes that were running the replaced file: they
	// would have made a copy over it fail with "text file busy" (Multus
	// #1221), and keep running the old file after the rename.
	Busy int
}

// String is the result in one line.
func (r Result) String() string {
	s := fmt.Sprintf("%s %s (%s, sha256 %s, from %s)", r.Path, r.Action, size(r.Size), short(r.SHA256), r.Source)
	if r.Busy > 0 {
		s += fmt.Sprintf("; %d running process(es) keep the previous file until they exit", r.Busy)
	}
	return s
}

// Binary copies src into destDir under its own name, so that the target is
// always either the old file or the new one, whole: the new content goes to a
// temporary file in destDir (same file system), is synced and gets src's mode,
// and is renamed over the target; the folder is synced last. It never opens
// the target for writing, so a running target ("text file busy") is no
// obstacle, and it writes nothing when the target already has src's content
// and mode. A failure leaves the target as it was and no temporary file.
func Binary(src, destDir string) (Result, error) {
	sum, info, err := hashRegular(src)
	if err != nil {
		return Result{}, err
	}
	r := Result{Source: src, Path: filepath.Join(destDir, filepath.Base(src)), Size: info.Size(), SHA256: sum}
	mode := info.Mode().Perm()
	oldSum, oldInfo, err := hashRegular(r.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.Action = Installed
	case err != nil:
		return Result{}, fmt.Errorf("reading the installed %s: %w", r.Path, err)
	case oldSum == sum && oldInfo.Mode().Perm() == mode:
		r.Action = Unchanged
		return r, nil
	default:
		r.Action = Replaced
		r.Busy = countRunning(r.Path)
	}
	f, err := os.Open(src)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	// The content is hashed again on the way, so that a source changed since
	// it was hashed is never installed under the first hash.
	h := sha256.New()
	if err := atomicfile.WriteFrom(r.Path, io.TeeReader(f, h), mode); err != nil {
		return Result{}, fmt.Errorf("installing %s: %w", r.Path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return r, fmt.Errorf("%s changed while it was installed (sha256 %s, then %s): run again", src, short(sum), short(got))
	}
	return r, nil
}

// hashRegular hashes a regular file (following symlinks), streaming it, and
// returns its metadata.
func hashRegular(path string) (string, fs.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", nil, err
	}
	if !info.Mode().IsRegular() {
		return "", nil, fmt.Errorf("%s is not a regular file (%s)", path, info.Mode().Type())
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", nil, err
	}
	return hex.EncodeToString(h.Sum(nil)), info, nil
}

// countRunning counts the processes whose executable is path, as far as this
// process can see them (a DaemonSet pod with hostPID sees the node's).
func countRunning(path string) int {
	exes, _ := filepath.Glob("/proc/[0-9]*/exe")
	n := 0
	for _, exe := range exes {
		if target, err := os.Readlink(exe); err == nil && target == path {
			n++
		}
	}
	return n
}

func size(n int64) string {
	if n < 1<<10 {
		return fmt.Sprintf("%d B", n)
	}
	if n < 1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return strings.TrimSpace(sum)
}
