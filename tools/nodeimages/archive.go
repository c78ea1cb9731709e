package main

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations of an OCI layout's index.json that name an image: containerd imports
// the image under the full reference of the first; the second is the OCI spec's tag.
const (
	AnnotationImageName = "io.containerd.image.name"
	AnnotationRefName   = "org.opencontainers.image.ref.name"
)

// parseRef checks that ref is a full image reference with a tag other than latest:
// pods run these images with imagePullPolicy Never or IfNotPresent, and a kubelet
// always pulls :latest.
func parseRef(ref string) (name.Tag, error) {
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return name.Tag{}, fmt.Errorf("image reference %q: %w", ref, err)
	}
	if tag.TagStr() == "latest" {
		return name.Tag{}, fmt.Errorf("image reference %q: give a tag other than latest", ref)
	}
	return tag, nil
}

// WriteArchive writes img as an OCI image layout in one tar file at path, named ref:
// oci-layout, index.json with one entry carrying both naming annotations, and the
// manifest, config and layer blobs. The members are sorted, their times the epoch.
// The file is written beside path and renamed over it once complete.
func WriteArchive(path string, img v1.Image, ref string) (err error) {
	tag, err := parseRef(ref)
	if err != nil {
		return err
	}
	members, err := layoutMembers(img, tag)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
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
	for _, m := range members {
		hdr := &tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), ModTime: epoch, Format: tar.FormatUSTAR, Typeflag: tar.TypeReg}
		if strings.HasSuffix(m.name, "/") {
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(m.data); err != nil {
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
	return os.Rename(f.Name(), path)
}

type member struct {
	name string // a trailing slash marks a folder
	data []byte
}

// layoutMembers lists the archive's members in name order.
func layoutMembers(img v1.Image, tag name.Tag) ([]member, error) {
	desc, err := partial.Descriptor(img)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	// The manifest is an image's, not an artifact's: no artifactType.
	desc.ArtifactType = ""
	desc.Annotations = map[string]string{AnnotationImageName: tag.Name(), AnnotationRefName: tag.TagStr()}
	desc.Platform = &v1.Platform{OS: cf.OS, Architecture: cf.Architecture}
	index, err := json.Marshal(v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests:     []v1.Descriptor{*desc},
	})
	if err != nil {
		return nil, err
	}
	manifest, err := img.RawManifest()
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
	// Sorted by name: "blobs/" < "blobs/sha256/" < "blobs/sha256/<hex>" < "index.json" < "oci-layout".
	blobs := []member{
		{name: blobName(desc.Digest), data: manifest},
		{name: blobName(configName), data: config},
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		blobs = append(blobs, member{name: blobName(d), data: data})
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].name < blobs[j].name })
	out := []member{{name: "blobs/"}, {name: "blobs/sha256/"}}
	out = append(out, blobs...)
	return append(out,
		member{name: "index.json", data: index},
		member{name: "oci-layout", data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
	), nil
}

func blobName(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }
