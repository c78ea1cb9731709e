package podnet

import (
	"encoding/json"
	"slices"
	"time"
)

// Sandbox is the pod sandbox attachments are made in.
type Sandbox struct {
	ContainerID string
	// NetNS may be empty on DEL, when the sandbox is gone.
	NetNS string
}

// Attachment is one attachment of a sandbox, as executed.
type Attachment struct {
	// Network is the attachment's name in status and events: "namespace/name" of
	// a NAD, or the name of an on-disk or inline configuration.
	Network string `json:"network"`
	IfName  string `json:"ifName"`
	// Config holds the exact bytes of the delegate configuration (a conf or a
	// conflist) that ran, after every injection.
	Config []byte `json:"config"`
	// Default marks the cluster-wide default network.
	Default bool `json:"default,omitempty"`
	// CapabilityArgs are the runtimeConfig values given to the delegate, as raw
	// JSON so numbers keep their exact form.
	CapabilityArgs map[string]json.RawMessage `json:"capabilityArgs,omitempty"`
	// CNIArgs are the CNI_ARGS given to the delegate.
	CNIArgs [][2]string `json:"cniArgs,omitempty"`
	// DeviceInfoFile is the per-attachment device-info file, removed on DEL.
	DeviceInfoFile string `json:"deviceInfoFile,omitempty"`
	// Requested is set on the attachments made for an element of the pod's
	// networks annotation; dynamic networks add and remove only those.
	Requested *Requested `json:"requested,omitempty"`
}

// Requested is what an element of the pod's networks annotation asked for:
// its NAD ("namespace/name") and the interface name it gave, "" when it let
// the engine choose one. Dynamic networks match attachments to the annotation
// by it, so an attachment whose generated name happens to equal another
// element's requested one is never mistaken for it.
type Requested struct {
	Network   string `json:"network"`
	Interface string `json:"interface,omitempty"`
}

// Record is every attachment of one sandbox.
type Record struct {
	Version     int    `json:"version"`
	ContainerID string `json:"containerID"`
	// IfName is the runtime's CNI_IFNAME: with the container ID it names the
	// runtime's attachment, as GC's valid-attachments list does.
	IfName string `json:"ifName"`
	NetNS  string `json:"netns,omitempty"`
	Pod    PodRef `json:"pod"`
	// CNIVersion is the meta-plugin's own configured version.
	CNIVersion  string       `json:"cniVersion"`
	Created     time.Time    `json:"created"`
	Attachments []Attachment `json:"attachments"`
	// Checksum is the SHA-256 of the record encoded with an empty Checksum.
	Checksum string `json:"checksum"`
}

// Drop removes the attachment of interface ifName from the record.
func (r *Record) Drop(ifName string) {
	r.Attachments = slices.DeleteFunc(r.Attachments, func(a Attachment) bool { return a.IfName == ifName })
}

// CachedAttachment is an entry of the delegates' result cache (libcni's), which GC
// compares with the records.
type CachedAttachment struct {
	Network     string
	ContainerID string
	IfName      string
	Config      []byte
}
