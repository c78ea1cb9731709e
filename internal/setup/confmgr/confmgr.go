// Package confmgr is thick mode's configuration manager: it writes the CNI
// configuration that makes the container runtime call multus-shim, and keeps it
// right while the node daemon runs.
//
// Upstream's manager let pods start without their extra networks, or not start
// at all, in several ways this one avoids: it wrote the file before the daemon
// could answer, non-atomically, could pick Multus' own file as the cluster
// network and loop forever (#1108), lost the file to Cilium's exclusive mode
// (#972), exited at once when given a ready-made file (#1366) and exited when
// the readiness indicator went away. Here the file appears only once the daemon
// is ready, every write is atomic and only happens when the content changes, a
// Multus configuration is never taken as the primary, a removed or renamed file
// is restored, and a missing readiness indicator removes the file until the
// indicator comes back, without the daemon exiting.
//
// The manager is level-triggered: every wake-up (a debounced fsnotify event or
// a 1 s poll) computes the wanted file from what is on disk now and makes the
// disk match it, so a missed event or a watch that could not be set up only
// delays a change by one poll.
package confmgr

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/polynet-cni/polynet/internal/cniconf"
	"github.com/polynet-cni/polynet/internal/config"
)

// DefaultPrimaryTimeout bounds the wait for the primary configuration, as
// upstream's 120 tries one second apart.
const DefaultPrimaryTimeout = 2 * time.Minute

const (
	pollInterval = time.Second
	// debounceDelay lets a burst of events (a tool writing a file in several
	// steps, our own temp file and rename) end before the disk is read.
	debounceDelay = 100 * time.Millisecond
)

// Options configure a Manager.
type Options struct {
	Daemon *config.DaemonConf
	Log    *slog.Logger
	// PrimaryTimeout bounds the wait for a primary configuration to appear
	// (default 2 minutes); polling interval 1s unless fsnotify wakes you earlier.
	PrimaryTimeout time.Duration
	// Thin, when set, generates the thin plugin's configuration (the thin
	// installer, thin_entrypoint) instead of the shim's.
	Thin *Thin
	// Once makes Run return after the first configuration is in place instead
	// of keeping it right (thin_entrypoint's --skip-config-watch).
	Once bool
	// RenamePrimary renames the primary to <name>.old once a configuration
	// generated from it is in place (thin_entrypoint's --rename-conf-file), so
	// that the runtime can only load ours. A primary written again, by its
	// plugin's installer, is picked up, used and renamed again.
	RenamePrimary bool
}

// Manager writes and keeps the shim's CNI configuration. Its state is only
// touched by the goroutine running Run.
type Manager struct {
	d        *config.DaemonConf
	log      *slog.Logger
	timeout  time.Duration
	poll     time.Duration
	debounce time.Duration
	thin     *Thin
	once     bool
	rename   bool
	auto     bool
	path     string // the file we own; its extension may follow the primary's cniVersion
	source   string // multusConfigFile when not "auto"
	err      error  // a configuration error found by New, returned by Run

	produced bool   // a configuration was produced once: later failures keep it
	onDisk   bool   // we wrote path and have not removed it since
	last     []byte // the content we last wrote
	primary  string // the primary in use, for logging changes
	lastErr  string // the last failure logged, to log each one once
	warned   map[string]string

	onWrite func(path string) // test hook, called after each write of path
}

