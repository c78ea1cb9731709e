package delegate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/polynet-cni/polynet/internal/config"
)

// ChrootExec runs plugins inside Root (a host's / mounted into the daemon's
// container, upstream's chrootDir): plugin folders are the host's paths, found
// under Root, and run with Root as their root, so they see the host's binaries
// and libraries. A plugin binary being replaced right now ("text file busy") is
// retried a few times, as libcni's own executor does.
type ChrootExec struct {
	Root string
}

// FindInPath finds the plugin in the host's folders, as seen under Root. It
// refuses what libcni's invoke.FindInPath refuses, which this replaces: no
// name, no folders, and a name with a path separator, so that a "type" such as
// "../../bin/evil" never reaches exec (CVE-2021-20206); and, as
// config.ValidatePluginType, any name that is not a plain file name.
func (c ChrootExec) FindInPath(plugin string, paths []string) (string, error) {
	switch {
	case plugin == "":
		return "", errors.New("no plugin name provided")
	case strings.ContainsRune(plugin, os.PathSeparator):
		return "", fmt.Errorf("invalid plugin name: %s", plugin)
	case len(paths) == 0:
		return "", errors.New("no paths provided")
	}
	if err := config.ValidatePluginType(plugin); err != nil {
		return "", fmt.Errorf("invalid plugin name: %w", err)
	}
	for _, dir := range paths {
		p := filepath.Join(dir, plugin)
		if info, err := os.Stat(filepath.Join(c.Root, p)); err == nil && info.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("failed to find plugin %q in path %v under %s", plugin, paths, c.Root)
}

// ExecPlugin runs the plugin chrooted and returns its stdout, or its CNI error.
//
// The retry on "text file busy" is our own copy of the one in libcni's
// invoke.RawExec.ExecPlugin, which cannot be reused: RawExec builds its
// exec.Cmd inside ExecPlugin (exec.CommandContext(ctx, pluginPath), no
// arguments) and exposes no hook to set SysProcAttr.Chroot or Dir, nor a way to
// run a chroot(8) wrapper with arguments. Unlike RawExec, each attempt gets a
// fresh exec.Cmd and buffers, the busy case is told by errno (syscall.ETXTBSY)
// rather than by the message, and a binary still busy after the last attempt
// is an error (RawExec then returns empty output as a success).
func (c ChrootExec) ExecPlugin(ctx context.Context, pluginPath string, stdinData []byte, environ []string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		stdout.Reset()
		stderr.Reset()
		cmd := exec.CommandContext(ctx, pluginPath)
		cmd.Env = environ
		cmd.Stdin = bytes.NewReader(stdinData)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: c.Root}
		cmd.Dir = "/"
		if err = cmd.Run(); !errors.Is(err, syscall.ETXTBSY) {
			break
		}
		time.Sleep(time.Second)
	}
	if err == nil {
		return stdout.Bytes(), nil
	}
	var ce types.Error
	if len(stdout.Bytes()) > 0 && json.Unmarshal(stdout.Bytes(), &ce) == nil && ce.Msg != "" {
		return nil, &ce
	}
	return nil, fmt.Errorf("plugin %s: %w: %s", pluginPath, err, bytes.TrimSpace(stderr.Bytes()))
}

// Decode decodes a plugin's VERSION answer.
func (ChrootExec) Decode(jsonBytes []byte) (version.PluginInfo, error) {
	return (&version.PluginDecoder{}).Decode(jsonBytes)
}

var _ invoke.Exec = ChrootExec{}
