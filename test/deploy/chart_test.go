package deploy

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/setup/thinentry"
	"github.com/polynet-cni/polynet/test/testbed"
)

// chartModes are the chart's modes, each with the manifest its default render
// must equal. Thick passes no value: it is the default.
var chartModes = []struct {
	mode     string
	manifest string
	args     []string
}{
	{"thick", testbed.ThickManifest, nil},
	{"thin", testbed.ThinManifest, []string{"--set", "mode=thin"}},
}

// TestChartLint: `helm lint --strict` finds nothing to warn about, in either
// mode and with every optional object rendered.
func TestChartLint(t *testing.T) {
	testbed.Require(t)
	cases := map[string][]string{"all-options": {"--set", "metrics.serviceMonitor.enabled=true",
		"--set", "daemonConfig.metricsPort=9091", "--set", "helmLabels=true", "--set", "crd.keep=true"}}
	for _, m := range chartModes {
		cases[m.mode] = m.args
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			report := testbed.HelmLint(t, chartDir(t), args...)
			if strings.Contains(string(report), "[WARNING]") || strings.Contains(string(report), "[ERROR]") {
				t.Errorf("helm lint:\n%s", report)
			}
		})
	}
}

// TestChartDefaultsMatchManifests: with default values the chart renders
// exactly the objects of deployments/, in both modes, whatever the release is
// called, but for one annotation: the CRD is kept on `helm uninstall` (crd.keep),
// so that uninstalling never deletes the cluster's NADs. The ConfigMaps' JSON is
// compared as JSON.
func TestChartDefaultsMatchManifests(t *testing.T) {
	testbed.Require(t)
	const crdKey = "CustomResourceDefinition network-attachment-definitions.k8s.cni.cncf.io"
	for _, m := range chartModes {
		t.Run(m.mode, func(t *testing.T) {
			want := chartReadManifest(t, m.manifest)
			got := chartRender(t, "some-release", "kube-system", m.args...)
			meta, _ := got[crdKey]["metadata"].(map[string]any)
			if ann, _ := meta["annotations"].(map[string]any); len(ann) != 1 || ann["helm.sh/resource-policy"] != "keep" {
				t.Errorf("the CRD's annotations are %v, want only helm.sh/resource-policy: keep", meta["annotations"])
			}
			delete(meta, "annotations")
			chartParseConfigJSON(t, want)
			chartParseConfigJSON(t, got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("the chart's default render differs from %s (-manifest +chart):\n%s", m.manifest, diff)
			}
		})
	}
}

// chartValueCase is one set of values: rendered, checked field by field, and
// dry-run applied to the real API server.
type chartValueCase struct {
	name    string
	release string
	// namespace is the release's; empty means one made for the case.
	namespace string
	values    string
	// serviceMonitorCRD installs the ServiceMonitor CRD for the dry-run.
	serviceMonitorCRD bool
	check             func(t *testing.T, objs chartObjects, ns string)
}

// TestChartValues renders the chart with sets of values, checks the fields each
// set should change, and applies each render with a server-side dry-run and
// strict field validation: any error or warning fails.
func TestChartValues(t *testing.T) {
	testbed.Require(t)
	cp := testbed.SharedControlPlane(t)
	kc, _ := cp.AdminClients(t)
	for _, tc := range chartValueCases() {
		t.Run(tc.name, func(t *testing.T) {
			ns := tc.namespace
			if ns == "" {
				ns = chartNamespace(t, kc)
			}
			if tc.serviceMonitorCRD {
				chartInstallServiceMonitorCRD(t, cp.AdminConfig())
			}
			var args []string
			if tc.values != "" {
				args = []string{"-f", chartWriteFile(t, "values.yaml", tc.values)}
			}
			out := testbed.HelmTemplate(t, chartDir(t), tc.release, ns, args...)
			objs := chartSplit(t, "helm template", out)
			chartCheckNamespaces(t, objs, ns)
			tc.check(t, objs, ns)

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			warnings, err := testbed.ApplyDryRun(ctx, cp.AdminConfig(), out)
			if err != nil {
				t.Errorf("dry-run apply: %v", err)
			}
			for _, w := range warnings {
				t.Errorf("dry-run apply: warning: %s", w)
			}
		})
	}
}

