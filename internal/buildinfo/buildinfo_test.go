package buildinfo

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

func TestPrintVersionFlag(t *testing.T) {
	tests := []struct {
		args  []string
		print bool
	}{
		{args: []string{"multus", "--version"}, print: true},
		{args: []string{"multus", "-version"}, print: true},
		{args: []string{"multus", "-v"}, print: true},
		{args: []string{"multus"}},
		{args: []string{"multus", "--help"}},
		{args: []string{"multus", "-t", "--version"}}, // only as the first argument
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			if got := PrintVersionFlag(tt.args, "multus", &out); got != tt.print {
				t.Fatalf("PrintVersionFlag = %v, want %v", got, tt.print)
			}
			if !tt.print {
				if out.Len() != 0 {
					t.Errorf("printed %q without the flag", out.String())
				}
				return
			}
			if line := out.String(); !strings.HasPrefix(line, "multus version ") || !strings.HasSuffix(line, runtime.Version()+"\n") {
				t.Errorf("printed %q, want one line: the name, the version, ..., the Go version", line)
			}
		})
	}
}

func TestGetUsesLinkTimeValues(t *testing.T) {
	oldV, oldC := Version, Commit
	t.Cleanup(func() { Version, Commit = oldV, oldC })

	Version, Commit = "v1.2.3", "abc123"
	info := Get()
	if info.Version != "v1.2.3" || info.Commit != "abc123" || info.Go != runtime.Version() {
		t.Errorf("Get() = %+v, want the link-time version and commit", info)
	}
	Version, Commit = "", ""
	if info := Get(); info.Version != "devel" || info.Commit == "" {
		t.Errorf("Get() without link-time values = %+v, want version devel and a commit (the VCS stamp or unknown)", info)
	}
}

func TestString(t *testing.T) {
	got := Info{Version: "v1", Commit: "c", Dirty: true, Go: "go1.26"}.String()
	if want := "version v1, commit c (modified), go1.26"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
