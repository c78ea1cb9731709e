// Package dirwatch wakes a level-triggered loop when something in a few folders
// changes, and at least once per poll interval. fsnotify is only an accelerator:
// the folders may not exist yet (a readiness indicator's folder appears with the
// cluster network), a folder may be removed and created again, inotify instances
// may run out on a busy node, and a projected volume swaps its files by renaming
// a symlink; polling covers all of these. The configuration manager and the thin
// installer's kubeconfig refresher both use it.
package dirwatch

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher wakes its owner; only the goroutine calling Wait may use it.
type Watcher struct {
	fs       *fsnotify.Watcher // nil when fsnotify is unavailable
	dirs     []string
	log      *slog.Logger
	failed   map[string]string // last Add error per folder, to log it once
	tick     *time.Ticker
	debounce time.Duration
}

// New watches dirs (duplicates and unclean paths are folded), waking at least
// every poll, and waiting for a burst of events to be quiet for debounce.
func New(dirs []string, poll, debounce time.Duration, log *slog.Logger) *Watcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{log: log, failed: map[string]string{}, tick: time.NewTicker(poll), debounce: debounce}
	for _, d := range dirs {
		if d = filepath.Clean(d); !slices.Contains(w.dirs, d) {
			w.dirs = append(w.dirs, d)
		}
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		log.Warn("cannot watch files; polling every interval instead", "interval", poll, "error", err)
	} else {
		w.fs = fw
		w.ensure()
	}
	return w
}

// ensure watches every folder not watched yet: ones that did not exist before,
// and ones removed and created again, which drop their watch.
func (w *Watcher) ensure() {
	if w.fs == nil {
		return
	}
	have := w.fs.WatchList()
	for _, d := range w.dirs {
		if slices.Contains(have, d) {
			continue
		}
		if err := w.fs.Add(d); err != nil {
			if w.failed[d] != err.Error() {
				w.failed[d] = err.Error()
				w.log.Debug("cannot watch folder yet; polling it", "folder", d, "error", err)
			}
			continue
		}
		delete(w.failed, d)
	}
}

// Wait blocks until the owner should look at the disk again: a burst of events
// has been quiet for the debounce delay, or the poll interval passed. It
// returns false when ctx is done.
func (w *Watcher) Wait(ctx context.Context) bool {
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w.fs != nil {
		events, errs = w.fs.Events, w.fs.Errors
	}
	var timer *time.Timer
	var fire <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-w.tick.C:
			w.ensure()
			return true
		case <-fire:
			return true
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if timer == nil {
				timer = time.NewTimer(w.debounce)
				fire = timer.C
			} else {
				timer.Reset(w.debounce)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// An overflow loses events; the next poll catches up.
			w.log.Debug("file watch error", "error", err)
		}
	}
}

// Close stops the watch.
func (w *Watcher) Close() {
	w.tick.Stop()
	if w.fs != nil {
		w.fs.Close()
	}
}