// New returns a manager for o. A configuration it cannot work with is reported
// by Run, so that the daemon's start-up has one place to handle errors.
func New(o Options) *Manager {
	m := &Manager{
		d: o.Daemon, log: o.Log, timeout: o.PrimaryTimeout, thin: o.Thin, once: o.Once, rename: o.RenamePrimary,
		poll: pollInterval, debounce: debounceDelay, warned: map[string]string{},
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.timeout <= 0 {
		m.timeout = DefaultPrimaryTimeout
	}
	if m.d == nil {
		m.err = fmt.Errorf("confmgr: no daemon configuration")
		return m
	}
	m.auto = m.d.MultusConfigFile == config.AutoConfig || m.d.MultusConfigFile == ""
	if !m.auto {
		m.source = filepath.Clean(m.d.MultusConfigFile)
		m.path = filepath.Join(m.d.CNIConfigDir, filepath.Base(m.source))
		return m
	}
	name := ownPrefix + ".conf"
	if m.d.CNIVersion != "" || m.thin == nil {
		var err error
		if name, err = confName(m.d.CNIVersion); err != nil {
			m.err, name = err, ownPrefix+".conf"
		}
	}
	m.path = filepath.Join(m.d.CNIConfigDir, name)
	return m
}

// Path is the generated (or copied) file's path. When our cniVersion follows
// the primary's, it is only known for sure once Run has written the file.
func (m *Manager) Path() string { return m.path }

// Run writes the configuration, then keeps it right until ctx is done; the daemon
// starts it once it serves requests, so the runtime never calls a shim whose
// daemon cannot answer. It returns nil on ctx end, or an error when the
// configuration cannot be produced (no primary within PrimaryTimeout, a primary
// that is our own file, incompatible versions, unreadable files). Once a
// configuration was written, later failures are logged and the last good file
// is kept, since the daemon exiting would help no pod.
func (m *Manager) Run(ctx context.Context) error {
	if m.err != nil {
		return m.err
	}
	if !m.auto && m.source == m.path {
		// The file already is where the runtime reads it; there is nothing
		// to copy or restore, and removing it on shutdown would lose it.
		m.log.Info("multusConfigFile is already in the CNI configuration folder; nothing to manage", "file", m.path)
		<-ctx.Done()
		return nil
	}
	w := m.newWatcher()
	defer w.Close()
	deadline := time.Now().Add(m.timeout)
	for {
		if err := m.judge(m.reconcile(), deadline); err != nil {
			return err
		}
		if m.once && m.produced && m.onDisk {
			return nil
		}
		if !w.Wait(ctx) {
			m.Shutdown()
			return nil
		}
	}
}

// judge decides what a reconcile failure means: before the first success, a
// wait for a missing primary until the deadline and a failure otherwise; after
// it, a logged failure that keeps the last file.
func (m *Manager) judge(err error, deadline time.Time) error {
	if err == nil {
		if m.lastErr != "" {
			m.log.Info("CNI configuration can be produced again", "file", m.path)
			m.lastErr = ""
		}
		return nil
	}
	if !m.produced {
		if !isWait(err) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up after %s: %w", m.timeout, err)
		}
		m.logOnce(slog.LevelInfo, "waiting to generate the CNI configuration", err)
		return nil
	}
	if isWait(err) {
		m.logOnce(slog.LevelInfo, "no primary CNI configuration now; keeping the last one generated", err)
		return nil
	}
	m.logOnce(slog.LevelError, "cannot update the CNI configuration; keeping the last one", err)
	return nil
}

func (m *Manager) logOnce(level slog.Level, msg string, err error) {
	if err.Error() == m.lastErr {
		return
	}
	m.lastErr = err.Error()
	m.log.Log(context.Background(), level, msg, "file", m.path, "reason", err.Error())
}

// warnOnce logs a Warn about key unless the same message was logged for it
// last time, so that polling does not repeat it every second.
func (m *Manager) warnOnce(key, msg string, args ...any) {
	if m.warned[key] == msg {
		return
	}
	m.warned[key] = msg
	m.log.Warn(msg, args...)
}

// reconcile makes the disk match the wanted configuration once.
func (m *Manager) reconcile() error {
	if m.auto {
		p, name, content, err := m.desiredAuto()
		if path := filepath.Join(m.d.CNIConfigDir, name); err == nil && path != m.path {
			// Our cniVersion follows the primary's, which crossed 1.0.0: the
			// new file is written and the other one removed as stale.
			m.path, m.onDisk = path, false
		}
		if err = m.apply(content, err); err != nil || !m.rename || !m.onDisk {
			return err
		}
		return m.renamePrimary(p)
	}
	return m.apply(m.desiredCopy())
}

// renamePrimary moves the primary out of the runtime's sight once our file,
// which carries it inline, is in place.
func (m *Manager) renamePrimary(p *primary) error {
	to := p.path + ".old"
	if err := os.Rename(p.path, to); err != nil {
		return fmt.Errorf("renaming the primary CNI configuration %s: %w", p.path, err)
	}
	m.log.Info("renamed the primary CNI configuration so that the runtime loads only ours", "from", p.path, "to", to)
	return nil
}

// desiredAuto is the configuration generated for the current primary, which
// is first rewritten to our cniVersion when forceCNIVersion is set.
func (m *Manager) desiredAuto() (p *primary, name string, content []byte, err error) {
	if p, err = m.findPrimary(); err != nil {
		return nil, "", nil, err
	}
	data := p.data
	if m.d.ForceCNIVersion && m.d.CNIVersion != "" && cniconf.String(p.obj, "cniVersion") != m.d.CNIVersion {
		if data, err = forceVersion(p.path, p.data, m.d.CNIVersion); err != nil {
			return nil, "", nil, err
		}
		m.log.Warn("rewrote the primary CNI configuration's cniVersion (forceCNIVersion)",
			"file", p.path, "from", cniconf.String(p.obj, "cniVersion"), "to", m.d.CNIVersion)
	}
	if name, content, err = Generate(m.d, m.thin, p.path, data); err != nil {
		return nil, "", nil, err
	}
	if p.path != m.primary {
		m.log.Info("using primary CNI configuration", "primary", p.path, "previous", m.primary)
		m.primary = p.path
	}
	return p, name, content, nil
}

