package scratchimage

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
)

// ErrDynamic marks a program that names a program interpreter, a dynamic loader,
// which an image built from scratch does not have: it would fail only when run.
var ErrDynamic = errors.New("dynamically linked; the image has no C library")

// CheckStatic makes sure that the program at p can run in these images: a regular
// file holding a 64-bit x86 ELF executable that asks for no program interpreter,
// which is what CGO_ENABLED=0 builds. A missing file gives the error of os.Stat
// (errors.Is fs.ErrNotExist), a dynamically linked one ErrDynamic.
func CheckStatic(p string) error {
	info, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file (%s)", p, info.Mode().Type())
	}
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("%s is not an ELF executable: %w", p, err)
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("%s is for %s %s, the image is linux/amd64", p, f.Class, f.Machine)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is %w", p, ErrDynamic)
		}
	}
	return nil
}
