package config

import (
	"errors"
	"slices"
	"testing"
)

func FuzzParsePlugin(f *testing.F) {
	seeds := []string{
		minimal,
		`{"clusterNetwork":"n"}`,
		`{"clusterNetwork":"n","globalNamespaces":"a, b","apiTimeout":"1s","logOptions":{"maxSize":1}}`,
		`{"delegates":[{"plugins":[{"type":"ptp"}]}],"logLevel":"DEBUG","capabilities":{"a":true}}`,
		`{"delegates":[{}]}`,
		`{"logOptions":{"maxAge":1.5}}`,
		`{"apiTimeout":10}`,
		`[]`,
		`null`,
		`{"a":`,
		``,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParsePlugin(data)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a *FieldError", err, err)
			}
			if c != nil {
				t.Fatalf("error %v with a configuration", err)
			}
			return
		}
		if !slices.Contains(cniVersions, c.CNIVersion) {
			t.Errorf("accepted cniVersion %q", c.CNIVersion)
		}
		if c.ClusterNetwork == "" && len(c.Delegates) == 0 {
			t.Errorf("accepted a configuration without clusterNetwork or delegates")
		}
		if len(c.GlobalNamespaces) == 0 {
			t.Errorf("accepted a configuration without globalNamespaces")
		}
		if !slices.Contains(logLevels, c.LogLevel) {
			t.Errorf("accepted logLevel %q", c.LogLevel)
		}
	})
}
