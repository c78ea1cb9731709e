// Package hostfiles is the engine's adapter to the node's files other than its
// attachment records: the readiness indicator file, and the files of the NPWG
// device-info specification v1.1.0. A device plugin describes each device it hands
// out in a file (D-4.1); the meta-plugin copies it to a file of the attachment's
// own (D-4.2, D-4.2.1), reports its content in network-status (D-6.1.1) and
// deletes it on DEL (D-4.2.1). The files' names are the specification's rules,
// in package podnet, which planning uses without touching the disk.
package hostfiles

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/polynet-cni/polynet/internal/atomicfile"
)

// MaxDeviceInfoBytes bounds a device-info file. The specification's device-info
// maps (D-3.1) are a type, a version and a few short strings, well under a
// kilobyte; a file past this bound is not one, and reading it whole would let
// whoever writes it grow our memory and the pod's network-status annotation,
// which the API server caps with the pod's other annotations, without limit.
const MaxDeviceInfoBytes = 64 << 10

// TooLargeError says a device-info file is over MaxDeviceInfoBytes.
type TooLargeError struct {
	File string
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("device-info file %s is over the %d bytes a device-info map may take", e.File, MaxDeviceInfoBytes)
}

// Files implements the engine's Files port on the node's file system.
type Files struct{}

// Exists returns nil when path exists, the readiness indicator's test.
func (Files) Exists(path string) error {
	_, err := os.Stat(path)
	return err
}

// CopyDeviceInfo copies the device plugin's file to the attachment's, creating the folder
// (D-4.2.1 MUST). A missing source is not an error: a device plugin MAY write no
// file (D-4.1), and the delegates may write the attachment's file themselves. A
// source that is not JSON or is over MaxDeviceInfoBytes is an error, which fails
// the attachment: the delegate reads the file, and must not be given a device
// description that is not one.
func (Files) CopyDeviceInfo(src, dst string) error {
	data, err := readBounded(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !json.Valid(data) {
		return fmt.Errorf("device-info file %s is not JSON", src)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("device-info folder: %w", err)
	}
	if err := atomicfile.Write(dst, data, 0o644); err != nil {
		return fmt.Errorf("device-info file: %w", err)
	}
	return nil
}

// ReadDeviceInfo returns the attachment file's device-info map, compacted, or nil when the
// file does not exist (D-6.1.1). A file over MaxDeviceInfoBytes is an error
// (*TooLargeError), read no further than the bound.
func (Files) ReadDeviceInfo(path string) (json.RawMessage, error) {
	if path == "" {
		return nil, nil
	}
	data, err := readBounded(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return nil, fmt.Errorf("device-info file %s: %w", path, err)
	}
	return buf.Bytes(), nil
}

// RemoveDeviceInfo deletes the attachment's file (D-4.2.1); a missing file is fine.
func (Files) RemoveDeviceInfo(path string) error {
	if path == "" {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// readBounded reads a device-info file, no more than MaxDeviceInfoBytes of it:
// a larger file is a *TooLargeError.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("device-info file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxDeviceInfoBytes+1))
	if err != nil {
		return nil, fmt.Errorf("device-info file %s: %w", path, err)
	}
	if len(data) > MaxDeviceInfoBytes {
		return nil, &TooLargeError{File: path}
	}
	return data, nil
}
