package arch

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// layer names where a package of this module sits. The layers, top down:
//
//	cmd/                  entry points: wiring only
//	internal/mode/        how each binary runs the engine (thin, shim, daemon, the socket protocol, the engine's one constructor)
//	internal/setup/       installers and the generated CNI configuration
//	internal/engine/      orchestration of the CNI commands
//	internal/engine/attach planning: selections and configurations to ordered attachments
//	internal/adapter/     implementations of the engine's ports (API server, libcni, disk, kubelet, netns)
//	internal/<leaf>       shared leaves: parsers, domain types, small utilities
func layer(pkg string) string {
	rel := strings.TrimPrefix(pkg, module+"/")
	switch {
	case strings.HasPrefix(rel, "cmd/"):
		return "cmd"
	case strings.HasPrefix(rel, "internal/mode/"):
		return "mode"
	case strings.HasPrefix(rel, "internal/setup/"):
		return "setup"
	case rel == "internal/engine":
		return "engine"
	case strings.HasPrefix(rel, "internal/engine/"):
		return "planning"
	case strings.HasPrefix(rel, "internal/adapter/"):
		return "adapter"
	case strings.HasPrefix(rel, "internal/"):
		return "leaf"
	}
	return "other" // test/, tools/: not part of the product's layers
}

// mayImport lists, for each layer, the layers it may import. Every import runs
// downwards; adapters and leaves never import the engine, and no adapter imports
// another (each owns one outside thing), so the engine's tests can replace any of
// them alone.
var mayImport = map[string][]string{
	"cmd":      {"mode", "setup", "leaf"},
	"mode":     {"mode", "setup", "engine", "planning", "adapter", "leaf"},
	"setup":    {"setup", "adapter", "leaf"},
	"engine":   {"planning", "leaf"},
	"planning": {"leaf"},
	"adapter":  {"leaf"},
	"leaf":     {"leaf"},
}

type listed struct {
	ImportPath string
	Imports    []string
}

func packages(t *testing.T) []listed {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -json ./...: %v", err)
	}
	var pkgs []listed
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listed
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decoding go list: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// TestLayers checks that every import of this module's packages (test files
// aside) runs downwards through the layers.
func TestLayers(t *testing.T) {
	pkgs := packages(t)
	checked := 0
	for _, p := range pkgs {
		from := layer(p.ImportPath)
		allowed, ok := mayImport[from]
		if !ok {
			continue
		}
		checked++
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			to := layer(imp)
			if from == "adapter" && to == "adapter" {
				t.Errorf("%s imports %s: an adapter owns one outside thing and imports no other adapter", p.ImportPath, imp)
				continue
			}
			if !slices.Contains(allowed, to) {
				t.Errorf("%s (%s) imports %s (%s): a %s package may import only %v", p.ImportPath, from, imp, to, from, allowed)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d packages checked; the layer map no longer matches the tree", checked)
	}
}

// TestLayerOf pins the classification itself, so a moved package cannot fall
// silently into a layer with looser rules.
func TestLayerOf(t *testing.T) {
	tests := map[string]string{
		"cmd/multus":             "cmd",
		"internal/mode/daemon":   "mode",
		"internal/setup/confmgr": "setup",
		"internal/engine":        "engine",
		"internal/engine/attach": "planning",
		"internal/adapter/store": "adapter",
		"internal/podnet":        "leaf",
		"test/e2e":               "other",
	}
	for pkg, want := range tests {
		if got := layer(module + "/" + pkg); got != want {
			t.Errorf("layer(%s) = %s, want %s", pkg, got, want)
		}
	}
}

// TestEngineDoesNoIO checks the own imports of the engine and of planning (their
// dependencies may do I/O for others): records, device-info files, the readiness
// indicator and configuration folders are reached through ports, so their unit
// tests need no disk.
func TestEngineDoesNoIO(t *testing.T) {
	want := []string{module + "/internal/engine", module + "/internal/engine/attach"}
	found := 0
	for _, p := range packages(t) {
		if !slices.Contains(want, p.ImportPath) {
			continue
		}
		found++
		for _, imp := range p.Imports {
			if slices.Contains([]string{"os", "io/ioutil", "path/filepath", "os/exec", "syscall"}, imp) {
				t.Errorf("%s imports %s: file and process I/O belong to the adapters behind its ports", p.ImportPath, imp)
			}
		}
	}
	if found != len(want) {
		t.Fatalf("found %d of %v with go list", found, want)
	}
}
