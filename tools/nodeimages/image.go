package main

import (
	"fmt"
	"io/fs"
	"path"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/polynet-cni/polynet/tools/scratchimage"
)

// epoch is every timestamp in the images and the archives.
var epoch = time.Unix(0, 0).UTC()

// PauseImage is the sandbox image: the pause program at /pause, run as the
// unprivileged user 65535, as Kubernetes' own pause image does.
func PauseImage(pauseBin string) (v1.Image, error) {
	if err := scratchimage.CheckStatic(pauseBin); err != nil {
		return nil, err
	}
	return newImage([]scratchimage.Entry{scratchimage.FileFrom("pause", 0o755, pauseBin)}, v1.Config{
		Entrypoint: []string{"/pause"},
		User:       "65535:65535",
		WorkingDir: "/",
	}, "tools/nodeimages: /pause")
}

// ToolboxImage is the image of test pods: busybox at /bin/busybox and a relative
// link to it at each applet's path (applets as `busybox --list-full` prints them),
// the usual folders, and an /etc/passwd and /etc/group naming root and nobody.
func ToolboxImage(busybox string, applets []string) (v1.Image, error) {
	if err := scratchimage.CheckStatic(busybox); err != nil {
		return nil, err
	}
	entries := []scratchimage.Entry{
		scratchimage.Dir("bin", 0o755), scratchimage.Dir("dev", 0o755), scratchimage.Dir("etc", 0o755),
		scratchimage.Dir("home", 0o755), scratchimage.Dir("proc", 0o555), scratchimage.Dir("root", 0o700),
		scratchimage.Dir("run", 0o755), scratchimage.Dir("sbin", 0o755), scratchimage.Dir("sys", 0o555),
		scratchimage.Dir("tmp", 0o1777), scratchimage.Dir("usr", 0o755), scratchimage.Dir("usr/bin", 0o755),
		scratchimage.Dir("usr/sbin", 0o755), scratchimage.Dir("var", 0o755), scratchimage.Dir("var/tmp", 0o1777),
		scratchimage.Symlink("var/run", "../run"),
		scratchimage.File("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")),
		scratchimage.File("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")),
		scratchimage.FileFrom("bin/busybox", 0o755, busybox),
	}
	for _, a := range applets {
		a = path.Clean(a)
		if a == "bin/busybox" {
			continue
		}
		if !fs.ValidPath(a) || a == "." {
			return nil, fmt.Errorf("applet path %q is not a file below the root", a)
		}
		entries = append(entries, scratchimage.Symlink(a, relativeTo(path.Dir(a), "bin/busybox")))
	}
	return newImage(entries, v1.Config{
		Cmd:        []string{"sh"},
		Env:        []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		WorkingDir: "/",
	}, fmt.Sprintf("tools/nodeimages: busybox and %d applets", len(applets)))
}

// relativeTo is the relative path from folder dir to target, both relative to the
// root: "usr/bin" to "bin/busybox" is "../../bin/busybox", "bin" to it "busybox".
func relativeTo(dir, target string) string {
	if dir == path.Dir(target) {
		return path.Base(target)
	}
	up := ""
	for d := dir; d != "."; d = path.Dir(d) {
		up += "../"
	}
	return up + target
}

// newImage makes the single-layer linux/amd64 image of entries with config.
func newImage(entries []scratchimage.Entry, config v1.Config, history string) (v1.Image, error) {
	return scratchimage.New(scratchimage.Spec{Entries: entries, Config: config, Epoch: epoch, CreatedBy: history})
}
