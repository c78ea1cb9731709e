package confmgr

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/polynet-cni/polynet/internal/atomicfile"
	"github.com/polynet-cni/polynet/internal/cniconf"
)

// fileMode is the generated file's mode: it may name paths and namespaces the
// administrator set, and only the runtime (root) reads it.
const fileMode fs.FileMode = 0o600

// writeAtomic replaces path with data so that a reader sees either the old or
// the new file and never a partial one: the runtime loads the first valid file
// in the folder, and a half-written 00-multus.conf made it pick the next one
// (upstream PR #1124).
func writeAtomic(path string, data []byte, mode fs.FileMode) error {
	return atomicfile.Write(path, data, mode)
}

// readIfExists is the content of path, nil with ok false when it does not exist.
func readIfExists(path string) (data []byte, ok bool, err error) {
	data, err = os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	return data, err == nil, err
}

// removeIfExists removes path; a missing file is no error.
func removeIfExists(path string) (removed bool, err error) {
	err = os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, atomicfile.SyncDir(filepath.Dir(path))
}

// forceVersion rewrites the primary file's top-level cniVersion to want, in
// place and atomically, keeping its mode. Only the bytes of that one value change:
// the file belongs to another component, which may compare or parse it
// byte-for-byte, so it is not re-encoded.
func forceVersion(path string, data []byte, want string) ([]byte, error) {
	out, err := cniconf.SetString(data, "cniVersion", want)
	if err != nil {
		return nil, fmt.Errorf("forcing cniVersion of %s: %w", path, err)
	}
	if bytes.Equal(out, data) {
		return data, nil
	}
	mode := fileMode
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	if err := writeAtomic(path, out, mode); err != nil {
		return nil, fmt.Errorf("forcing cniVersion of %s: %w", path, err)
	}
	return out, nil
}
