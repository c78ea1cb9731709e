// Package imagetest helps the tests of the image tools: it makes tiny ELF
// executables, files that debug/elf reads as a static or dynamically linked program
// for a machine without building one, and reads back the tar files (archives and
// layers) that the tools write.
package imagetest

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
)

// Executable returns the smallest file debug/elf reads as an executable for
// machine, with a PT_INTERP header naming glibc's loader when dynamic, followed by
// payload, which makes each file's content distinct. It does not run.
func Executable(machine elf.Machine, dynamic bool, payload string) []byte {
	const ehsize, phentsize = 64, 56
	interp := "/lib64/ld-linux-x86-64.so.2\x00"
	progs := []elf.Prog64{{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X), Align: 0x1000}}
	if dynamic {
		off := uint64(ehsize + 2*phentsize)
		progs = append(progs, elf.Prog64{Type: uint32(elf.PT_INTERP), Flags: uint32(elf.PF_R), Off: off,
			Filesz: uint64(len(interp)), Memsz: uint64(len(interp)), Align: 1})
	}
	hdr := elf.Header64{
		Ident:     [elf.EI_NIDENT]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)},
		Type:      uint16(elf.ET_EXEC),
		Machine:   uint16(machine),
		Version:   uint32(elf.EV_CURRENT),
		Phoff:     ehsize,
		Ehsize:    ehsize,
		Phentsize: phentsize,
		Phnum:     uint16(len(progs)),
	}
	var buf bytes.Buffer
	for _, v := range []any{hdr, progs} {
		// Writing fixed-size values to a bytes.Buffer cannot fail.
		if err := binary.Write(&buf, binary.LittleEndian, v); err != nil {
			panic(err)
		}
	}
	if dynamic {
		buf.WriteString(interp)
	}
	buf.WriteString(payload)
	return buf.Bytes()
}
