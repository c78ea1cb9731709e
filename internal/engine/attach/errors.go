package attach

import (
	"fmt"

	"github.com/polynet-cni/polynet/internal/cnicode"
)

// NetworkNotFoundError says a requested network has no configuration: no NAD, or a
// NAD with neither spec.config nor a matching on-disk configuration (R-3.4.1 (4)).
type NetworkNotFoundError struct {
	Network string
	Reason  string
}

func (e *NetworkNotFoundError) Error() string {
	return fmt.Sprintf("network %q not found: %s", e.Network, e.Reason)
}

// RefusedError says the pod may not use a network: namespace isolation.
type RefusedError struct {
	Network string
	Reason  string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("network %q refused: %s (R-7.4)", e.Network, e.Reason)
}

// InterfaceConflictError says an attachment asked for an interface name that an
// earlier attachment of the pod already uses (R-4.1.2.1.5).
type InterfaceConflictError struct {
	Network  string
	IfName   string
	Previous string
}

func (e *InterfaceConflictError) Error() string {
	return fmt.Sprintf("network %q: interface %q is already used by network %q (R-4.1.2.1.5)", e.Network, e.IfName, e.Previous)
}

// CapabilityError says an attachment requested a runtime argument that none of its
// plugins declares, which the standard requires to fail (R-4.1.2.1.3 to .10).
type CapabilityError struct {
	Network     string
	Key         string
	Capability  string
	Requirement string
}

func (e *CapabilityError) Error() string {
	return fmt.Sprintf("network %q: the selection asks for %q, but no plugin of the network declares capabilities.%s (%s)",
		e.Network, e.Key, e.Capability, e.Requirement)
}

// ConfigError says a network's CNI configuration is unusable.
type ConfigError struct {
	Network string
	Source  string
	Err     error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("network %q: configuration from %s: %v", e.Network, e.Source, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// CNICode implementations: see package cnicode.

func (e *NetworkNotFoundError) CNICode() uint   { return cnicode.NetworkNotFound }
func (e *RefusedError) CNICode() uint           { return cnicode.NetworkRefused }
func (e *InterfaceConflictError) CNICode() uint { return cnicode.InterfaceConflict }
func (e *CapabilityError) CNICode() uint        { return cnicode.CapabilityMissing }
func (e *ConfigError) CNICode() uint            { return cnicode.InvalidNetworkConfig }

// CNICode reports DeviceUnavailable.
func (e *DeviceError) CNICode() uint { return cnicode.DeviceUnavailable }