func chartValueCases() []chartValueCase {
	return []chartValueCase{
		{
			name: "thick-defaults", release: "polynet", namespace: "kube-system",
			check: func(t *testing.T, objs chartObjects, ns string) {
				chartCheckImages(t, objs, ns, "ghcr.io/polynet-cni/polynet:snapshot", "IfNotPresent")
				if diff := cmp.Diff(chartManifestDaemonConfig(t), chartDaemonConfig(t, objs, ns)); diff != "" {
					t.Errorf("daemon-config.json (-manifest +chart):\n%s", diff)
				}
			},
		},
		{
			name: "thin-defaults", release: "polynet", namespace: "kube-system", values: "mode: thin\n",
			check: func(t *testing.T, objs chartObjects, ns string) {
				chartCheckImages(t, objs, ns, "ghcr.io/polynet-cni/polynet:snapshot", "IfNotPresent")
				args, _ := chartThinArgs(t, objs, ns)
				want := []string{"--multus-conf-file=auto", "--multus-autoconfig-dir=/host/etc/cni/net.d", "--cni-conf-dir=/host/etc/cni/net.d"}
				if diff := cmp.Diff(want, args); diff != "" {
					t.Errorf("thin_entrypoint's arguments (-want +got):\n%s", diff)
				}
			},
		},
		chartCustomThickCase(),
		chartDynamicNetworksExampleCase(),
		chartServiceMonitorCase(),
		chartThinFlagsCase(),
		chartOtherNamespaceCase(),
	}
}

// chartDynamicNetworksExampleCase: the chart's example values for dynamic
// networks turn the daemon's dynamicNetworks on and change nothing else of
// daemon-config.json but the metrics port.
func chartDynamicNetworksExampleCase() chartValueCase {
	values, err := os.ReadFile(filepath.Join("..", "..", "charts", "polynet", "examples", "dynamic-networks.yaml"))
	return chartValueCase{
		name: "example-dynamic-networks", release: "polynet", namespace: "kube-system", values: string(values),
		check: func(t *testing.T, objs chartObjects, ns string) {
			if err != nil {
				t.Fatal(err)
			}
			want := chartManifestDaemonConfig(t)
			want["dynamicNetworks"], want["metricsPort"] = true, float64(9091)
			if diff := cmp.Diff(want, chartDaemonConfig(t, objs, ns)); diff != "" {
				t.Errorf("daemon-config.json (-want +got):\n%s", diff)
			}
		},
	}
}

