package deploy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/test/testbed"
)

// certApproverManifest is the optional per-node certificates file.
const certApproverManifest = "deployments/multus-cert-approver.yml"

// TestCertApproverManifestDryRun applies the approver's manifest to the real
// API server with a server-side dry-run and strict field validation.
func TestCertApproverManifestDryRun(t *testing.T) {
	bed := testbed.Require(t)
	cp := testbed.SharedControlPlane(t)
	data, err := os.ReadFile(filepath.Join(bed.Root, certApproverManifest))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	warnings, err := testbed.ApplyDryRun(ctx, cp.AdminConfig(), data)
	if err != nil {
		t.Errorf("%s: %v", certApproverManifest, err)
	}
	for _, w := range warnings {
		t.Errorf("%s: warning: %s", certApproverManifest, w)
	}
}

// TestChartCertApprover: off by default; with certApprover.enabled the chart
// renders exactly the manifest's objects beside the default ones, and the
// approver vouches for the release's ServiceAccount unless told otherwise; thin
// mode, which has no daemon, refuses it.
func TestChartCertApprover(t *testing.T) {
	testbed.Require(t)
	base := chartRender(t, "some-release", "kube-system")
	for key := range base {
		if strings.Contains(key, "cert-approver") || strings.Contains(key, "per-node") {
			t.Errorf("rendered by default: %s", key)
		}
	}
	got := chartRender(t, "some-release", "kube-system", "--set", "certApprover.enabled=true")
	for key := range base {
		delete(got, key)
	}
	want := chartReadManifest(t, certApproverManifest)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the chart's certApprover differs from %s (-manifest +chart):\n%s", certApproverManifest, diff)
	}

	other := chartRender(t, "r", "net", "--set", "certApprover.enabled=true", "--set", "serviceAccount.name=polynet")
	dep := other.get(t, "Deployment net/multus-cert-approver")
	if args := chartStrings(t, chartDig(t, dep, "spec", "template", "spec", "containers", 0, "args")); len(args) != 1 || args[0] != "-service-accounts=net:polynet" {
		t.Errorf("approver args %q, want the release's ServiceAccount", args)
	}
	if msg := chartHelmFails(t, "--set", "certApprover.enabled=true", "--set", "mode=thin"); !strings.Contains(msg, "certApprover.enabled needs mode: thick") {
		t.Errorf("thin mode with the approver: %s", msg)
	}
}

// TestChartPerNodeCertificateVolume: with perNodeCertificate on, the daemon's
// certDir is a folder of the host, mounted at the same path, so a restarted
// daemon keeps its certificate; off (the default), there is no such volume.
func TestChartPerNodeCertificateVolume(t *testing.T) {
	testbed.Require(t)
	const dir = "/var/lib/multus/certs"
	ds := chartRender(t, "r", "kube-system", "--set", "daemonConfig.perNodeCertificate.enabled=true",
		"--set", "daemonConfig.perNodeCertificate.certDir="+dir).get(t, "DaemonSet kube-system/kube-multus-ds")
	spec := chartDig(t, ds, "spec", "template", "spec")
	var path, mount string
	for _, v := range chartDig(t, spec, "volumes").([]any) {
		if v.(map[string]any)["name"] == "per-node-certificate" {
			path, _ = chartDig(t, v, "hostPath", "path").(string)
		}
	}
	for _, m := range chartDig(t, spec, "containers", 0, "volumeMounts").([]any) {
		if m.(map[string]any)["name"] == "per-node-certificate" {
			mount, _ = m.(map[string]any)["mountPath"].(string)
		}
	}
	if path != dir || mount != dir {
		t.Errorf("certificate volume: host path %q mounted at %q, want %s at %s", path, mount, dir, dir)
	}
	base := chartRender(t, "r", "kube-system").get(t, "DaemonSet kube-system/kube-multus-ds")
	for _, v := range chartDig(t, base, "spec", "template", "spec", "volumes").([]any) {
		if v.(map[string]any)["name"] == "per-node-certificate" {
			t.Error("a certificate volume without perNodeCertificate")
		}
	}
}
