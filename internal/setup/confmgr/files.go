package confmgr

import (
	"github.com/polynet-cni/polynet/internal/atomicfile"

	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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
	out, err := setTopLevelString(data, "cniVersion", want)
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

// setTopLevelString sets the top-level key of the JSON object data to the
// string value, replacing the bytes of every existing value of that key, or
// inserting the key first in the object when it is absent.
func setTopLevelString(data []byte, key, value string) ([]byte, error) {
	quoted, err := json.Marshal(value)
	if err != nil {
		return nil, err
	}
	spans, open, err := valueSpans(data, key)
	if err != nil {
		return nil, err
	}
	if len(spans) == 0 {
		k, _ := json.Marshal(key)
		sep := ","
		if obj, _ := parseObject(data); len(obj) == 0 {
			sep = ""
		}
		insert := append(append(append(k, ':'), quoted...), sep...)
		return concat(data[:open+1], insert, data[open+1:]), nil
	}
	out := append([]byte(nil), data[:spans[0][0]]...)
	for i, s := range spans {
		out = append(out, quoted...)
		end := len(data)
		if i+1 < len(spans) {
			end = spans[i+1][0]
		}
		out = append(out, data[s[1]:end]...)
	}
	return out, nil
}

// valueSpans finds the byte ranges of the values of key at the top level of
// the JSON object data, and the offset of the object's opening brace.
func valueSpans(data []byte, key string) (spans [][2]int, open int, err error) {
	if _, err := parseObject(data); err != nil {
		return nil, 0, err
	}
	open = bytes.IndexByte(data, '{')
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // {
		return nil, 0, err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, 0, err
		}
		afterKey := int(dec.InputOffset())
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, 0, err
		}
		if tok != key {
			continue
		}
		// Only white space and the colon separate a key from its value.
		start := afterKey + bytes.IndexByte(data[afterKey:], ':') + 1
		for start < len(data) && isSpace(data[start]) {
			start++
		}
		spans = append(spans, [2]int{start, int(dec.InputOffset())})
	}
	if _, err := dec.Token(); err != nil && err != io.EOF { // }
		return nil, 0, err
	}
	return spans, open, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
