// Package engine orchestrates the meta-plugin's CNI commands: it resolves a pod's
// attachments, records them, runs their delegates in order, rolls back on failure,
// reports network-status and events, and tears everything down on DEL. Both entry
// points run it: the thin plugin in-process, the daemon for the shim.
//
// It reaches the outside only through the interfaces declared here; adapters
// (package apiclient or apicache for the API server, package delegate for libcni) implement them.
// It imports no client-go, no net/http, no netlink and no libcni.
package engine

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/polynet-cni/polynet/internal/engine/attach"
	"github.com/polynet-cni/polynet/internal/podnet"
)

// Kubernetes is the engine's view of the API server.
type Kubernetes interface {
	attach.NADGetter
	// Pod reads the pod ref names; a missing one is a *podnet.NotFoundError.
	// ref.UID, when set, is the pod the caller wants (the sandbox's
	// K8S_POD_UID): an adapter that serves from a cache re-reads the pod live
	// when the cached one has another UID, since the cache may not have seen the
	// pod deleted and recreated under the same name yet.
	Pod(ctx context.Context, ref podnet.PodRef) (*podnet.Pod, error)
	// PatchNetworkStatus sets the pod's network-status annotation through the
	// status subresource, with a patch that touches nothing else and only applies
	// to the pod with ref's UID.
	PatchNetworkStatus(ctx context.Context, ref podnet.PodRef, value string) error
	// Event records an event on the pod.
	Event(ctx context.Context, ref podnet.PodRef, eventType, reason, message string) error
	// Ready checks that the API server answers and accepts our credentials.
	Ready(ctx context.Context) error
}

// Delegates runs one attachment's CNI configuration.
type Delegates interface {
	Add(ctx context.Context, sb podnet.Sandbox, a podnet.Attachment) (types.Result, error)
	Del(ctx context.Context, sb podnet.Sandbox, a podnet.Attachment) error
	// Check runs CHECK; configurations older than 0.4.0, which have no CHECK, pass.
	Check(ctx context.Context, sb podnet.Sandbox, a podnet.Attachment) error
	// Status runs STATUS of a network; configurations older than 1.1.0 pass.
	Status(ctx context.Context, network string, config []byte) error
	// GC runs GC of a network with the attachments of it that are still valid:
	// cached attachments of that network not in the list get a DEL, then plugins
	// of version 1.1.0 and later get GC.
	GC(ctx context.Context, network string, config []byte, valid []types.GCAttachment) error
	// Cached lists the attachments in the delegates' result cache.
	Cached() ([]podnet.CachedAttachment, error)
	// Result returns the result an attachment's ADD left in that cache.
	Result(sb podnet.Sandbox, a podnet.Attachment) (types.Result, error)
	// RewriteDefaultRoutes edits the attachment's cached result so that it lists
	// no default route of the families given (4, 6) and one via each gateway:
	// CHECK and DEL then see the routes the pod really has.
	RewriteDefaultRoutes(sb podnet.Sandbox, a podnet.Attachment, families []int, gateways []net.IP) error
}

// Records keeps each sandbox's record of its attachments, crash-safe (package
// store on disk). A missing record is an error matching fs.ErrNotExist; one that
// cannot be trusted is an error of the adapter's own that carries a CNI code.
type Records interface {
	// Lock takes the lock of all records: shared for the commands of one sandbox
	// (which hold its LockSandbox first), exclusive for GC.
	Lock(exclusive bool) (unlock func(), err error)
	// LockSandbox takes one sandbox's lock, across processes: its ADD, DEL,
	// CHECK and hot-plug commands run one at a time, whoever started
	// them.
	LockSandbox(containerID string) (unlock func(), err error)
	Save(rec *podnet.Record) error
	Load(containerID string) (*podnet.Record, error)
	Remove(containerID string) error
	// List names the sandboxes that have records.
	List() ([]string, error)
	// LoadLegacy reads the cache file upstream Multus wrote for a sandbox, so a
	// pod added before an upgrade is torn down exactly; RemoveLegacy deletes it.
	LoadLegacy(containerID, ifName string) ([]podnet.Attachment, error)
	RemoveLegacy(containerID string) error
}

// Files are the node's files the engine reads and writes besides its records
// (package hostfiles).
type Files interface {
	// Exists returns nil when path exists: the readiness indicator's test.
	Exists(path string) error
	// CopyDeviceInfo copies a device plugin's device-info file to the
	// attachment's own (D-4.2.1); a missing source is no error (D-4.1 MAY).
	CopyDeviceInfo(src, dst string) error
	// ReadDeviceInfo returns an attachment's device-info, compacted, or nil
	// when it has no file (D-6.1.1).
	ReadDeviceInfo(path string) (json.RawMessage, error)
	// RemoveDeviceInfo deletes an attachment's device-info file; a missing one
	// is no error.
	RemoveDeviceInfo(path string) error
}

// Routes changes default routes inside a pod's network namespace; families are 4
// and 6.
type Routes interface {
	DeleteDefault(netns, ifName string, family int) ([]net.IP, error)
	AddDefault(netns, ifName string, gw net.IP) error
}

// Event types and the reasons the engine records.
const (
	EventNormal  = "Normal"
	EventWarning = "Warning"

	// ReasonAddedInterface and ReasonNoNetworkFound are upstream's reasons, which
	// operators' alerts may already match.
	ReasonAddedInterface   = "AddedInterface"
	ReasonNoNetworkFound   = "NoNetworkFound"
	ReasonInvalidSelection = "InvalidNetworkSelection"
	ReasonAttachFailed     = "NetworkAttachmentFailed"
	ReasonStatusFailed     = "NetworkStatusFailed"
)

// Engine runs CNI commands. Its fields are the adapters; the per-request
// configuration comes with each call.
type Engine struct {
	// Kube is nil in delegates-only mode.
	Kube      Kubernetes
	Delegates Delegates
	// Routes is nil when no pod may change its default route (tests of other
	// features); a default-route request then fails.
	Routes Routes
	// Devices tells pods' allocated devices; nil when none can be known.
	Devices attach.DeviceSource
	// Confs reads the CNI configurations on the node's disk (package confdir).
	Confs   attach.ConfSource
	Records Records
	Files   Files
	Log     *slog.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// CleanupTimeout bounds a rollback and a DEL's teardown, which run on a
	// context of their own, not the caller's; zero is DefaultCleanupTimeout.
	CleanupTimeout time.Duration
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// event records an event when a pod and a client exist; a failure is logged, not
// returned: an event is never worth failing a pod's networking for.
func (e *Engine) event(ctx context.Context, log *slog.Logger, pod *podnet.Pod, eventType, reason, message string) {
	if e.Kube == nil || pod == nil {
		return
	}
	if err := e.Kube.Event(ctx, pod.Ref(), eventType, reason, message); err != nil {
		log.Warn("recording event failed", "reason", reason, "error", err)
	}
}
