package scratchimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"
)

// Entry is one member of an image's layer: a folder, a regular file or a symbolic
// link. Times and owners are not part of it: every member of every layer has the
// image's epoch as its time and 0:0 as its owner.
type Entry struct {
	// Name is the path below the root, without a leading or trailing slash.
	Name string
	// Type is tar.TypeDir, tar.TypeReg or tar.TypeSymlink.
	Type byte
	Mode int64
	// Linkname is a symbolic link's target.
	Linkname string
	// Data is a regular file's content held in memory. Source instead names the
	// file the content is read from when the layer is written, so that large
	// binaries are not held twice; at most one of them is set.
	Data   []byte
	Source string
}

// Dir is a folder.
func Dir(name string, mode int64) Entry { return Entry{Name: name, Type: tar.TypeDir, Mode: mode} }

// File is a regular file with the content data.
func File(name string, mode int64, data []byte) Entry {
	return Entry{Name: name, Type: tar.TypeReg, Mode: mode, Data: data}
}

// FileFrom is a regular file whose content is read from source when the layer is
// written.
func FileFrom(name string, mode int64, source string) Entry {
	return Entry{Name: name, Type: tar.TypeReg, Mode: mode, Source: source}
}

// Symlink is a symbolic link to target, mode 0777 as the kernel reports every link.
func Symlink(name, target string) Entry {
	return Entry{Name: name, Type: tar.TypeSymlink, Mode: 0o777, Linkname: target}
}

// complete returns a sorted copy of entries with the folders that hold them but are
// not listed added (mode 0755), so that a folder always comes before what it holds.
// It refuses a name that is given twice or that does not stay below the root.
func complete(entries []Entry) ([]Entry, error) {
	out := slices.Clone(entries)
	byName := map[string]bool{}
	for _, e := range entries {
		if !fs.ValidPath(e.Name) || e.Name == "." {
			return nil, fmt.Errorf("layer entry %q is not a path below the root", e.Name)
		}
		if e.Data != nil && e.Source != "" {
			return nil, fmt.Errorf("layer entry /%s has both data and a source file", e.Name)
		}
		if byName[e.Name] {
			return nil, fmt.Errorf("%s is in the image twice", e.Name)
		}
		byName[e.Name] = true
	}
	for _, e := range entries {
		for d := path.Dir(e.Name); d != "."; d = path.Dir(d) {
			if !byName[d] {
				byName[d] = true
				out = append(out, Dir(d, 0o755))
			}
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// layer returns the gzip-compressed tar of entries, completed and sorted. Everything
// that could differ between two builds of the same content is fixed: every time is
// epoch, every owner 0:0 without names, the format USTAR (no PAX records with access
// or change times), and the gzip header has neither a name nor a time.
// compress/gzip at one level is deterministic for one Go release; the default level
// is within 0.5% of the best one for our binaries, in a third of the time.
func layer(entries []Entry, epoch time.Time) ([]byte, error) {
	entries, err := complete(entries)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		if err := writeEntry(tw, e, epoch); err != nil {
			return nil, fmt.Errorf("layer entry /%s: %w", e.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeEntry(tw *tar.Writer, e Entry, epoch time.Time) error {
	hdr := &tar.Header{
		Typeflag: e.Type,
		Name:     e.Name,
		Linkname: e.Linkname,
		Mode:     e.Mode,
		Size:     int64(len(e.Data)),
		ModTime:  epoch,
		Format:   tar.FormatUSTAR,
	}
	if e.Type == tar.TypeDir {
		hdr.Name += "/"
	}
	if e.Source == "" {
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(e.Data)
		return err
	}
	f, err := os.Open(e.Source)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	hdr.Size = info.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	// A file rewritten while we read it fails here (the tar writer refuses more
	// than Size bytes) instead of passing silently.
	n, err := io.Copy(tw, f)
	if err == nil && n != hdr.Size {
		err = fmt.Errorf("file changed size while being read")
	}
	if err != nil {
		return fmt.Errorf("copying %s (%d of %d bytes): %w", e.Source, n, hdr.Size, err)
	}
	return nil
}
