package results

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAppendRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench.jsonl")
	want := []Result{
		{Bench: "adddel", Case: "1 network", Variant: "thin", Metric: "wall_ms", Unit: "ms", Samples: []float64{1.5, 2}},
		{Bench: "daemon", Case: "burst 100", Variant: "thick", Metric: "rss_mib_timeline", Unit: "MiB", Samples: []float64{30}, IntervalMS: 100},
	}
	for _, r := range want {
		if err := Append(path, r); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := Read(f)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("read back (-want +got):\n%s", diff)
	}
}

func TestReadErrors(t *testing.T) {
	got, err := Read(strings.NewReader("\n{\"bench\":\"a\"}\n\n"))
	if err != nil || len(got) != 1 || got[0].Bench != "a" {
		t.Errorf("blank lines: %v, %v", got, err)
	}
	if _, err := Read(strings.NewReader("{\"bench\":\"a\"}\nnot json\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad line: %v, want an error naming line 2", err)
	}
}
