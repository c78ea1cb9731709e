// Package plugin is the CNI process boundary shared by the binaries the container
// runtime executes. It reads the command from the environment, answers VERSION
// itself, hands every other command to a Handler, and is the one place where an
// error becomes a CNI error object on stdout with a deliberate code.
//
// Process I/O is injected (Process), as in libcni's skel, so tests drive the
// boundary with a map and buffers instead of the real environment.
package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/cniconf"
	"github.com/polynet-cni/polynet/internal/request"
)

// Process is the process's view of the runtime: environment, stdin and stdout.
type Process struct {
	Getenv func(string) string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// OS returns the real process I/O.
func OS() Process {
	return Process{Getenv: os.Getenv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
}

// Handler executes one CNI command other than VERSION. It returns the bytes to print
// on stdout (nil for commands without output) or an error; errors that are not
// already *types.Error are reported with code 999 (internal).
type Handler interface {
	Handle(ctx context.Context, command string, stdin []byte, getenv func(string) string) ([]byte, error)
}

// Run executes the command named by CNI_COMMAND and returns the process exit code.
// About is printed, with the supported versions, when CNI_COMMAND is unset, the way
// the reference plugins answer a human who runs them by hand.
func Run(ctx context.Context, p Process, about string, h Handler) int {
	cmd := p.Getenv("CNI_COMMAND")
	if cmd == "" {
		fmt.Fprintf(p.Stderr, "%s\nCNI protocol versions supported: %s\n", about, strings.Join(version.All.SupportedVersions(), ", "))
		return 0
	}
	stdin, err := io.ReadAll(p.Stdin)
	if err != nil {
		return printError(p, types.NewError(types.ErrIOFailure, "reading stdin", err.Error()))
	}
	if cmd == request.Version {
		if err := writeVersion(p.Stdout, stdin); err != nil {
			return printError(p, types.NewError(types.ErrIOFailure, "writing version", err.Error()))
		}
		return 0
	}
	if !slices.Contains(request.Commands, cmd) {
		return printError(p, types.NewError(types.ErrInvalidEnvironmentVariables,
			fmt.Sprintf("unknown CNI_COMMAND %q", cmd), "allowed: "+strings.Join(request.Commands, ", ")+", "+request.Version))
	}
	out, err := h.Handle(ctx, cmd, stdin, p.Getenv)
	if err != nil {
		return printError(p, AsCNIError(err))
	}
	if len(out) > 0 {
		if _, err := p.Stdout.Write(out); err != nil {
			return printError(p, types.NewError(types.ErrIOFailure, "writing result", err.Error()))
		}
	}
	return 0
}

// writeVersion answers VERSION with the spec versions the CNI library knows
// (version.All), which are those a configuration may declare (package config).
// The spec asks the output's cniVersion to echo the version given on stdin; an
// empty or unknown input version gets the newest one.
func writeVersion(w io.Writer, stdin []byte) error {
	out := struct {
		CNIVersion        string   `json:"cniVersion"`
		SupportedVersions []string `json:"supportedVersions"`
	}{CNIVersion: version.Current(), SupportedVersions: version.All.SupportedVersions()}
	// VERSION input is optional; garbage means "no version given".
	if in := cniconf.Version(stdin); slices.Contains(out.SupportedVersions, in) {
		out.CNIVersion = in
	}
	return json.NewEncoder(w).Encode(out)
}

// AsCNIError returns err as a CNI error. A delegate's *types.Error anywhere in the
// chain keeps its code, so the runtime sees what the delegate said (R-7.2a); else
// an error that reports a code of ours (cnicode.Coder) gets it; anything else is
// internal (999). The message is always the whole chain's, with its context.
func AsCNIError(err error) *types.Error {
	var cniErr *types.Error
	if errors.As(err, &cniErr) {
		if cniErr.Error() == err.Error() {
			return cniErr
		}
		return types.NewError(cniErr.Code, err.Error(), cniErr.Details)
	}
	var coder cnicode.Coder
	if errors.As(err, &coder) {
		return types.NewError(coder.CNICode(), err.Error(), "")
	}
	return types.NewError(types.ErrInternal, err.Error(), "")
}

func printError(p Process, e *types.Error) int {
	if err := json.NewEncoder(p.Stdout).Encode(e); err != nil {
		fmt.Fprintf(p.Stderr, "%s\n", e.Error())
	}
	return 1
}

// NotImplemented is the Handler of a binary whose engine has not been wired yet: it
// fails every command with a clear error instead of pretending to succeed.
type NotImplemented struct{ Binary string }

// Handle fails with the internal error code (999): the runtime did nothing wrong.
func (n NotImplemented) Handle(_ context.Context, command string, _ []byte, _ func(string) string) ([]byte, error) {
	return nil, types.NewError(types.ErrInternal, fmt.Sprintf("%s: command %s is not implemented yet", n.Binary, command), "")
}
