// Package deploy tests what operators install: the DaemonSet manifests in
// deployments/ and the Helm chart in charts/, against the test bed's real API
// server and a real helm.
package deploy

import (
	"testing"

	"github.com/polynet-cni/polynet/test/testbed"
)

func TestMain(m *testing.M) { testbed.Main(m) }
