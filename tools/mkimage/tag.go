package main

import (
	"fmt"
	"strings"
)

// maxTagLen is the longest tag the distribution reference grammar allows.
const maxTagLen = 128

// SanitizeTag turns a version as `git describe` or a release process prints it into
// a valid image tag, [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}: every other character
// becomes '-' ("v1.0.0+meta" -> "v1.0.0-meta", "feature/x" -> "feature-x"),
// leading '.' and '-' are dropped, and the result is cut at 128 characters. A
// version with nothing left is an error, never an empty or made-up tag.
func SanitizeTag(version string) (string, error) {
	var b strings.Builder
	for _, r := range strings.TrimSpace(version) {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	tag := strings.TrimLeft(b.String(), ".-")
	if len(tag) > maxTagLen {
		tag = tag[:maxTagLen]
	}
	if tag == "" {
		return "", fmt.Errorf("version %q gives no valid image tag", version)
	}
	return tag, nil
}

// imageTags returns the sanitized version followed by the extra tags, which must
// already be valid, without duplicates.
func imageTags(version string, extra []string) ([]string, error) {
	if strings.TrimSpace(version) == "" {
		return nil, fmt.Errorf("-version is required (the Makefile passes `git describe --tags --always --dirty`)")
	}
	first, err := SanitizeTag(version)
	if err != nil {
		return nil, err
	}
	tags := []string{first}
	seen := map[string]bool{first: true}
	for _, t := range extra {
		if s, err := SanitizeTag(t); err != nil || s != t {
			return nil, fmt.Errorf("invalid tag %q", t)
		}
		if !seen[t] {
			seen[t] = true
			tags = append(tags, t)
		}
	}
	return tags, nil
}
