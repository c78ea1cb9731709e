package selection

import (
	"fmt"
	"net"
)

// maxLabelLength is the longest DNS-1123 label, and so the longest name or
// namespace of a NetworkAttachmentDefinition.
const maxLabelLength = 63

// maxInterfaceLength is the longest Linux interface name: IFNAMSIZ (16) minus
// the terminating NUL.
const maxInterfaceLength = 15

// labelReason returns why s is not a DNS-1123 label, or "" when it is
// one. It is hand written rather than a regular expression because it runs on
// every pod and under the fuzzer.
func labelReason(s string) string {
	if s == "" {
		return "must not be empty"
	}
	if len(s) > maxLabelLength {
		return fmt.Sprintf("is longer than %d characters", maxLabelLength)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		edge := i == 0 || i == len(s)-1
		if !alnum && (edge || c != '-') {
			return "is not a DNS-1123 label (lower case letters, digits and '-', starting and ending with a letter or digit)"
		}
	}
	return ""
}

// interfaceReason returns why s cannot be a Linux interface name, or "" when it
// can. It follows the kernel's dev_valid_name so that a name accepted here is
// not rejected later by netlink, after other attachments were already made.
func interfaceReason(s string) string {
	if s == "" {
		return "must not be empty"
	}
	if len(s) > maxInterfaceLength {
		return fmt.Sprintf("is longer than %d bytes", maxInterfaceLength)
	}
	if s == "." || s == ".." {
		return "is not a valid interface name"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '/' || c == ':' || c == 0 || isKernelSpace(c) {
			return "must not contain '/', ':', whitespace or NUL"
		}
	}
	return ""
}

// isKernelSpace reports whether the kernel's isspace accepts c: the ASCII
// white space characters and, in the kernel's Latin-1 table, the non-breaking
// space 0xA0.
func isKernelSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\v', '\f', '\r', 0xA0:
		return true
	}
	return false
}

// ipReason returns why s is neither an IP address nor an address with a prefix
// length (R-4.1.2.1.3), or "" when it is one of them.
func ipReason(s string) string {
	if s == "" {
		return "must not contain an empty string; want IP addresses, optionally with a prefix length"
	}
	if net.ParseIP(s) != nil {
		return ""
	}
	if _, _, err := net.ParseCIDR(s); err == nil {
		return ""
	}
	return "is not an IP address or CIDR"
}

// hardwareReason returns why s is not a hardware address of exactly size bytes,
// or "" when it is one. kind names the address in the message.
func hardwareReason(s string, size int, kind string) string {
	if s == "" {
		return "must not be empty; want " + kind
	}
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != size {
		return "is not " + kind
	}
	return ""
}
