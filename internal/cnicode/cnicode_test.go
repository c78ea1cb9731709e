package cnicode

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"testing"
)

// codes reads every constant of cnicode.go, so a code added later is checked
// without anyone listing it here.
func codes(t *testing.T) map[string]uint64 {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "cnicode.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok {
					t.Fatalf("%s is not a literal number", name.Name)
				}
				v, err := strconv.ParseUint(lit.Value, 10, 32)
				if err != nil {
					t.Fatalf("%s: %v", name.Name, err)
				}
				out[name.Name] = v
			}
		}
	}
	return out
}

// TestCodes pins the numbering rules: the spec's codes (1-99, and 999) keep the
// spec's numbers, ours start at 100, and no two conditions share a number,
// since runtimes and operators branch on them.
func TestCodes(t *testing.T) {
	spec := map[string]uint64{
		"IncompatibleVersion": 1, "UnknownContainer": 3, "InvalidEnvironment": 4, "IOFailure": 5,
		"DecodingFailure": 6, "InvalidNetworkConfig": 7, "TryAgainLater": 11, "PluginNotAvailable": 50, "Internal": 999,
	}
	all := codes(t)
	if len(all) < len(spec)+5 {
		t.Fatalf("read only %d constants from cnicode.go", len(all))
	}
	seen := map[uint64]string{}
	for name, code := range all {
		if want, isSpec := spec[name]; isSpec {
			if code != want {
				t.Errorf("%s = %d, the spec numbers it %d", name, code, want)
			}
		} else if code < 100 || code == 999 {
			t.Errorf("%s = %d: our own codes are 100 and up, and never 999", name, code)
		}
		if other, dup := seen[code]; dup {
			t.Errorf("%s and %s share code %d", name, other, code)
		}
		seen[code] = name
	}
	if TryAgainLater != 11 || uint64(RecordCorrupt) != all["RecordCorrupt"] {
		t.Error("the parsed constants disagree with the compiled ones")
	}
}
