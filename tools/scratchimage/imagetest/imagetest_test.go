package imagetest

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"strings"
	"testing"
)

func TestExecutable(t *testing.T) {
	for _, tt := range []struct {
		machine elf.Machine
		dynamic bool
	}{{elf.EM_X86_64, false}, {elf.EM_X86_64, true}, {elf.EM_AARCH64, false}} {
		data := Executable(tt.machine, tt.dynamic, "payload")
		f, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", tt.machine, err)
		}
		interp := false
		for _, p := range f.Progs {
			interp = interp || p.Type == elf.PT_INTERP
		}
		if f.Class != elf.ELFCLASS64 || f.Type != elf.ET_EXEC || f.Machine != tt.machine || interp != tt.dynamic {
			t.Errorf("%s dynamic %v: read back as %s %s %s, interpreter %v", tt.machine, tt.dynamic, f.Class, f.Type, f.Machine, interp)
		}
		if !bytes.HasSuffix(data, []byte("payload")) {
			t.Errorf("%s: payload missing", tt.machine)
		}
	}
}

func TestReadTar(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range []struct{ name, body string }{{"a", "first"}, {"dir/", ""}, {"dir/b", "second"}} {
		typ := byte(tar.TypeReg)
		if strings.HasSuffix(m.name, "/") {
			typ = tar.TypeDir
		}
		if err := tw.WriteHeader(&tar.Header{Name: m.name, Typeflag: typ, Mode: 0o644, Size: int64(len(m.body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(m.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	members, err := ReadTar(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range members {
		got = append(got, m.Header.Name+"="+string(m.Body))
	}
	if want := "a=first dir/= dir/b=second"; strings.Join(got, " ") != want {
		t.Errorf("members %q, want %s", got, want)
	}
	if _, err := ReadTar(strings.NewReader("not a tar file, but long enough to hold a header? no")); err == nil {
		t.Error("a file that is not a tar was read")
	}
}
