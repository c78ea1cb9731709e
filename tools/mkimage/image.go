package main

import (
	"fmt"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/polynet-cni/polynet/tools/scratchimage"
)

// DefaultRepository is where the project publishes its image.
const DefaultRepository = "ghcr.io/polynet-cni/polynet"

// Source is the project's address, the image's org.opencontainers.image.source.
const Source = "https://github.com/polynet-cni/polynet"

// The image's configuration: upstream's thin image's entrypoint, and PATH with the
// binaries first so a debugging `kubectl exec ... multus --version` finds them.
var (
	entrypoint = []string{"/thin_entrypoint"}
	imageEnv   = []string{"PATH=/" + BinPath + ":/usr/bin:/bin"}
)

// Options are one build's inputs. The same Options and the same binaries give the
// same archive, byte for byte.
type Options struct {
	// BinDir holds the binaries, OutDir receives polynet-<tag>.tar.
	BinDir, OutDir string
	// Repository names the image, without a tag.
	Repository string
	// Version is the build's version as `git describe` prints it: the version
	// label as is, and, sanitized, the first tag and the archive's name.
	Version string
	// Revision is the commit, the revision label.
	Revision string
	// ExtraTags are given besides the version, such as "snapshot".
	ExtraTags []string
	// Epoch is every timestamp in the image and the archive: the commit's time.
	Epoch time.Time
}

// Result describes the archive written.
type Result struct {
	Path           string
	References     []string
	ManifestDigest v1.Hash
	// CompressedSize is the size of the config and layer blobs, what a registry
	// stores; the archive adds the manifest and the index.
	CompressedSize int64
}

// Build writes the image archive that o describes and returns what it wrote.
func Build(o Options) (Result, error) {
	if o.Revision == "" {
		return Result{}, fmt.Errorf("-revision is required (the Makefile passes the commit)")
	}
	tags, err := imageTags(o.Version, o.ExtraTags)
	if err != nil {
		return Result{}, err
	}
	entries, err := layout(o.BinDir)
	if err != nil {
		return Result{}, err
	}
	img, err := scratchimage.New(scratchimage.Spec{
		Entries:   entries,
		Config:    imageConfig(o),
		Epoch:     o.Epoch,
		CreatedBy: "tools/mkimage: " + fmt.Sprint(Binaries) + " in /" + BinPath,
	})
	if err != nil {
		return Result{}, err
	}
	refs := make([]scratchimage.Ref, len(tags))
	names := make([]string, len(tags))
	for i, t := range tags {
		names[i] = o.Repository + ":" + t
		refs[i] = scratchimage.Ref{Name: names[i], Tag: t}
	}
	path := filepath.Join(o.OutDir, "polynet-"+tags[0]+".tar")
	archive := scratchimage.Archive{Image: img, Refs: refs, Epoch: o.Epoch, DockerManifest: true}
	if err := archive.WriteFile(path); err != nil {
		return Result{}, fmt.Errorf("writing %s: %w", path, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return Result{}, err
	}
	m, err := img.Manifest()
	if err != nil {
		return Result{}, err
	}
	size := m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}
	return Result{Path: path, References: names, ManifestDigest: digest, CompressedSize: size}, nil
}

// imageConfig is the image's runtime configuration: upstream's entrypoint and the
// OCI labels that name this build.
func imageConfig(o Options) v1.Config {
	return v1.Config{
		Entrypoint: entrypoint,
		Env:        imageEnv,
		WorkingDir: "/",
		Labels: map[string]string{
			"org.opencontainers.image.version":  o.Version,
			"org.opencontainers.image.revision": o.Revision,
			"org.opencontainers.image.title":    "polynet",
			"org.opencontainers.image.source":   Source,
		},
	}
}
