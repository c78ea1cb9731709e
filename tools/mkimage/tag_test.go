package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
)

func TestSanitizeTag(t *testing.T) {
	tests := []struct {
		version, want string
		wantErr       bool
	}{
		{version: "v0.1.0", want: "v0.1.0"},
		{version: "v0.1.0-3-gabc1234-dirty", want: "v0.1.0-3-gabc1234-dirty"},
		{version: "c1576f7", want: "c1576f7"},
		{version: "v1.0.0+build.5", want: "v1.0.0-build.5"},
		{version: "feature/new thing", want: "feature-new-thing"},
		{version: "  v1\n", want: "v1"},
		{version: "-rc1", want: "rc1"},
		{version: ".hidden", want: "hidden"},
		{version: "_ok", want: "_ok"},
		{version: "é", wantErr: true},
		{version: "", wantErr: true},
		{version: "+++", wantErr: true},
		{version: strings.Repeat("a", 200), want: strings.Repeat("a", 128)},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			got, err := SanitizeTag(tt.version)
			if (err != nil) != tt.wantErr {
				t.Fatalf("SanitizeTag(%q) = %q, %v; want error %v", tt.version, got, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("SanitizeTag(%q) = %q, want %q", tt.version, got, tt.want)
			}
			if err == nil {
				// The reference parser of go-containerregistry must agree.
				if _, err := name.NewTag(DefaultRepository+":"+got, name.StrictValidation); err != nil {
					t.Errorf("tag %q is not valid: %v", got, err)
				}
			}
		})
	}
}

func TestImageTags(t *testing.T) {
	tests := []struct {
		name    string
		version string
		extra   []string
		want    []string
		wantErr string
	}{
		{"version and snapshot", "v1+x", []string{"snapshot"}, []string{"v1-x", "snapshot"}, ""},
		{"duplicates dropped", "snapshot", []string{"snapshot", "latest", "latest"}, []string{"snapshot", "latest"}, ""},
		{"no version", " ", nil, nil, "-version is required"},
		{"invalid extra tag", "v1", []string{"not/valid"}, nil, `invalid tag "not/valid"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := imageTags(tt.version, tt.extra)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("imageTags = %v, %v; want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("tags (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRunFlags: the flags without which a build would not be reproducible or
// named are required.
func TestRunFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no epoch", []string{"-version", "v1", "-revision", "abc"}, "-epoch is required"},
		{"no version", []string{"-epoch", "0", "-revision", "abc"}, "-version is required"},
		{"no revision", []string{"-epoch", "0", "-version", "v1"}, "-revision is required"},
		{"stray argument", []string{"-epoch", "0", "extra"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-bin", t.TempDir(), "-out", t.TempDir()}, tt.args...)
			if err := run(args); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}
