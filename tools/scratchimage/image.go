// Package scratchimage builds container images from scratch, without a container
// engine or a base image, and writes them as image archives that `ctr images
// import`, `docker load` and `podman load` take. Its images have one layer and are
// for linux/amd64, the only platform the project ships.
//
// What it owns is reproducibility: the same entries, configuration and epoch give the
// same layer, the same digests and the same archive, byte for byte. tools/mkimage
// (the project's image) and tools/nodeimages (a test node's pause and toolbox
// images) both build through it.
package scratchimage

import (
	"bytes"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Spec is one image's inputs.
type Spec struct {
	// Entries are the layer's members, in any order; missing parent folders are
	// added.
	Entries []Entry
	// Config is the runtime configuration (entrypoint, environment, user, labels).
	Config v1.Config
	// Epoch is every timestamp: the image's creation, its history and the layer's
	// members.
	Epoch time.Time
	// CreatedBy is the layer's history entry, what `docker history` shows.
	CreatedBy string
}

// New builds the image of s: OCI media types throughout, one gzip-compressed layer,
// linux/amd64.
func New(s Spec) (v1.Image, error) {
	layerData, err := layer(s.Entries, s.Epoch)
	if err != nil {
		return nil, err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerData)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	created := v1.Time{Time: s.Epoch}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: "amd64",
		OS:           "linux",
		Created:      created,
		RootFS:       v1.RootFS{Type: "layers"},
		Config:       s.Config,
	})
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{
		Layer:     l,
		MediaType: types.OCILayer,
		History:   v1.History{Created: created, CreatedBy: s.CreatedBy},
	})
}
