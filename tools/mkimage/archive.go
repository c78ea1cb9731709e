package main

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/polynet-cni/polynet/internal/atomicfile"
)

// The annotations that name an image in an OCI layout's index.json: containerd
// reads the full reference from the first, the OCI spec puts the tag in the second.
const (
	annotationImageName = "io.containerd.image.name"
	annotationRefName   = "org.opencontainers.image.ref.name"
)

// tarFile is one member of the archive: a folder (no data, no open), bytes held in
// memory, or size bytes streamed from open.
type tarFile struct {
	name string
	data []byte
	open func() (io.ReadCloser, error)
	size int64
}

// writeArchive writes img under every reference to path, crash-safe (a temporary
// file in the same folder, synced, renamed). The archive is what `docker save`
// writes since Docker 25: an OCI image layout (oci-layout, index.json with one
// entry per reference, blobs/sha256/) that containerd and podman import, plus a
// manifest.json whose RepoTags, Config and Layers point into blobs/ for `docker
// load` and tools that only read the older format.
func writeArchive(path string, img v1.Image, refs, tags []string, epoch time.Time) (err error) {
	files, err := archiveFiles(img, refs, tags)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	tw := tar.NewWriter(f)
	for _, file := range files {
		if err := writeFile(tw, file, epoch); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(path))
}

// archiveFiles lists the archive's members, sorted by name.
func archiveFiles(img v1.Image, refs, tags []string) ([]tarFile, error) {
	index, err := indexJSON(img, refs, tags)
	if err != nil {
		return nil, err
	}
	manifest, err := img.RawManifest()
	if err != nil {
		return nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	configName, err := img.ConfigName()
	if err != nil {
		return nil, err
	}
	files := []tarFile{
		{name: "blobs/"},
		{name: "blobs/sha256/"},
		{name: "oci-layout", data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{name: "index.json", data: index},
		{name: blobPath(digest), data: manifest},
		{name: blobPath(configName), data: config},
	}
	dockerManifest := tarball.Descriptor{Config: blobPath(configName), RepoTags: refs}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		size, err := l.Size()
		if err != nil {
			return nil, err
		}
		files = append(files, tarFile{name: blobPath(d), open: l.Compressed, size: size})
		dockerManifest.Layers = append(dockerManifest.Layers, blobPath(d))
	}
	mj, err := json.Marshal(tarball.Manifest{dockerManifest})
	if err != nil {
		return nil, err
	}
	files = append(files, tarFile{name: "manifest.json", data: mj})
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	return files, nil
}

// indexJSON is the layout's index: the image once per reference, each entry with
// its platform and both naming annotations, as containerd and Docker write them.
// The entries carry no artifactType: the manifest is an image's, not an artifact's.
func indexJSON(img v1.Image, refs, tags []string) ([]byte, error) {
	desc, err := partial.Descriptor(img)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	for i := range refs {
		index.Manifests = append(index.Manifests, v1.Descriptor{
			MediaType:   desc.MediaType,
			Size:        desc.Size,
			Digest:      desc.Digest,
			Annotations: map[string]string{annotationImageName: refs[i], annotationRefName: tags[i]},
			Platform:    &v1.Platform{OS: cf.OS, Architecture: cf.Architecture},
		})
	}
	return json.Marshal(index)
}

func blobPath(h v1.Hash) string {
	return fmt.Sprintf("blobs/%s/%s", h.Algorithm, h.Hex)
}

func writeFile(tw *tar.Writer, f tarFile, epoch time.Time) error {
	hdr := &tar.Header{Name: f.name, Mode: 0o644, ModTime: epoch, Format: tar.FormatUSTAR, Typeflag: tar.TypeReg}
	switch {
	case f.data == nil && f.open == nil:
		hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		return tw.WriteHeader(hdr)
	case f.open == nil:
		hdr.Size = int64(len(f.data))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(f.data)
		return err
	}
	rc, err := f.open()
	if err != nil {
		return err
	}
	defer rc.Close()
	hdr.Size = f.size
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(tw, rc)
	if err == nil && n != f.size {
		err = errors.New("blob shorter than its size")
	}
	if err != nil {
		return fmt.Errorf("%s: wrote %d of %d bytes: %w", f.name, n, f.size, err)
	}
	return nil
}
