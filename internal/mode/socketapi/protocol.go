// Package socketapi holds both ends of the socket protocol between multus-shim
// and multus-daemon: the request and response bodies, their protocol version,
// the client the shim (and the daemon's own probes) call with, and the daemon's
// HTTP server on <socketDir>/multus.sock.
//
// The bodies keep upstream's shape and JSON names, so that a drop-in daemon
// answers upstream's shim, and third parties written against upstream
// (multus-dynamic-networks-controller's /delegate calls) work unchanged. Upstream
// sends no protocol version; a request without one is version 1, upstream's
// shape, and our client always sends the version it speaks, so a daemon that
// does not know it refuses the request instead of misreading it.
//
// The server keeps the socket root only (folder 0700, socket 0600) and bounds
// what a burst can cost: each body's size, each request's time, and the
// requests in flight, past which the answer is CNI code 11 ("try again later")
// rather than more memory (Multus #1346). The client bounds the time to reach
// the daemon, the whole call, and the size of the answer it reads.
package socketapi

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Endpoints of the daemon's socket.
const (
	SocketName   = "multus.sock"
	PathCNI      = "/cni"
	PathDelegate = "/delegate"
	PathHealthz  = "/healthz"
	PathReadyz   = "/readyz"
)

// ProtocolVersion is the version of the request body this package's client
// sends. Version 1 is upstream's shape: env, config and interfaceAttributes.
const ProtocolVersion = 1

// SupportedProtocolVersions are the request versions the server accepts. A new
// version is added here when the body changes in a way an older daemon would
// misread; fields an older daemon may ignore need no new version.
var SupportedProtocolVersions = []int{1}

// protocolVersionField is the JSON name of Request.ProtocolVersion, named in the
// server's refusal so that the sender knows what to change.
const protocolVersionField = "protocolVersion"

// SocketPath is the daemon's socket inside socketDir.
func SocketPath(dir string) string { return filepath.Join(dir, SocketName) }

// Request is the body of POST /cni and /delegate: the CNI environment and the
// stdin configuration (base64 in JSON, as Go encodes []byte), plus, for /delegate,
// the interface's requested attributes. The JSON names are upstream's.
type Request struct {
	// ProtocolVersion is ours: upstream sends none, which means 1. The client
	// sets it when it is zero.
	ProtocolVersion     int                  `json:"protocolVersion,omitempty"`
	Env                 map[string]string    `json:"env"`
	Config              []byte               `json:"config"`
	InterfaceAttributes *InterfaceAttributes `json:"interfaceAttributes,omitempty"`
}

// Version returns the request's protocol version: an absent (zero) version is
// 1, upstream's shape.
func (r *Request) Version() int {
	if r.ProtocolVersion == 0 {
		return 1
	}
	return r.ProtocolVersion
}

// checkVersion says why the server cannot read a request of this version, or
// returns "" when it can.
func (r *Request) checkVersion() string {
	if slices.Contains(SupportedProtocolVersions, r.Version()) {
		return ""
	}
	known := make([]string, len(SupportedProtocolVersions))
	for i, v := range SupportedProtocolVersions {
		known[i] = strconv.Itoa(v)
	}
	return fmt.Sprintf("request field %q is %d; this multus-daemon supports %s (absent means 1)",
		protocolVersionField, r.ProtocolVersion, strings.Join(known, ", "))
}

// InterfaceAttributes are a hot-plugged interface's requests (/delegate).
type InterfaceAttributes struct {
	IPRequest  []string        `json:"ips,omitempty"`
	MacRequest string          `json:"mac,omitempty"`
	CNIArgs    *map[string]any `json:"cni-args,omitempty"`
}

// Response is the body of a successful request: the result for ADD, nothing for
// other commands. The key is upstream's "Result" (its struct has no tag).
type Response struct {
	Result json.RawMessage `json:"Result,omitempty"`
}
