package engine

import (
	"fmt"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/podnet"
)

// PodUIDMismatchError says the sandbox belongs to another incarnation of the pod:
// the runtime's K8S_POD_UID differs from the API's pod of that name.
type PodUIDMismatchError struct {
	Pod     podnet.PodRef
	APIUID  string
	Sandbox string
}

func (e *PodUIDMismatchError) Error() string {
	return fmt.Sprintf("pod %s: the sandbox's K8S_POD_UID %q is not the API pod's UID %q (the pod was recreated)",
		e.Pod, e.Sandbox, e.APIUID)
}

// CNICode reports PodUIDMismatch.
func (e *PodUIDMismatchError) CNICode() uint { return cnicode.PodUIDMismatch }

// NotReadyError says the readiness indicator file did not appear in time.
type NotReadyError struct {
	Path   string
	Waited string
}

func (e *NotReadyError) Error() string {
	return fmt.Sprintf("readiness indicator file %s did not appear within %s: the cluster network is not ready", e.Path, e.Waited)
}

// CNICode reports TryAgainLater: readiness is transient.
func (e *NotReadyError) CNICode() uint { return cnicode.TryAgainLater }

// SelectionError is an invalid networks annotation under strictNetworkSelection.
type SelectionError struct {
	Pod podnet.PodRef
	Err error
}

func (e *SelectionError) Error() string { return fmt.Sprintf("pod %s: %v", e.Pod, e.Err) }
func (e *SelectionError) Unwrap() error { return e.Err }

// CNICode reports InvalidSelection.
func (e *SelectionError) CNICode() uint { return cnicode.InvalidSelection }

// AttachError is the failure of one attachment of a pod's ADD. It names the pod
// and the network and keeps the delegate's error, with its CNI code, as its cause
// (R-7.2a).
type AttachError struct {
	Pod     podnet.PodRef
	Network string
	IfName  string
	// Op is what failed: "attaching" (the default) or "checking".
	Op  string
	Err error
	// Rollback is the error of undoing the attachments already made, if any.
	Rollback error
}

func (e *AttachError) Error() string {
	op := e.Op
	if op == "" {
		op = "attaching"
	}
	msg := fmt.Sprintf("pod %s: %s network %q as %s: %v", e.Pod, op, e.Network, e.IfName, e.Err)
	if e.Rollback != nil {
		msg += fmt.Sprintf("; rolling back the attachments already made also failed (a DEL will retry them): %v", e.Rollback)
	}
	return msg
}

func (e *AttachError) Unwrap() error { return e.Err }

// DetachError collects the failures of a DEL (R-7.2b): every attachment was tried.
type DetachError struct {
	ContainerID string
	Failed      []error
}

func (e *DetachError) Error() string {
	msg := fmt.Sprintf("sandbox %s: %d attachment(s) failed to detach; the record is kept so a retried DEL finishes the job:", e.ContainerID, len(e.Failed))
	for _, err := range e.Failed {
		msg += " " + err.Error() + ";"
	}
	return msg[:len(msg)-1]
}

// Unwrap gives errors.As access to every failure; the first delegate error
// found decides the CNI code.
func (e *DetachError) Unwrap() []error { return e.Failed }

// UnknownContainerError says a CHECK names a sandbox we hold no record of.
type UnknownContainerError struct {
	ContainerID string
}

func (e *UnknownContainerError) Error() string {
	return fmt.Sprintf("sandbox %s: no attachment record: it was never added, or already deleted", e.ContainerID)
}

// CNICode reports the spec's "unknown container" (3).
func (e *UnknownContainerError) CNICode() uint { return cnicode.UnknownContainer }

// NotAvailableError answers STATUS: pods cannot be added now, and why.
type NotAvailableError struct {
	Reason string
}

func (e *NotAvailableError) Error() string { return "not available: " + e.Reason }

// CNICode reports the spec's "plugin not available" (50).
func (e *NotAvailableError) CNICode() uint { return cnicode.PluginNotAvailable }
