package main

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/polynet-cni/polynet/tools/scratchimage"
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

// WriteArchive writes img as an OCI image layout in one tar file at path, named ref
// (normalized, as containerd names it), crash-safe. ctr reads the layout alone, so
// the archive has no docker manifest.json.
func WriteArchive(path string, img v1.Image, ref string) error {
	tag, err := parseRef(ref)
	if err != nil {
		return err
	}
	return scratchimage.Archive{
		Image: img,
		Refs:  []scratchimage.Ref{{Name: tag.Name(), Tag: tag.TagStr()}},
		Epoch: epoch,
	}.WriteFile(path)
}
