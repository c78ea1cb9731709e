// Package logging builds the log/slog logger of one plugin invocation or daemon
// request, from the logging keys of the plugin configuration: upstream's level
// names, stderr and an optional log file rotated by size.
//
// The multus binary lives for one CNI command, so the log file cannot be rotated
// by a background goroutine the way long-running programs do it: New rotates the
// file when it opens it, under a lock shared by every process using the folder.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
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
	// MaxSizeMB is the size in MiB from which the file is rotated when opened;
	// 0 means it is never rotated.
	MaxSizeMB int
	// MaxBackups is how many rotated files are kept; 0 means no limit.
	MaxBackups int
	// Compress gzips rotated files.
	Compress bool
	// Stderr is where stderr output goes; nil means os.Stderr. Tests inject a
	// buffer.
	Stderr io.Writer
	// Now is the clock of record times, backup names and backup ages; nil means
	// time.Now. Tests inject a fixed clock.
	Now func() time.Time
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
// log file, and a Closer for the file. The file is rotated first when it has
// reached MaxSizeMB. With neither sink the logger discards everything without
// formatting it. Failing to rotate or to prune backups does not stop logging:
// it is logged as a warning on the new logger instead.
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
		w := o.Stderr
		if w == nil {
			w = os.Stderr
		}
		sinks = append(sinks, w)
	}
	var closer io.Closer = nopCloser{}
	var problems []error
	if o.File != "" {
		f, probs, err := openFile(o.File, newRotation(o), now())
		if err != nil {
			return nil, nil, err
		}
		sinks, closer, problems = append(sinks, f), f, probs
	}
	if len(sinks) == 0 {
		return slog.New(slog.DiscardHandler), closer, nil
	}
	var w io.Writer = sinks
	if len(sinks) == 1 {
		w = sinks[0]
	}
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level:       level,
		ReplaceAttr: replaceAttr(now),
	}))
	for _, p := range problems {
		logger.Warn("log file rotation", "file", o.File, "error", p)
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

// nopCloser is the Closer returned when there is no file to close.
type nopCloser struct{}

// Close does nothing.
func (nopCloser) Close() error { return nil }
