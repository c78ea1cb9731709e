package scratchimage

import (
	"debug/elf"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polynet-cni/polynet/tools/scratchimage/imagetest"
)

func TestCheckStatic(t *testing.T) {
	tests := []struct {
		name    string
		content []byte // nil: a folder
		wantIs  error
		want    string
	}{
		{name: "static amd64", content: imagetest.Executable(elf.EM_X86_64, false, "x")},
		{name: "dynamic", content: imagetest.Executable(elf.EM_X86_64, true, ""), wantIs: ErrDynamic, want: "is dynamically linked"},
		{name: "arm64", content: imagetest.Executable(elf.EM_AARCH64, false, ""), want: "EM_AARCH64, the image is linux/amd64"},
		{name: "script", content: []byte("#!/bin/sh\n"), want: "is not an ELF executable"},
		{name: "folder", want: "is not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "program")
			var err error
			if tt.content == nil {
				err = os.Mkdir(p, 0o755)
			} else {
				err = os.WriteFile(p, tt.content, 0o755)
			}
			if err != nil {
				t.Fatal(err)
			}
			err = CheckStatic(p)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckStatic: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("CheckStatic = %v, want an error naming %s and containing %q", err, p, tt.want)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("CheckStatic = %v, not %v", err, tt.wantIs)
			}
		})
	}
	if err := CheckStatic(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing program: %v", err)
	}
}
