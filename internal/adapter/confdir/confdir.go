// Package confdir is planning's adapter to the CNI configurations on the node's
// disk: the files of confDir, the file or folder clusterNetwork and
// defaultNetworks may name, and the plugin folders libcni v1.3 appends to a
// network (<folder>/<network name>/*.conf). It reads them with libcni's own
// loading functions, so the meta-plugin sees a folder as the runtime's libcni
// does. Two things are ours: which file answers a name (conflists first, files
// that do not parse skipped: ), and that a conflist comes back as one
// JSON document with its folder's plugins appended, because a delegate is
// given bytes, where libcni keeps the appended plugins apart.
package confdir

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"

	"github.com/containernetworking/cni/libcni"

	"github.com/polynet-cni/polynet/internal/cniconf"
)

// Source implements attach.ConfSource on the node's file system.
type Source struct{}

// Find returns the configuration named name in folder dir, and its file: the
// first .conflist in file name order whose "name" is name, else the first
// .conf or .json (R-3.4.1 (2) and (3)). It returns no bytes and no error when
// none matches or dir does not exist. Files that cannot be read or do not
// parse are skipped, as a runtime skips them in its own configuration folder.
// The bytes are the file's own, without subdirectory plugins: upstream takes
// a NAD's on-disk configuration from libcni's list Bytes, which have none.
func (Source) Find(dir, name string) ([]byte, string, error) {
	for _, exts := range [][]string{{".conflist"}, {".conf", ".json"}} {
		files, err := libcni.ConfFiles(dir, exts)
		if err != nil {
			return nil, "", err
		}
		sort.Strings(files)
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			m, err := cniconf.Decode(data)
			if err != nil || cniconf.String(m, "name") != name {
				continue
			}
			return data, f, nil
		}
	}
	return nil, "", nil
}

// Load returns the configuration at path, and the file it read: path is a
// file, or a folder whose first .conf, .conflist or .json file in name order
// is read, as upstream reads clusterNetwork. A .conflist is loaded as libcni's
// NetworkConfFromFile loads it: the plugins of the folder named after the
// network, beside the file, follow its own, unless it sets
// loadOnlyInlinedPlugins; with none to append, the bytes are the file's. A
// .conflist holding a single plugin's conf (a "type") has no chain to extend.
// An error wraps fs.ErrNotExist when path holds no configuration (no such
// file, or a folder without configuration files); file is set with every
// error that concerns the file chosen.
func (Source) Load(path string) ([]byte, string, error) {
	file, err := firstFile(path)
	if err != nil {
		return nil, "", err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, file, err
	}
	if filepath.Ext(file) != ".conflist" {
		return data, file, nil
	}
	data, err = withFolderPlugins(file, data)
	return data, file, err
}

// Plugins returns the plugin configurations (*.conf, in file name order) of
// the folder <base>/<name>, base being ref when ref is a folder and else the
// folder holding ref: where upstream's auxiliary chain lives, beside the
// clusterNetwork file or inside the clusterNetwork folder. A missing folder
// has none.
func (Source) Plugins(ref, name string) ([]json.RawMessage, error) {
	base := ref
	if info, err := os.Stat(ref); err != nil || !info.IsDir() {
		base = filepath.Dir(ref)
	}
	return folderPlugins(base, name)
}

// firstFile is path, or when path is a folder its first configuration file in
// name order.
func firstFile(path string) (string, error) {
	if info, err := os.Stat(path); err != nil || !info.IsDir() {
		return path, nil
	}
	files, err := libcni.ConfFiles(path, []string{".conf", ".conflist", ".json"})
	if err != nil {
		return "", err
	}
	if len(files) == 0 {
		return "", fmt.Errorf("%w (%w)", libcni.NoConfigsFoundError{Dir: path}, fs.ErrNotExist)
	}
	sort.Strings(files)
	return files[0], nil
}

// withFolderPlugins appends to the conflist data, read from file, the plugins
// libcni's NetworkConfFromFile appends to it, returning data itself when there
// are none. The conflist's own keys and plugins keep their JSON text (libcni
// re-encodes inline plugins, and a large integer loses digits there).
func withFolderPlugins(file string, data []byte) ([]byte, error) {
	m, err := cniconf.Decode(data)
	if err != nil {
		return nil, err
	}
	if cniconf.String(m, "type") != "" {
		return data, nil
	}
	list, err := libcni.NetworkConfFromBytes(data)
	if err != nil {
		return nil, err
	}
	if list.LoadOnlyInlinedPlugins {
		return data, nil
	}
	extra, err := folderPlugins(filepath.Dir(file), list.Name)
	if err != nil || len(extra) == 0 {
		return data, err
	}
	var plugins []json.RawMessage
	if raw, ok := m["plugins"]; ok {
		if err := json.Unmarshal(raw, &plugins); err != nil {
			return nil, fmt.Errorf("plugins: %w", err)
		}
	}
	if m["plugins"], err = json.Marshal(append(plugins, extra...)); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// networkName is what a network or chain name must look like to name a
// folder: the CNI spec's rule for a network name, which also keeps "..", "/"
// and the like out of the path (libcni joins any name to the folder).
var networkName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// folderPlugins is libcni's NetworkPluginConfsFromFiles, each plugin as the
// bytes of its file, for a name that can name a folder; its errors name the
// folder.
func folderPlugins(dir, name string) ([]json.RawMessage, error) {
	if !networkName.MatchString(name) {
		return nil, fmt.Errorf("name %q cannot name a plugin folder in %s", name, dir)
	}
	confs, err := libcni.NetworkPluginConfsFromFiles(dir, name)
	if err != nil {
		return nil, fmt.Errorf("plugin folder %s: %w", filepath.Join(dir, name), err)
	}
	out := make([]json.RawMessage, 0, len(confs))
	for _, c := range confs {
		out = append(out, c.Bytes)
	}
	return out, nil
}
