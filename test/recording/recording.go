// Package recording is the file format of the recorder test plugin
// (test/plugins/recorder): one JSON file per invocation, holding the stdin config
// and the CNI environment the plugin received, so tests can prove exactly what a
// delegate was given.
package recording

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Record is one invocation of the recorder plugin.
type Record struct {
	// Command is CNI_COMMAND.
	Command string `json:"command"`
	// Env holds every CNI_* variable the plugin saw.
	Env map[string]string `json:"env"`
	// Stdin is the exact configuration bytes received.
	Stdin string `json:"stdin"`
	// Seq orders records: nanoseconds since the epoch at invocation.
	Seq int64 `json:"seq"`
	PID int   `json:"pid"`
}

// Conf decodes the recorded stdin into v.
func (r Record) Conf(v any) error {
	return json.Unmarshal([]byte(r.Stdin), v)
}

// Arg returns one K=V pair of the recorded CNI_ARGS.
func (r Record) Arg(key string) (string, bool) {
	for _, kv := range strings.Split(r.Env["CNI_ARGS"], ";") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// Write stores r in dir under a unique name, atomically, so a reader never sees
// half a record.
func Write(dir string, r Record) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("%020d-%d-%s.json", r.Seq, r.PID, r.Command)
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, name))
}

// Read returns the records in dir in invocation order; a missing dir has none.
func Read(dir string) ([]Record, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		var r Record
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("record %s: %w", e.Name(), err)
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Record) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// Await polls dir until it holds a record of command, and returns the records
// of command then. When none comes within timeout it returns an error naming
// the command, the folder and the commands recorded so far, so that a test
// waiting for a delegate to be reached fails instead of going on as if it had
// been.
func Await(dir, command string, timeout time.Duration) ([]Record, error) {
	deadline := time.Now().Add(timeout)
	for {
		recs, err := Read(dir)
		if err != nil {
			return nil, err
		}
		var match []Record
		seen := make([]string, 0, len(recs))
		for _, r := range recs {
			seen = append(seen, r.Command)
			if r.Command == command {
				match = append(match, r)
			}
		}
		if len(match) > 0 {
			return match, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no %s record in %s after %s (recorded: %v)", command, dir, timeout, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
