package confmgr

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/polynet-cni/polynet/internal/cniconf"
)

// candidateExts are the extensions the container runtime loads, so the only
// ones a primary configuration can have. A renamed copy of our own file, such
// as Cilium's 00-multus.conf.cilium_bak, falls outside them.
var candidateExts = []string{".conf", ".conflist", ".json"}

// multusTypes are plugin types that are Multus itself. A primary of such a type
// makes every ADD call Multus again, adding interfaces forever (upstream #1108).
var multusTypes = []string{"multus", ShimType}

// waitError is a reason to keep waiting for the primary configuration: it does
// not exist yet or is being written. Run fails with it only once PrimaryTimeout
// has passed.
type waitError struct{ msg string }

func (e *waitError) Error() string { return e.msg }

func waitErrorf(format string, a ...any) error { return &waitError{fmt.Sprintf(format, a...)} }

func isWait(err error) bool {
	var w *waitError
	return errors.As(err, &w)
}

// primary is the chosen primary configuration as read from disk.
type primary struct {
	path string
	data []byte
	obj  map[string]json.RawMessage
}

// findPrimary chooses the primary configuration afresh on every call, so that a
// primary that changed, went away, or was overtaken by a file sorting before it
// is noticed without tracking its history.
func (m *Manager) findPrimary() (*primary, error) {
	dir := m.d.MultusAutoconfigDir
	if m.d.MultusMasterCNI != "" {
		return m.namedPrimary(filepath.Join(dir, m.d.MultusMasterCNI))
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, waitErrorf("no primary CNI configuration: folder %s does not exist", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	for _, e := range entries { // os.ReadDir sorts by name
		name := e.Name()
		path := filepath.Join(dir, name)
		if e.IsDir() || !hasCandidateExt(name) || strings.HasPrefix(name, ownPrefix) || path == m.path {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			m.warnOnce(path, "skipping unreadable CNI configuration", "file", path, "error", err)
			continue
		}
		obj, err := cniconf.Decode(data)
		if err != nil {
			m.warnOnce(path, "skipping CNI configuration that is not a JSON object", "file", path, "error", err)
			continue
		}
		if typ, ok := selfDelegating(obj); ok {
			m.warnOnce(path, "skipping CNI configuration of Multus itself: taking it as primary would delegate to Multus forever",
				"file", path, "type", typ)
			continue
		}
		return &primary{path: path, data: data, obj: obj}, nil
	}
	return nil, waitErrorf("no primary CNI configuration in %s yet", dir)
}

// namedPrimary reads the primary multusMasterCNI names. A missing or half
// written file is waited for; one that is Multus itself is an error, since
// the administrator asked for exactly that file.
func (m *Manager) namedPrimary(path string) (*primary, error) {
	if m.generated(path) {
		return nil, fmt.Errorf("multusMasterCNI names %s, the file this daemon generates; refusing to delegate to itself", path)
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, waitErrorf("primary CNI configuration %s (multusMasterCNI) does not exist yet", path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading primary CNI configuration %s: %w", path, err)
	}
	obj, err := cniconf.Decode(data)
	if err != nil {
		return nil, waitErrorf("primary CNI configuration %s (multusMasterCNI): %v", path, err)
	}
	if typ, ok := selfDelegating(obj); ok {
		return nil, fmt.Errorf("multusMasterCNI names %s, whose type is %q: Multus would delegate to itself forever", path, typ)
	}
	return &primary{path: path, data: data, obj: obj}, nil
}

// generated reports whether path is a file this manager writes, under either
// extension.
func (m *Manager) generated(path string) bool {
	for _, ext := range []string{".conf", ".conflist"} {
		if filepath.Clean(path) == filepath.Join(m.d.CNIConfigDir, ownPrefix+ext) {
			return true
		}
	}
	return path == m.path
}

func hasCandidateExt(name string) bool {
	return slices.Contains(candidateExts, filepath.Ext(name))
}

// plugins are the plugin objects of a configuration list; entries that are not
// objects are left out.
func plugins(obj map[string]json.RawMessage) []map[string]json.RawMessage {
	var list []json.RawMessage
	if json.Unmarshal(obj["plugins"], &list) != nil {
		return nil
	}
	var out []map[string]json.RawMessage
	for _, raw := range list {
		var p map[string]json.RawMessage
		if json.Unmarshal(raw, &p) == nil && p != nil {
			out = append(out, p)
		}
	}
	return out
}

// selfDelegating reports whether obj is Multus itself, at its top level or in
// any plugin of its list, and the type found.
func selfDelegating(obj map[string]json.RawMessage) (string, bool) {
	all := append([]map[string]json.RawMessage{obj}, plugins(obj)...)
	for _, o := range all {
		if typ := cniconf.String(o, "type"); slices.Contains(multusTypes, typ) {
			return typ, true
		}
	}
	return "", false
}