// desiredCopy is multusConfigFile's content, waited for while it is missing
// or not (yet) a JSON object.
func (m *Manager) desiredCopy() ([]byte, error) {
	data, ok, err := readIfExists(m.source)
	if err != nil {
		return nil, fmt.Errorf("reading multusConfigFile %s: %w", m.source, err)
	}
	if !ok {
		return nil, waitErrorf("multusConfigFile %s does not exist yet", m.source)
	}
	if _, err := cniconf.Decode(data); err != nil {
		return nil, waitErrorf("multusConfigFile %s: %v", m.source, err)
	}
	return data, nil
}

// apply writes content, or removes our file while the readiness indicator is
// missing. The wanted content is still computed then, so that a wrong primary
// is reported at start-up and not only when the indicator appears.
func (m *Manager) apply(content []byte, err error) error {
	if !m.indicatorReady() {
		if err == nil {
			m.produced = true
		}
		return err
	}
	if err != nil {
		return err
	}
	if err := m.put(content); err != nil {
		return err
	}
	m.produced = true
	return nil
}

// indicatorReady reports whether the readiness indicator exists, when one is
// set, and removes our file when it does not: while the cluster network is not
// ready the runtime must find no configuration, so that it sets up no pod,
// rather than one that fails or leaves pods without their network.
func (m *Manager) indicatorReady() bool {
	f := m.d.ReadinessIndicatorFile
	if f == "" {
		return true
	}
	if _, err := os.Stat(f); err == nil {
		delete(m.warned, "indicator")
		return true
	}
	removed, err := removeIfExists(m.path)
	switch {
	case err != nil:
		m.log.Error("cannot remove the CNI configuration while the readiness indicator is missing", "file", m.path, "error", err)
	case removed:
		m.log.Warn("readiness indicator is missing: removed the CNI configuration until it is back", "indicator", f, "file", m.path)
		delete(m.warned, "indicator")
	default:
		m.warnOnce("indicator", "waiting for the readiness indicator before writing the CNI configuration", "indicator", f)
	}
	if err == nil {
		m.onDisk = false
	}
	return false
}

// put writes content to our file unless it is already there, so that the
// runtime does not reload its configuration for nothing.
func (m *Manager) put(content []byte) error {
	disk, exists, err := readIfExists(m.path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", m.path, err)
	}
	if !exists || !bytes.Equal(disk, content) {
		switch {
		case m.onDisk && !exists:
			m.log.Warn("CNI configuration was removed or renamed by someone else; restoring it", "file", m.path)
		case m.onDisk && !bytes.Equal(disk, m.last):
			m.log.Warn("CNI configuration was changed by someone else; rewriting it", "file", m.path)
		default:
			m.log.Info("writing CNI configuration", "file", m.path)
		}
		if err := os.MkdirAll(filepath.Dir(m.path), 0o755); err != nil {
			return err
		}
		if err := writeAtomic(m.path, content, fileMode); err != nil {
			return fmt.Errorf("writing %s: %w", m.path, err)
		}
		if m.onWrite != nil {
			m.onWrite(m.path)
		}
	} else if !m.onDisk {
		m.log.Info("CNI configuration already in place", "file", m.path)
	}
	m.onDisk, m.last = true, content
	return m.removeStale()
}

// removeStale removes the generated file of the other extension, left by a
// daemon configured with a cniVersion on the other side of 1.0.0: the runtime
// would otherwise keep loading whichever sorts first.
func (m *Manager) removeStale() error {
	if !m.auto {
		return nil
	}
	other := ownPrefix + ".conf"
	if filepath.Ext(m.path) == ".conf" {
		other = ownPrefix + ".conflist"
	}
	stale := filepath.Join(filepath.Dir(m.path), other)
	removed, err := removeIfExists(stale)
	if err != nil {
		return fmt.Errorf("removing stale %s: %w", stale, err)
	}
	if removed {
		m.log.Info("removed the CNI configuration of an earlier cniVersion", "file", stale)
	}
	return nil
}

// Shutdown removes our file only when asked (removeConfigOnShutdown, or the
// thin installer's --cleanup-config-on-exit): by default it stays, so that the
// shim fails fast and retryably while the daemon restarts, and the thin plugin
// keeps working without its installer, instead of the runtime falling back to
// the primary and starting pods without their networks. Run calls it when its
// context ends; a caller of a Once manager calls it on its own exit.
func (m *Manager) Shutdown() {
	if !m.d.RemoveConfigOnShutdown {
		return
	}
	removed, err := removeIfExists(m.path)
	if err != nil {
		m.log.Error("cannot remove the CNI configuration on shutdown", "file", m.path, "error", err)
	} else if removed {
		m.log.Info("removed the CNI configuration on shutdown", "file", m.path)
	}
}
