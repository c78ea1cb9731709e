package apiclient

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/polynet-cni/polynet/internal/cnicode"
)

// CredentialError is a credential the plugin cannot use: the kubeconfig, a file
// it names, or a pod's ServiceAccount files. It names the file, and carries the
// code the runtime sees:
//
//   - TryAgainLater (11) when the file is absent or empty. An installer writes
//     these files (the thin entrypoint writes the kubeconfig when its pod
//     starts, and removes it on exit with --cleanup-config-on-exit), so an ADD
//     on a node booting or during an upgrade can come before them.
//   - InvalidNetworkConfig (7) for a file that exists but cannot be used
//     (a folder, not readable, not PEM, a certificate without its key, a
//     kubeconfig naming what it does not define) and for a pod's ServiceAccount
//     files, which the kubelet mounts before the container starts and replaces
//     atomically: one that is missing will not appear later.
type CredentialError struct {
	// What names the credential: "kubeconfig", "token file", "certificate
	// authority", "client certificate", "client key".
	What string
	// File is the file at fault: the credential's own, or the kubeconfig that
	// holds it inline.
	File string
	Err  error
	// Transient: the file is absent or empty, not written yet.
	Transient bool
	// Hint says what to check, when there is more to say than Err.
	Hint string
}

func (e *CredentialError) Error() string {
	msg := fmt.Sprintf("%s %s: %v", e.What, e.File, e.Err)
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

func (e *CredentialError) Unwrap() error { return e.Err }

// CNICode reports TryAgainLater for a file not written yet, InvalidNetworkConfig
// otherwise.
func (e *CredentialError) CNICode() uint {
	if e.Transient {
		return cnicode.TryAgainLater
	}
	return cnicode.InvalidNetworkConfig
}

// serviceAccountHint explains a pod's ServiceAccount file that is missing.
const serviceAccountHint = "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are set, so the plugin uses the pod's " +
	"ServiceAccount: is automountServiceAccountToken off, or are the variables set outside a pod?"

// readCredential reads one credential file. One absent or holding only
// whitespace is transient, unless mounted says the kubelet mounted it; any
// other failure is a configuration error.
func readCredential(what, path string, mounted bool) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		cause := err
		var pe *fs.PathError
		if errors.As(err, &pe) {
			cause = pe.Err // the path is in the message already
		}
		ce := &CredentialError{What: what, File: path, Err: cause, Transient: errors.Is(err, fs.ErrNotExist) && !mounted}
		switch {
		case ce.Transient:
			ce.Hint = "not written yet? try again later"
		case mounted && errors.Is(err, fs.ErrNotExist):
			ce.Hint = serviceAccountHint
		}
		return nil, ce
	}
	if len(bytes.TrimSpace(data)) == 0 {
		ce := &CredentialError{What: what, File: path, Err: errors.New("the file is empty"), Transient: !mounted}
		if ce.Transient {
			ce.Hint = "being written? try again later"
		}
		return nil, ce
	}
	return data, nil
}