// chartCustomThickCase: image, resources, placement and daemon-config.json keys
// of upstream's and ours.
func chartCustomThickCase() chartValueCase {
	const values = `
image:
  repository: registry.example.com/net/polynet
  tag: v1.2.3
  pullPolicy: Always
resources:
  daemon:
    requests: {cpu: 250m, memory: 128Mi}
    limits: {memory: 512Mi}
nodeSelector:
  kubernetes.io/os: linux
tolerations:
  - {operator: Exists, effect: NoSchedule}
  - {operator: Exists, effect: NoExecute}
  - {key: example.com/dedicated, operator: Equal, value: network, effect: NoSchedule}
daemonConfig:
  logLevel: debug
  namespaceIsolation: true
  globalNamespaces: default,shared-networks
  systemNamespaces: [kube-system, kube-public]
  metricsPort: 9091
  maxInFlight: 64
  requestTimeout: 2m
  apiTimeout: 5s
  removeConfigOnShutdown: false
daemonConfigExtra:
  futureKey: {enabled: true}
`
	return chartValueCase{
		name: "thick-custom", release: "polynet", namespace: "kube-system", values: values,
		check: func(t *testing.T, objs chartObjects, ns string) {
			chartCheckImages(t, objs, ns, "registry.example.com/net/polynet:v1.2.3", "Always")
			want := chartManifestDaemonConfig(t)
			for k, v := range map[string]any{
				"logLevel": "debug", "namespaceIsolation": true, "globalNamespaces": "default,shared-networks",
				"systemNamespaces": []any{"kube-system", "kube-public"}, "metricsPort": 9091.0, "maxInFlight": 64.0,
				"requestTimeout": "2m", "apiTimeout": "5s", "removeConfigOnShutdown": false,
				"futureKey": map[string]any{"enabled": true},
			} {
				want[k] = v
			}
			if diff := cmp.Diff(want, chartDaemonConfig(t, objs, ns)); diff != "" {
				t.Errorf("daemon-config.json (-want +got):\n%s", diff)
			}
			ds := objs.get(t, "DaemonSet "+ns+"/kube-multus-ds")
			pod := chartDig(t, ds, "spec", "template", "spec")
			daemon := chartDig(t, pod, "containers", "name=kube-multus")
			wantRes := map[string]any{"requests": map[string]any{"cpu": "250m", "memory": "128Mi"}, "limits": map[string]any{"memory": "512Mi"}}
			if diff := cmp.Diff(wantRes, chartDig(t, daemon, "resources")); diff != "" {
				t.Errorf("daemon resources (-want +got):\n%s", diff)
			}
			manifestPod := chartDig(t, chartReadManifest(t, testbed.ThickManifest).get(t, "DaemonSet kube-system/kube-multus-ds"), "spec", "template", "spec")
			if diff := cmp.Diff(chartDig(t, manifestPod, "initContainers", 0, "resources"), chartDig(t, pod, "initContainers", 0, "resources")); diff != "" {
				t.Errorf("the installer's resources changed with the daemon's (-manifest +chart):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]any{"kubernetes.io/os": "linux"}, chartDig(t, pod, "nodeSelector")); diff != "" {
				t.Errorf("nodeSelector (-want +got):\n%s", diff)
			}
			tols := chartDig(t, pod, "tolerations").([]any)
			extra := map[string]any{"key": "example.com/dedicated", "operator": "Equal", "value": "network", "effect": "NoSchedule"}
			if len(tols) != 3 || !cmp.Equal(tols[2], extra) {
				t.Errorf("tolerations %v, want the manifest's two and %v", tols, extra)
			}
			wantPorts := []any{map[string]any{"name": "metrics", "containerPort": 9091.0, "protocol": "TCP"}}
			if diff := cmp.Diff(wantPorts, chartDig(t, daemon, "ports")); diff != "" {
				t.Errorf("daemon ports (-want +got):\n%s", diff)
			}
		},
	}
}

// chartServiceMonitorCase: a Service over the daemon pods' metrics port and a
// ServiceMonitor that scrapes it.
func chartServiceMonitorCase() chartValueCase {
	const values = `
daemonConfig:
  metricsPort: 9100
metrics:
  serviceMonitor:
    enabled: true
    interval: 15s
    scrapeTimeout: 10s
    labels:
      release: prometheus
`
	return chartValueCase{
		name: "thick-servicemonitor", release: "polynet", namespace: "kube-system", values: values, serviceMonitorCRD: true,
		check: func(t *testing.T, objs chartObjects, ns string) {
			ds := objs.get(t, "DaemonSet "+ns+"/kube-multus-ds")
			podLabels := chartDig(t, ds, "spec", "template", "metadata", "labels").(map[string]any)
			daemon := chartDig(t, ds, "spec", "template", "spec", "containers", "name=kube-multus")
			if p := chartDig(t, daemon, "ports", "name=metrics", "containerPort"); p != 9100.0 {
				t.Errorf("the daemon's metrics port is %v, want 9100", p)
			}
			if got := chartDaemonConfig(t, objs, ns)["metricsPort"]; got != 9100.0 {
				t.Errorf("daemon-config.json metricsPort %v, want 9100", got)
			}

			svc := objs.get(t, "Service "+ns+"/multus-metrics")
			selector := chartDig(t, svc, "spec", "selector").(map[string]any)
			if len(selector) == 0 {
				t.Error("the Service selects no pods")
			}
			for k, v := range selector {
				if podLabels[k] != v {
					t.Errorf("the Service's selector %v does not select the DaemonSet's pods (labels %v)", selector, podLabels)
				}
			}
			wantPorts := []any{map[string]any{"name": "metrics", "port": 9100.0, "targetPort": "metrics", "protocol": "TCP"}}
			if diff := cmp.Diff(wantPorts, chartDig(t, svc, "spec", "ports")); diff != "" {
				t.Errorf("Service ports (-want +got):\n%s", diff)
			}

			sm := objs.get(t, "ServiceMonitor "+ns+"/multus")
			if sm["apiVersion"] != "monitoring.coreos.com/v1" {
				t.Errorf("ServiceMonitor apiVersion %v", sm["apiVersion"])
			}
			if l := chartDig(t, sm, "metadata", "labels", "release"); l != "prometheus" {
				t.Errorf("ServiceMonitor label release=%v, want prometheus", l)
			}
			svcLabels := chartDig(t, svc, "metadata", "labels").(map[string]any)
			for k, v := range chartDig(t, sm, "spec", "selector", "matchLabels").(map[string]any) {
				if svcLabels[k] != v {
					t.Errorf("the ServiceMonitor's selector label %s=%v does not select the Service (labels %v)", k, v, svcLabels)
				}
			}
			if diff := cmp.Diff([]any{ns}, chartDig(t, sm, "spec", "namespaceSelector", "matchNames")); diff != "" {
				t.Errorf("ServiceMonitor namespaces (-want +got):\n%s", diff)
			}
			wantEndpoints := []any{map[string]any{"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}}
			if diff := cmp.Diff(wantEndpoints, chartDig(t, sm, "spec", "endpoints")); diff != "" {
				t.Errorf("ServiceMonitor endpoints (-want +got):\n%s", diff)
			}
		},
	}
}

// chartThinFlagsCase: thin_entrypoint gets the flags set, in its own order,
// after the manifest's three; the probes get the ones they read.
func chartThinFlagsCase() chartValueCase {
	const values = `
mode: thin
thin:
  namespaceIsolation: true
  globalNamespaces: default,shared-networks
  multusLogLevel: verbose
  cleanupConfigOnExit: true
  readinessIndicatorFile: /run/flannel/subnet.env
  multusKubeconfigFileHost: /etc/cni/net.d/multus.d/polynet.kubeconfig
  extraArgs: ["--skip-config-watch"]
`
	return chartValueCase{
		name: "thin-flags", release: "polynet", namespace: "kube-system", values: values,
		check: func(t *testing.T, objs chartObjects, ns string) {
			args, o := chartThinArgs(t, objs, ns)
			want := []string{
				"--multus-conf-file=auto", "--multus-autoconfig-dir=/host/etc/cni/net.d", "--cni-conf-dir=/host/etc/cni/net.d",
				"--multus-kubeconfig-file-host=/etc/cni/net.d/multus.d/polynet.kubeconfig",
				"--namespace-isolation=true", "--global-namespaces=default,shared-networks", "--multus-log-level=verbose",
				"--cleanup-config-on-exit=true", "--readiness-indicator-file=/run/flannel/subnet.env", "--skip-config-watch",
			}
			if diff := cmp.Diff(want, args); diff != "" {
				t.Errorf("thin_entrypoint's arguments (-want +got):\n%s", diff)
			}
			if !o.NamespaceIsolation || o.GlobalNamespaces != "default,shared-networks" || o.LogLevel != "verbose" ||
				!o.CleanupConfigOnExit || o.ReadinessIndicator != "/run/flannel/subnet.env" || !o.SkipConfigWatch {
				t.Errorf("thin_entrypoint reads the arguments as %+v", o)
			}
			ds := objs.get(t, "DaemonSet "+ns+"/kube-multus-ds")
			wantProbe := []string{"/thin_entrypoint", "--probe", "--multus-conf-file=auto", "--cni-conf-dir=/host/etc/cni/net.d",
				"--multus-kubeconfig-file-host=/etc/cni/net.d/multus.d/polynet.kubeconfig"}
			for _, probe := range []string{"readinessProbe", "livenessProbe"} {
				got := chartStrings(t, chartDig(t, ds, "spec", "template", "spec", "containers", "name=kube-multus", probe, "exec", "command"))
				if diff := cmp.Diff(wantProbe, got); diff != "" {
					t.Errorf("%s (-want +got):\n%s", probe, diff)
				}
			}
		},
	}
}

// chartOtherNamespaceCase: another namespace and release name, no CRD, and
// Helm's labels on: the objects keep upstream's names, everything namespaced
// and the binding's subject move to the release's namespace, and the labels
// never reach the pods or the selector.
func chartOtherNamespaceCase() chartValueCase {
	return chartValueCase{
		name: "other-namespace-no-crd", release: "net", values: "crd:\n  install: false\nhelmLabels: true\n",
		check: func(t *testing.T, objs chartObjects, ns string) {
			want := []string{"ClusterRole multus", "ClusterRoleBinding multus", "ConfigMap " + ns + "/multus-daemon-config",
				"DaemonSet " + ns + "/kube-multus-ds", "ServiceAccount " + ns + "/multus"}
			if diff := cmp.Diff(want, objs.keys()); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
			subject := chartDig(t, objs.get(t, "ClusterRoleBinding multus"), "subjects", 0)
			if diff := cmp.Diff(map[string]any{"kind": "ServiceAccount", "name": "multus", "namespace": ns}, subject); diff != "" {
				t.Errorf("binding subject (-want +got):\n%s", diff)
			}
			for _, key := range objs.keys() {
				labels, _ := chartDig(t, objs[key], "metadata").(map[string]any)["labels"].(map[string]any)
				if labels["app.kubernetes.io/managed-by"] != "Helm" || labels["app.kubernetes.io/instance"] != "net" {
					t.Errorf("%s: labels %v, want Helm's standard labels", key, labels)
				}
			}
			ds := objs.get(t, "DaemonSet "+ns+"/kube-multus-ds")
			if diff := cmp.Diff(map[string]any{"name": "multus"}, chartDig(t, ds, "spec", "selector", "matchLabels")); diff != "" {
				t.Errorf("the selector changed with helmLabels (-want +got):\n%s", diff)
			}
			podLabels := map[string]any{"tier": "node", "app": "multus", "name": "multus"}
			if diff := cmp.Diff(podLabels, chartDig(t, ds, "spec", "template", "metadata", "labels")); diff != "" {
				t.Errorf("the pods' labels changed with helmLabels (-want +got):\n%s", diff)
			}
		},
	}
}

// TestChartInvalidValues: values the chart cannot render into a working
// install fail the render with a message that says what to change.
func TestChartInvalidValues(t *testing.T) {
	testbed.Require(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown mode", []string{"--set", "mode=foo"}, `mode must be "thick" or "thin", not "foo"`},
		{"servicemonitor without metricsPort", []string{"--set", "metrics.serviceMonitor.enabled=true"},
			"metrics.serviceMonitor.enabled needs daemonConfig.metricsPort: the daemon serves metrics only on that port"},
		{"servicemonitor in thin mode", []string{"--set", "mode=thin", "--set", "metrics.serviceMonitor.enabled=true", "--set", "daemonConfig.metricsPort=9091"},
			"metrics.serviceMonitor.enabled needs mode: thick: in thin mode no daemon runs on the nodes, so there are no metrics to scrape"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if stderr := chartHelmFails(t, tc.args...); !strings.Contains(stderr, tc.want) {
				t.Errorf("helm template %v failed with\n%s\nwant the message %q", tc.args, stderr, tc.want)
			}
		})
	}
}

// chartCheckNamespaces: every namespaced object is in the release's namespace.
func chartCheckNamespaces(t *testing.T, objs chartObjects, ns string) {
	t.Helper()
	clusterScoped := []string{"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
	for key, obj := range objs {
		got, _ := chartDig(t, obj, "metadata").(map[string]any)["namespace"].(string)
		if slices.Contains(clusterScoped, obj["kind"].(string)) {
			if got != "" {
				t.Errorf("%s: a namespace on a cluster-scoped object", key)
			}
		} else if got != ns {
			t.Errorf("%s: not in the release's namespace %s", key, ns)
		}
	}
}

// chartCheckImages: every container runs image with pullPolicy.
func chartCheckImages(t *testing.T, objs chartObjects, ns, image, pullPolicy string) {
	t.Helper()
	pod := chartDig(t, objs.get(t, "DaemonSet "+ns+"/kube-multus-ds"), "spec", "template", "spec")
	for _, list := range []string{"initContainers", "containers"} {
		for _, c := range chartDig(t, pod, list).([]any) {
			c := c.(map[string]any)
			if c["image"] != image || c["imagePullPolicy"] != pullPolicy {
				t.Errorf("container %v: image %v (%v), want %s (%s)", c["name"], c["image"], c["imagePullPolicy"], image, pullPolicy)
			}
		}
	}
}

// chartDaemonConfig returns the rendered daemon-config.json, which the daemon's
// own parser must accept.
func chartDaemonConfig(t *testing.T, objs chartObjects, ns string) map[string]any {
	t.Helper()
	return chartConfigJSON(t, objs.get(t, "ConfigMap "+ns+"/multus-daemon-config"))
}

// chartManifestDaemonConfig returns the thick manifest's daemon-config.json.
func chartManifestDaemonConfig(t *testing.T) map[string]any {
	t.Helper()
	return chartConfigJSON(t, chartReadManifest(t, testbed.ThickManifest).get(t, "ConfigMap kube-system/multus-daemon-config"))
}

func chartConfigJSON(t *testing.T, cm map[string]any) map[string]any {
	t.Helper()
	raw, _ := chartDig(t, cm, "data", "daemon-config.json").(string)
	if _, err := config.ParseDaemon([]byte(raw)); err != nil {
		t.Errorf("the daemon refuses daemon-config.json: %v\n%s", err, raw)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("daemon-config.json: %v\n%s", err, raw)
	}
	return out
}

// chartThinArgs returns thin_entrypoint's arguments and what its own parser
// makes of them. The probes' commands must parse too, and read the
// configuration and kubeconfig the container writes.
func chartThinArgs(t *testing.T, objs chartObjects, ns string) ([]string, *thinentry.Options) {
	t.Helper()
	c := chartDig(t, objs.get(t, "DaemonSet "+ns+"/kube-multus-ds"), "spec", "template", "spec", "containers", "name=kube-multus")
	if diff := cmp.Diff([]string{"/thin_entrypoint"}, chartStrings(t, chartDig(t, c, "command"))); diff != "" {
		t.Errorf("command (-want +got):\n%s", diff)
	}
	args := chartStrings(t, chartDig(t, c, "args"))
	o, err := thinentry.Parse(args, io.Discard)
	if err != nil {
		t.Fatalf("thin_entrypoint refuses its arguments %q: %v", args, err)
	}
	for _, probe := range []string{"readinessProbe", "livenessProbe"} {
		cmd := chartStrings(t, chartDig(t, c, probe, "exec", "command"))
		if len(cmd) < 2 || cmd[0] != "/thin_entrypoint" || cmd[1] != "--probe" {
			t.Errorf("%s: %q is not thin_entrypoint --probe", probe, cmd)
			continue
		}
		p, err := thinentry.Parse(cmd[1:], io.Discard)
		if err != nil {
			t.Errorf("%s: thin_entrypoint refuses %q: %v", probe, cmd, err)
			continue
		}
		read := func(o *thinentry.Options) []any {
			return []any{o.MultusConfFile, o.CNIConfDir, o.KubeconfigHost, o.SkipTLSVerify, o.ServiceAccountDir}
		}
		if diff := cmp.Diff(read(o), read(p)); diff != "" {
			t.Errorf("%s checks other files than the container writes (-container +probe):\n%s", probe, diff)
		}
	}
	return args, o
}
