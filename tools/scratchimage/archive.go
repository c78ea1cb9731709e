package scratchimage

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/polynet-cni/polynet/internal/atomicfile"
)

// The annotations that name an image in an OCI layout's index.json: containerd
// imports the image under the full reference of the first, the OCI spec puts the
// tag in the second.
const (
	AnnotationImageName = "io.containerd.image.name"
	AnnotationRefName   = "org.opencontainers.image.ref.name"
)

// Ref is one name of an image in an archive: the full reference as importers
// store it ("ghcr.io/polynet-cni/polynet:v1.0.0") and its tag alone ("v1.0.0").
// They are written as given, so the caller decides how a reference is normalized.
type Ref struct {
	Name, Tag string
}

// Archive is an image in one tar file, as `docker save` writes it since Docker 25:
// an OCI image layout (oci-layout, index.json with one entry per reference,
// blobs/sha256/) that containerd and podman import, and optionally a manifest.json
// for `docker load` and the tools that read only that older format.
type Archive struct {
	Image v1.Image
	// Refs name the image, in order; there is at least one.
	Refs []Ref
	// Epoch is the time of every member of the archive.
	Epoch time.Time
	// DockerManifest adds manifest.json, whose RepoTags, Config and Layers point
	// into blobs/.
	DockerManifest bool
}

// member is one member of the archive: a folder (no data, no open), bytes held in
// memory, or size bytes streamed from open.
type member struct {
	name string
	data []byte
	open func() (io.ReadCloser, error)
	size int64
}

// WriteFile writes the archive to path, creating its folder, crash-safe (a
// temporary file in the same folder, synced, renamed over path): a failed write
// leaves path as it was. The members are sorted by name, their times the epoch,
// their owners 0:0, so the same archive gives the same bytes.
func (a Archive) WriteFile(path string) error {
	members, err := a.members()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		pw.CloseWithError(writeTar(pw, members, a.Epoch))
	}()
	err = atomicfile.WriteFrom(path, pr, 0o644)
	// Unblocks writeTar when WriteFrom gave up before reading all of it.
	pr.CloseWithError(errors.New("archive not written"))
	<-wrote
	return err
}

func writeTar(w io.Writer, members []member, epoch time.Time) error {
	tw := tar.NewWriter(w)
	for _, m := range members {
		if err := writeMember(tw, m, epoch); err != nil {
			return err
		}
	}
	return tw.Close()
}

// members lists the archive's members, sorted by name.
func (a Archive) members() ([]member, error) {
	if len(a.Refs) == 0 {
		return nil, errors.New("an image archive needs at least one reference")
	}
	img := a.Image
	index, err := a.indexJSON()
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
	members := []member{
		{name: "blobs/"},
		{name: "blobs/sha256/"},
		{name: "oci-layout", data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{name: "index.json", data: index},
		{name: blobPath(digest), data: manifest},
		{name: blobPath(configName), data: config},
	}
	layers, err := layerMembers(img)
	if err != nil {
		return nil, err
	}
	members = append(members, layers...)
	if a.DockerManifest {
		mj, err := a.dockerManifest(blobPath(configName), layers)
		if err != nil {
			return nil, err
		}
		members = append(members, member{name: "manifest.json", data: mj})
	}
	slices.SortFunc(members, func(x, y member) int { return strings.Compare(x.name, y.name) })
	return members, nil
}

// layerMembers are the image's layer blobs, streamed from the image when written.
func layerMembers(img v1.Image) ([]member, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	var out []member
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		size, err := l.Size()
		if err != nil {
			return nil, err
		}
		out = append(out, member{name: blobPath(d), open: l.Compressed, size: size})
	}
	return out, nil
}

// dockerManifest is manifest.json: the image once, under every reference, its
// config and layers named by their paths in blobs/.
func (a Archive) dockerManifest(config string, layers []member) ([]byte, error) {
	d := tarball.Descriptor{Config: config}
	for _, r := range a.Refs {
		d.RepoTags = append(d.RepoTags, r.Name)
	}
	for _, l := range layers {
		d.Layers = append(d.Layers, l.name)
	}
	return json.Marshal(tarball.Manifest{d})
}

// indexJSON is the layout's index: the image once per reference, each entry with
// its platform and both naming annotations, as containerd and Docker write them.
// The entries carry no artifactType: the manifest is an image's, not an artifact's.
func (a Archive) indexJSON() ([]byte, error) {
	desc, err := partial.Descriptor(a.Image)
	if err != nil {
		return nil, err
	}
	cf, err := a.Image.ConfigFile()
	if err != nil {
		return nil, err
	}
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	for _, r := range a.Refs {
		index.Manifests = append(index.Manifests, v1.Descriptor{
			MediaType:   desc.MediaType,
			Size:        desc.Size,
			Digest:      desc.Digest,
			Annotations: map[string]string{AnnotationImageName: r.Name, AnnotationRefName: r.Tag},
			Platform:    &v1.Platform{OS: cf.OS, Architecture: cf.Architecture},
		})
	}
	return json.Marshal(index)
}

func blobPath(h v1.Hash) string {
	return fmt.Sprintf("blobs/%s/%s", h.Algorithm, h.Hex)
}

func writeMember(tw *tar.Writer, m member, epoch time.Time) error {
	hdr := &tar.Header{Name: m.name, Mode: 0o644, ModTime: epoch, Format: tar.FormatUSTAR, Typeflag: tar.TypeReg}
	switch {
	case m.data == nil && m.open == nil:
		hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		return tw.WriteHeader(hdr)
	case m.open == nil:
		hdr.Size = int64(len(m.data))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(m.data)
		return err
	}
	rc, err := m.open()
	if err != nil {
		return err
	}
	defer rc.Close()
	hdr.Size = m.size
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(tw, rc)
	if err == nil && n != m.size {
		err = errors.New("blob shorter than its size")
	}
	if err != nil {
		return fmt.Errorf("%s: wrote %d of %d bytes: %w", m.name, n, m.size, err)
	}
	return nil
}
