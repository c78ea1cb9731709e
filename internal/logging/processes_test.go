package logging

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const (
	helperEnv      = "POLYNET_LOGGING_HELPER"
	helperFileEnv  = "POLYNET_LOGGING_HELPER_FILE"
	helperLinesEnv = "POLYNET_LOGGING_HELPER_LINES"
)

// TestHelperProcess is not a test: run by TestConcurrentProcesses as another
// process, it logs lines to a shared file, as a thin plugin invocation does,
// and exits without waiting for its background compression.
func TestHelperProcess(t *testing.T) {
	id := os.Getenv(helperEnv)
	if id == "" {
		return
	}
	n, err := strconv.Atoi(os.Getenv(helperLinesEnv))
	if err != nil {
		t.Fatal(err)
	}
	l, c, err := New(Options{Level: "error", File: os.Getenv(helperFileEnv), MaxSizeMB: 1, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		l.Error("line", "writer", id, "seq", i, "pad", padding[:200])
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	os.Exit(0)
}

// TestConcurrentProcesses runs several processes appending to one log file
// that they rotate and compress among themselves: every line is found exactly
// once, whole, in the log file or a backup, and the backups left uncompressed
// by processes that exited are compressed by the next one to open the file.
func TestConcurrentProcesses(t *testing.T) {
	const writers, lines = 6, 3000
	dir := t.TempDir()
	path := filepath.Join(dir, "multus.log")
	var cmds []*exec.Cmd
	for i := range writers {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnv+"="+strconv.Itoa(i), helperFileEnv+"="+path, helperLinesEnv+"="+strconv.Itoa(lines))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("writer %d:\n%s", i, out.String())
			}
		})
		cmds = append(cmds, cmd)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	checkLines(t, path, writers, lines)

	_, c, err := New(Options{Level: "error", File: path, MaxSizeMB: 1, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitMill(t, c)
	for _, name := range backupNames(t, path) {
		if !strings.HasSuffix(name, ".log.gz") {
			t.Errorf("%s left after the next process's compression", name)
		}
	}
	checkLines(t, path, writers, lines)
}

// helperLine is a whole line of TestHelperProcess.
var helperLine = regexp.MustCompile(`^time=\S+ level=ERROR msg=line writer=(\d+) seq=(\d+) pad=x{200}$`)

// checkLines reads the log file and its backups (a backup's .gz where it is
// complete, as a rename makes it) and checks that every writer's every line is
// there exactly once and whole, with more than one backup made.
func checkLines(t *testing.T, path string, writers, lines int) {
	t.Helper()
	dir := filepath.Dir(path)
	seen := make(map[string]int)
	backups := 0
	for _, name := range listDir(t, dir) {
		var data []byte
		switch {
		case name == filepath.Base(path):
			data = []byte(readFile(t, path))
		case strings.HasSuffix(name, ".log.gz"):
			data = gunzip(t, filepath.Join(dir, name))
			backups++
		case strings.HasSuffix(name, ".log"):
			if _, err := os.Stat(filepath.Join(dir, name+".gz")); err == nil {
				continue // compressed and renamed, not yet removed
			}
			data = []byte(readFile(t, filepath.Join(dir, name)))
			backups++
		default:
			continue // an interrupted compression's temporary file
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			m := helperLine.FindStringSubmatch(sc.Text())
			if m == nil {
				t.Fatalf("%s: malformed line %q", name, sc.Text())
			}
			seen[m[1]+"/"+m[2]]++
		}
	}
	if backups < 2 {
		t.Errorf("%d backups; want the file rotated more than once", backups)
	}
	var missing, doubled []string
	for w := range writers {
		for i := range lines {
			key := fmt.Sprintf("%d/%d", w, i)
			switch seen[key] {
			case 0:
				missing = append(missing, key)
			case 1:
			default:
				doubled = append(doubled, key)
			}
			delete(seen, key)
		}
	}
	if len(missing)+len(doubled)+len(seen) > 0 {
		slices.Sort(missing)
		t.Errorf("lines missing: %d %.10v; logged more than once: %.10v; unexpected: %v", len(missing), missing, doubled, seen)
	}
}
