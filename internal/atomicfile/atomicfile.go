// Package atomicfile replaces files so that a reader, or a node that crashes,
// sees either the old content or the new, never a part: a temporary file in the
// same folder, written and synced, renamed over the target, and the folder
// synced. Attachment records, the generated CNI configuration, device-info files
// and edited result caches all go through it.
package atomicfile

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces path with data, with the given mode. The temporary file is
// hidden and ends in .tmp, an extension neither runtimes nor our readers load,
// and it has a unique name, so concurrent writers of one path never share it.
func Write(path string, data []byte, mode fs.FileMode) error {
	return WriteFrom(path, bytes.NewReader(data), mode)
}

// WriteFrom is Write with the content read from r, so that a large file (an
// installed binary) is copied without being held in memory.
func WriteFrom(path string, r io.Reader, mode fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if _, err = io.Copy(f, r); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir makes a rename or removal in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
