package confmgr

import (
	"path/filepath"

	"github.com/polynet-cni/polynet/internal/dirwatch"
)

// newWatcher watches the folders holding the primary (or multusConfigFile),
// our file and the readiness indicator.
func (m *Manager) newWatcher() *dirwatch.Watcher {
	var dirs []string
	if m.auto {
		dirs = append(dirs, m.d.MultusAutoconfigDir)
	} else {
		dirs = append(dirs, filepath.Dir(m.source))
	}
	dirs = append(dirs, m.d.CNIConfigDir)
	if m.d.ReadinessIndicatorFile != "" {
		dirs = append(dirs, filepath.Dir(m.d.ReadinessIndicatorFile))
	}
	return dirwatch.New(dirs, m.poll, m.debounce, m.log)
}
