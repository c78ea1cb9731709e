// Command mkimage packs the static binaries that `make build` leaves in bin/ into one
// container image archive for both modes (thin and thick), without a container
// engine: `make image` runs it.
//
// The image has upstream Multus' layout, so manifests written for upstream's images
// work with ours: every binary under /usr/src/multus-cni/bin, the thin image's
// entrypoints at the root, and nothing else (no shell, no package manager). The
// archive is an OCI image layout with a docker-compatible manifest.json beside it,
// as `docker save` writes, so `ctr images import`, `docker load` and `podman load`
// all take it. The same inputs and -epoch give the same bytes and digest.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "mkimage: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	var (
		o     Options
		epoch int64
		tags  string
	)
	fs.StringVar(&o.BinDir, "bin", "bin", "folder of the static binaries built by `make build`")
	fs.StringVar(&o.OutDir, "out", "bin/image", "folder the archive is written to")
	fs.StringVar(&o.Repository, "repo", DefaultRepository, "repository of the image's references")
	fs.StringVar(&o.Version, "version", "", "version of this build (git describe); also the first tag, sanitized")
	fs.StringVar(&o.Revision, "revision", "", "commit this build is from")
	fs.Int64Var(&epoch, "epoch", -1, "the commit's time in seconds since 1970 (git log -1 --format=%ct): every timestamp in the image")
	fs.StringVar(&tags, "tags", "snapshot", "comma-separated tags given besides the version")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if epoch < 0 {
		return fmt.Errorf("-epoch is required (seconds since 1970, such as `git log -1 --format=%%ct`): it fixes every timestamp, so that builds are reproducible")
	}
	o.Epoch = time.Unix(epoch, 0).UTC()
	for _, t := range strings.Split(tags, ",") {
		if t = strings.TrimSpace(t); t != "" {
			o.ExtraTags = append(o.ExtraTags, t)
		}
	}
	res, err := Build(o)
	if err != nil {
		return err
	}
	fmt.Print(res.Summary())
	return nil
}

// Summary is what `make image` prints: the references, the manifest digest, the
// compressed size a registry would store and the archive's path.
func (r Result) Summary() string {
	return fmt.Sprintf("image    %s\nmanifest %s\nsize     %s compressed (config and layer), archive %s\n",
		strings.Join(r.References, " "), r.ManifestDigest, humanBytes(r.CompressedSize), r.Path)
}

func humanBytes(n int64) string {
	const mib = 1 << 20
	return fmt.Sprintf("%.1f MiB (%d bytes)", float64(n)/mib, n)
}
