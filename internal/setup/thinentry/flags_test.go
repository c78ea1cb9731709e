package thinentry

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// upstreamFlags is every flag upstream's thin_entrypoint accepts, with a value
// of the kind it takes, in the --flag=value form its manifests use.
var upstreamFlags = []string{
	"--cni-bin-dir=/host/opt/cni/bin", "--cni-conf-dir=/host/etc/cni/net.d", "--cni-version=0.4.0",
	"--multus-conf-file=auto", "--multus-bin-file=/usr/src/multus-cni/bin/multus",
	"--multus-cni-conf-dir=/host/etc/cni/multus/net.d", "--skip-multus-binary-copy=false",
	"--multus-kubeconfig-file-host=/etc/cni/net.d/multus.d/multus.kubeconfig", "--multus-master-cni-file-name=10-calico.conflist",
	"--namespace-isolation=true", "--global-namespaces=default,kube-system", "--multus-autoconfig-dir=/host/etc/cni/net.d",
	"--multus-log-to-stderr=true", "--multus-log-level=verbose", "--multus-log-file=/var/log/multus.log",
	"--override-network-name=false", "--cleanup-config-on-exit=true", "--skip-config-watch=false",
	"--rename-conf-file=false", "--readiness-indicator-file=/run/ready", "--additional-bin-dir=/opt/extra",
	"--skip-tls-verify=false", "--force-cni-version=true",
}

func TestParseAcceptsUpstreamFlags(t *testing.T) {
	o, err := Parse(upstreamFlags, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &Options{
		CNIBinDir: "/host/opt/cni/bin", CNIConfDir: "/host/etc/cni/net.d", CNIVersion: "0.4.0", MultusConfFile: "auto",
		MultusBinFile: "/usr/src/multus-cni/bin/multus", MultusCNIConfDir: "/host/etc/cni/multus/net.d",
		KubeconfigHost: "/etc/cni/net.d/multus.d/multus.kubeconfig", MasterCNIFileName: "10-calico.conflist",
		NamespaceIsolation: true, GlobalNamespaces: "default,kube-system", AutoconfigDir: "/host/etc/cni/net.d",
		LogToStderr: true, LogLevel: "verbose", LogFile: "/var/log/multus.log", CleanupConfigOnExit: true,
		ReadinessIndicator: "/run/ready", AdditionalBinDir: "/opt/extra", ForceCNIVersion: true,
		ServiceAccountDir: "/var/run/secrets/kubernetes.io/serviceaccount",
	}
	if diff := cmp.Diff(want, o); diff != "" {
		t.Errorf("options (-want +got):\n%s", diff)
	}
	// The space-separated form and single dashes work too.
	if o, err := Parse([]string{"-cni-version", "1.0.0", "--namespace-isolation"}, nil); err != nil || o.CNIVersion != "1.0.0" || !o.NamespaceIsolation {
		t.Errorf("space form: %+v %v", o, err)
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cni-verison=1.0.0"}, "unknown flag: -cni-verison"},
		{[]string{"stray"}, `unexpected argument "stray"`},
		{[]string{"--cni-version=2.0.0"}, "--cni-version"},
		{[]string{"--force-cni-version"}, "--force-cni-version needs --cni-version"},
		{[]string{"--multus-log-level=info"}, "--multus-log-level"},
		{[]string{"--multus-conf-file=rel.conf"}, "--multus-conf-file"},
		{[]string{"--cni-conf-dir=etc"}, "--cni-conf-dir"},
		{[]string{"--multus-master-cni-file-name=/etc/cni/net.d/10.conf"}, "--multus-master-cni-file-name"},
		{[]string{"--namespace-isolation=maybe"}, "namespace-isolation"},
	} {
		if _, err := Parse(tc.args, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}

func TestParseHelp(t *testing.T) {
	var out bytes.Buffer
	if _, err := Parse([]string{"--help"}, &out); !errors.Is(err, ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, f := range []string{"cni-bin-dir", "cleanup-config-on-exit", "skip-config-watch", "probe"} {
		if !strings.Contains(out.String(), f) {
			t.Errorf("usage lacks %s:\n%s", f, out.String())
		}
	}
}
