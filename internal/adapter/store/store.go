// Package store keeps, for each pod sandbox, a crash-safe record on disk of every
// attachment made for it: everything DEL, CHECK and GC need to undo or verify each
// attachment exactly, without the API server, the pod or its NADs.
//
// ADD writes the record before the first delegate runs, with a temp file, fsync and
// rename, so a reader sees either the whole record or none. A record that is
// truncated or altered anyway (a disk fault) is rejected with CorruptError rather
// than read as "nothing to undo", which is how upstream leaked addresses after a
// reboot (Multus issues #948 and #1087).
package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/polynet-cni/polynet/internal/atomicfile"
	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/podnet"
)

// FormatVersion is the version of the record format this package writes.
const FormatVersion = 1

// subdir holds the records inside cniDir; upstream keeps its own, differently
// shaped cache files directly in cniDir, so the two never collide.
const subdir = "attachments"

// CorruptError says a record exists but cannot be trusted.
type CorruptError struct {
	Path   string
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("attachment record %s is corrupt (%s); it was kept for inspection, and nothing was torn down from it", e.Path, e.Reason)
}

// Store is the folder of records, under the plugin's cniDir.
type Store struct {
	Dir string
}

// New returns the store inside cniDir.
func New(cniDir string) Store { return Store{Dir: filepath.Join(cniDir, subdir)} }

// Path is the file of one sandbox's record.
func (s Store) Path(containerID string) string {
	return filepath.Join(s.Dir, containerID+".json")
}

// Save writes the record atomically: temp file in the same folder, fsync, rename,
// fsync of the folder. The folder is private (0700), the file 0600: records hold
// delegate configurations, which may carry credentials.
func (s Store) Save(r *podnet.Record) error {
	r.Version = FormatVersion
	data, err := encode(r)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("creating record folder: %w", err)
	}
	if err := atomicfile.Write(s.Path(r.ContainerID), data, 0o600); err != nil {
		return fmt.Errorf("writing record: %w", err)
	}
	return nil
}

// Load reads one sandbox's record. A missing record is an error satisfying
// errors.Is(err, os.ErrNotExist); a corrupt one is a *CorruptError.
func (s Store) Load(containerID string) (*podnet.Record, error) {
	path := s.Path(containerID)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r, err := Decode(data)
	if err != nil {
		var ce *CorruptError
		if errors.As(err, &ce) {
			ce.Path = path
		}
		return nil, err
	}
	if r.ContainerID != containerID {
		return nil, &CorruptError{Path: path, Reason: fmt.Sprintf("it belongs to container %q", r.ContainerID)}
	}
	return r, nil
}

// Remove deletes one sandbox's record; a missing record is not an error.
func (s Store) Remove(containerID string) error {
	err := os.Remove(s.Path(containerID))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// List returns the container IDs that have a record.
func (s Store) List() ([]string, error) {
	entries, err := os.ReadDir(s.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		name := e.Name()
		if e.Type().IsRegular() && strings.HasSuffix(name, ".json") && !strings.HasPrefix(name, ".") {
			ids = append(ids, strings.TrimSuffix(name, ".json"))
		}
	}
	return ids, nil
}

// Decode parses and verifies a record. A record written by a later version
// may carry fields this one does not know: it is accepted when its checksum
// covers them (the bytes as written verify), and the fields are ignored, so
// that going back to this version never turns its records corrupt. A field
// no checksum covers is refused.
func Decode(data []byte) (*podnet.Record, error) {
	var r podnet.Record
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	strictErr := dec.Decode(&r)
	if strictErr != nil {
		r = podnet.Record{}
		dec = json.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(&r); err != nil {
			return nil, &CorruptError{Reason: "does not decode: " + err.Error()}
		}
	}
	if dec.More() {
		return nil, &CorruptError{Reason: "trailing data after the record"}
	}
	if r.Version != FormatVersion {
		return nil, &CorruptError{Reason: fmt.Sprintf("format version %d, want %d", r.Version, FormatVersion)}
	}
	if !rawChecksumOK(data, r.Checksum) {
		if strictErr != nil {
			return nil, &CorruptError{Reason: "does not decode: " + strictErr.Error()}
		}
		// Bytes not as this package writes them (re-indented by hand, say):
		// the fields it knows must still verify.
		sum, err := checksum(&r)
		if err != nil {
			return nil, &CorruptError{Reason: err.Error()}
		}
		if sum != r.Checksum {
			return nil, &CorruptError{Reason: "checksum mismatch"}
		}
	}
	if r.ContainerID == "" {
		return nil, &CorruptError{Reason: "no container ID"}
	}
	for i, a := range r.Attachments {
		if a.IfName == "" || len(a.Config) == 0 {
			return nil, &CorruptError{Reason: fmt.Sprintf("attachment %d has no interface name or config", i)}
		}
	}
	return &r, nil
}

func encode(r *podnet.Record) ([]byte, error) {
	sum, err := checksum(r)
	if err != nil {
		return nil, err
	}
	r.Checksum = sum
	data, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	// encoding/json replaces bytes that are not UTF-8, so such a record
	// would never verify again: refuse it now rather than write a record
	// that reads back as corrupt.
	var back podnet.Record
	if err := json.Unmarshal(data, &back); err != nil {
		return nil, fmt.Errorf("record for container %q does not read back: %w", r.ContainerID, err)
	}
	if again, err := checksum(&back); err != nil || again != sum {
		return nil, fmt.Errorf("record for container %q cannot be stored faithfully (a name or argument is not UTF-8)", r.ContainerID)
	}
	return data, nil
}

// rawChecksumOK reports whether the record's bytes, as encode writes them
// (the checksum the last key), hash to want once the checksum's value is
// emptied: what the writer hashed, whatever fields its version had.
func rawChecksumOK(data []byte, want string) bool {
	const key = `,"checksum":"`
	end := []byte(`"}`)
	i := bytes.LastIndex(data, []byte(key))
	if i < 0 || !bytes.HasSuffix(data, end) || string(data[i+len(key):len(data)-len(end)]) != want {
		return false
	}
	blank := append(bytes.Clone(data[:i+len(key)]), end...)
	sum := sha256.Sum256(blank)
	return hex.EncodeToString(sum[:]) == want
}

// checksum hashes the record with an empty Checksum field.
func checksum(r *podnet.Record) (string, error) {
	c := *r
	c.Checksum = ""
	data, err := json.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("encoding record: %w", err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// CNICode reports the CNI code of an untrustworthy record.
func (e *CorruptError) CNICode() uint { return cnicode.RecordCorrupt }
