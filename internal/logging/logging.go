// Package logging builds the log/slog logger of a thin plugin invocation or of
// the daemon, from the logging keys of their configurations: upstream's level
// names, stderr and an optional log file rotated by size.
//
// One log file may be written by many processes at once: every thin invocation
// running on the node appends to it, each living for one CNI command. A rotating
// writer that assumes it is the file's only writer (lumberjack, upstream's)
// counts the size in memory, renames the file under the others' feet and
// compresses backups they are still appending to. So the writer here checks the
// file at its path before every write, under a flock of its folder that every
// process takes, and rotates it when it is full, be it in a daemon that runs for
// days or in an invocation that opens a full file. Backups are compressed by a
// goroutine that no CNI command and no daemon request waits for.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// LevelPanic is the level of records about failures that abort the process. It
// is the only level logged at upstream's default level, "panic".
const LevelPanic = slog.LevelError + 4

// Options are the logging settings of the plugin configuration, resolved.
type Options struct {
	// Level is one of debug, verbose, error and panic; "" means panic.
	Level string
	// ToStderr writes log lines to Stderr.
	ToStderr bool
	// File is the log file path; "" means no file.
	File string
	// MaxAgeDays is how many days rotated files are kept; 0 means no limit.
	MaxAgeDays int
	// MaxSizeMB is the size in MiB from which the file is rotated, checked
	// before every write, so a file exceeds it by less than one record; 0 means
	// it is never rotated.
	MaxSizeMB int
	// MaxBackups is how many rotated files are kept; 0 means no limit.
	MaxBackups int
	// Compress gzips rotated files, in the background.
	Compress bool
	// Stderr is where stderr output goes; nil means os.Stderr. Tests inject a
	// buffer.
	Stderr io.Writer
	// Now is the clock of record times, backup names and backup ages; nil means
	// time.Now. Tests inject a fixed clock.
	Now func() time.Time

	// compressor copies a backup into its gzip stream; nil means io.Copy.
	// Tests inject one that blocks.
	compressor func(io.Writer, io.Reader) error
}

// ParseLevel maps an upstream level name, in any case, to the least severe slog
// level logged: debug to Debug, verbose to Info (so warnings are logged too),
// error to Error (warnings are not), and panic, or "", to LevelPanic.
func ParseLevel(name string) (slog.Level, error) {
	switch strings.ToLower(name) {
	case "debug":
		return slog.LevelDebug, nil
	case "verbose":
		return slog.LevelInfo, nil
	case "error":
		return slog.LevelError, nil
	case "panic", "":
		return LevelPanic, nil
	}
	return 0, fmt.Errorf("logging: unknown level %q; want one of debug, verbose, error, panic", name)
}

// New returns a logger writing text lines (slog.TextHandler) to stderr and/or the
// log file, and a Closer for the file. The file is rotated by the first write
// that finds it at MaxSizeMB, for as long as the logger is used. With neither
// sink the logger discards everything without formatting it. Failing to rotate,
// prune or compress does not stop logging: it is logged as a warning on the new
// logger instead. Close does not wait for a compression in progress.
func New(o Options) (*slog.Logger, io.Closer, error) {
	level, err := ParseLevel(o.Level)
	if err != nil {
		return nil, nil, err
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	var sinks tee
	if o.ToStderr {
		var w io.Writer = os.Stderr
		if o.Stderr != nil {
			// Warnings from the log file's background work come from another
			// goroutine, through a handler of their own.
			w = &lockedWriter{w: o.Stderr}
		}
		sinks = append(sinks, w)
	}
	var closer io.Closer = nopCloser{}
	var f *file
	if o.File != "" {
		if f, err = openFile(o.File, newRotation(o), now); err != nil {
			return nil, nil, err
		}
		sinks, closer = append(sinks, f), f
	}
	if len(sinks) == 0 {
		return slog.New(slog.DiscardHandler), closer, nil
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: replaceAttr(now)}
	logger := slog.New(slog.NewTextHandler(writerOf(sinks), opts))
	if f != nil {
		// Problems of the log file are records of a handler of their own, which
		// the file never rotates for (see file.appender). f is the last sink.
		warnSinks := append(sinks[:len(sinks)-1:len(sinks)-1], f.appender())
		warnings := slog.New(slog.NewTextHandler(writerOf(warnSinks), opts))
		f.start(func(err error) { warnings.Warn("log file rotation", "file", o.File, "error", err) })
	}
	return logger, closer, nil
}

// replaceAttr stamps records with the clock of Options and names LevelPanic
// "PANIC" instead of slog's "ERROR+4".
func replaceAttr(now func() time.Time) func([]string, slog.Attr) slog.Attr {
	return func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) > 0 {
			return a
		}
		switch a.Key {
		case slog.TimeKey:
			return slog.Time(slog.TimeKey, now())
		case slog.LevelKey:
			if l, ok := a.Value.Any().(slog.Level); ok && l == LevelPanic {
				return slog.String(slog.LevelKey, "PANIC")
			}
		}
		return a
	}
}

// tee writes every line to all its writers. Unlike io.MultiWriter it carries on
// past a failing writer, so a closed stderr does not also cost the file its
// lines.
type tee []io.Writer

// Write writes p to every writer and returns the first error.
func (t tee) Write(p []byte) (int, error) {
	var first error
	for _, w := range t {
		if _, err := w.Write(p); err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return 0, first
	}
	return len(p), nil
}

// writerOf returns the only writer of t, or t.
func writerOf(t tee) io.Writer {
	if len(t) == 1 {
		return t[0]
	}
	return t
}

// lockedWriter serializes the writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// Write writes p to w.
func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// nopCloser is the Closer returned when there is no file to close.
type nopCloser struct{}

// Close does nothing.
func (nopCloser) Close() error { return nil }
