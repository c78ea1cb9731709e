package deploy

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/setup/thinentry"
	"github.com/polynet-cni/polynet/test/testbed"
)

// manifests are the files operators apply, by mode.
var manifests = map[string]string{"thick": testbed.ThickManifest, "thin": testbed.ThinManifest}

// TestManifestsDryRun applies every manifest to the real API server with a
// server-side dry-run and strict field validation: any error or warning fails.
func TestManifestsDryRun(t *testing.T) {
	bed := testbed.Require(t)
	cp := testbed.SharedControlPlane(t)
	for mode, file := range manifests {
		t.Run(mode, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(bed.Root, file))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			warnings, err := testbed.ApplyDryRun(ctx, cp.AdminConfig(), data)
			if err != nil {
				t.Errorf("%s: %v", file, err)
			}
			for _, w := range warnings {
				t.Errorf("%s: warning: %s", file, w)
			}
		})
	}
}

// objects are a manifest's documents by "Kind namespace/name".
type objects map[string][]byte

// readObjects reads a manifest of deployments/ with the chart tests' splitter,
// each object kept as JSON for a strict, typed decode.
func readObjects(t *testing.T, file string) objects {
	t.Helper()
	out := objects{}
	for key, obj := range chartReadManifest(t, file) {
		data, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		out[key] = data
	}
	return out
}

func (o objects) decode(t *testing.T, key string, into any) {
	t.Helper()
	doc, ok := o[key]
	if !ok {
		t.Fatalf("no %s", key)
	}
	if err := yaml.UnmarshalStrict(doc, into); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
}

// TestManifestsDropIn: the objects carry upstream Multus' kinds, names,
// namespace, ConfigMap keys, labels and image paths, so that `kubectl apply`
// over an upstream install replaces it in place; the CRD is the one the test
// bed installs; the ClusterRoles grant nothing beyond what the code uses.
func TestManifestsDropIn(t *testing.T) {
	want := map[string][]string{
		"thick": {"CustomResourceDefinition network-attachment-definitions.k8s.cni.cncf.io", "ClusterRole multus",
			"ClusterRoleBinding multus", "ServiceAccount kube-system/multus", "ConfigMap kube-system/multus-daemon-config",
			"DaemonSet kube-system/kube-multus-ds"},
		"thin": {"CustomResourceDefinition network-attachment-definitions.k8s.cni.cncf.io", "ClusterRole multus",
			"ClusterRoleBinding multus", "ServiceAccount kube-system/multus", "ConfigMap kube-system/multus-cni-config",
			"DaemonSet kube-system/kube-multus-ds"},
	}
	crd := readObjects(t, "deployments/crd-network-attachment-definition.yaml")
	for mode, file := range manifests {
		t.Run(mode, func(t *testing.T) {
			objs := readObjects(t, file)
			var keys []string
			for k := range objs {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			w := slices.Clone(want[mode])
			slices.Sort(w)
			if diff := cmp.Diff(w, keys); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
			const crdKey = "CustomResourceDefinition network-attachment-definitions.k8s.cni.cncf.io"
			var a, b map[string]any
			objs.decode(t, crdKey, &a)
			crd.decode(t, crdKey, &b)
			if diff := cmp.Diff(b, a); diff != "" {
				t.Errorf("the CRD differs from crd-network-attachment-definition.yaml (-file +manifest):\n%s", diff)
			}

			var role rbacv1.ClusterRole
			objs.decode(t, "ClusterRole multus", &role)
			for _, r := range role.Rules {
				for _, s := range slices.Concat(r.Verbs, r.Resources, r.APIGroups) {
					if s == "*" {
						t.Errorf("rule %+v grants a wildcard", r)
					}
				}
				if slices.ContainsFunc(r.Verbs, func(v string) bool { return v == "update" || v == "delete" || v == "deletecollection" }) {
					t.Errorf("rule %+v grants a verb the code never uses", r)
				}
			}
			var binding rbacv1.ClusterRoleBinding
			objs.decode(t, "ClusterRoleBinding multus", &binding)
			if binding.RoleRef.Name != "multus" || len(binding.Subjects) != 1 ||
				binding.Subjects[0] != (rbacv1.Subject{Kind: "ServiceAccount", Name: "multus", Namespace: "kube-system"}) {
				t.Errorf("binding %+v does not bind kube-system/multus to multus", binding)
			}

			var ds appsv1.DaemonSet
			objs.decode(t, "DaemonSet kube-system/kube-multus-ds", &ds)
			for k, v := range map[string]string{"tier": "node", "app": "multus", "name": "multus"} {
				if ds.Labels[k] != v || ds.Spec.Template.Labels[k] != v {
					t.Errorf("label %s=%s missing on the DaemonSet or its pods", k, v)
				}
			}
			if ds.Spec.Selector.MatchLabels["name"] != "multus" {
				t.Errorf("selector %v, want upstream's name=multus (a selector cannot change in place)", ds.Spec.Selector)
			}
			checkNodeAgent(t, &ds.Spec.Template.Spec)
		})
	}
}

// checkNodeAgent checks what every node agent of ours needs, in both modes.
func checkNodeAgent(t *testing.T, pod *corev1.PodSpec) {
	t.Helper()
	if !pod.HostNetwork {
		t.Error("not hostNetwork: it could not start before the node has a pod network")
	}
	if pod.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName %q", pod.PriorityClassName)
	}
	tolerates := map[corev1.TaintEffect]bool{}
	for _, tol := range pod.Tolerations {
		if tol.Operator == corev1.TolerationOpExists && tol.Key == "" {
			tolerates[tol.Effect] = true
		}
	}
	if !tolerates[corev1.TaintEffectNoSchedule] || !tolerates[corev1.TaintEffectNoExecute] {
		t.Errorf("tolerations %+v: it must run on a node that is not ready yet (node.kubernetes.io/not-ready)", pod.Tolerations)
	}
	if len(pod.InitContainers) != 1 {
		t.Fatalf("init containers %+v, want install_multus", pod.InitContainers)
	}
	init := pod.InitContainers[0]
	if sc := init.SecurityContext; sc == nil || (sc.Privileged != nil && *sc.Privileged) || sc.Capabilities == nil ||
		!slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("the installer runs with privileges it does not need: %+v", init.SecurityContext)
	}
	for _, c := range append(pod.InitContainers, pod.Containers...) {
		if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("container %s has no memory request or limit", c.Name)
		}
		if !strings.HasPrefix(c.Image, "ghcr.io/polynet-cni/polynet:") || strings.HasSuffix(c.Image, ":latest") {
			t.Errorf("container %s image %q", c.Name, c.Image)
		}
	}
	if pod.Containers[0].ReadinessProbe == nil || pod.Containers[0].LivenessProbe == nil {
		t.Error("the main container has no readiness or liveness probe")
	}
}

// TestThickManifestConsistent reads the thick DaemonSet as the daemon will
// live in it: its daemon-config.json parses with the daemon's own parser, the
// socket the daemon opens is where the shim on the host dials by default,
// every path the daemon and its defaults use is mounted from the host, the
// probes ask the daemon with the same configuration, and the grace period
// covers shutdownTimeout.
func TestThickManifestConsistent(t *testing.T) {
	objs := readObjects(t, testbed.ThickManifest)
	var cm corev1.ConfigMap
	objs.decode(t, "ConfigMap kube-system/multus-daemon-config", &cm)
	conf, err := config.ParseDaemon([]byte(cm.Data["daemon-config.json"]))
	if err != nil {
		t.Fatalf("daemon-config.json: %v", err)
	}
	var ds appsv1.DaemonSet
	objs.decode(t, "DaemonSet kube-system/kube-multus-ds", &ds)
	pod := ds.Spec.Template.Spec
	daemon := pod.Containers[0]
	if daemon.Command[0] != "/usr/src/multus-cni/bin/multus-daemon" {
		t.Errorf("daemon command %v: upstream's path is /usr/src/multus-cni/bin/multus-daemon", daemon.Command)
	}
	host := hostPaths(t, pod, daemon)
	if got := host(conf.SocketDir); filepath.Clean(got) != filepath.Clean(config.DefaultDaemonSocketDir) {
		t.Errorf("socketDir %s is %q on the host; the shim dials %s", conf.SocketDir, got, config.DefaultDaemonSocketDir)
	}
	if got := host(conf.ChrootDir); got != "/" {
		t.Errorf("chrootDir %s is %q on the host, want /", conf.ChrootDir, got)
	}
	for key, p := range map[string]string{
		"cniConfigDir": conf.CNIConfigDir, "multusAutoconfigDir": conf.MultusAutoconfigDir,
		"cniDir (default)": config.DefaultCNIDir, "confDir (default)": config.DefaultConfDir,
		"deviceInfoDir (default)": config.DefaultDeviceInfoDir, "podResourcesSocket (default)": config.DefaultPodResourcesSocket,
		"kubeletCheckpoint (default)": config.DefaultKubeletCheckpoint, "pod netns (containerd)": "/var/run/netns/cni-x",
	} {
		if got := host(p); got != hostOwn(p) {
			t.Errorf("%s %s is %q on the host, want the host's own path", key, p, got)
		}
	}
	for _, probe := range []*corev1.Probe{daemon.ReadinessProbe, daemon.LivenessProbe} {
		cmd := probe.Exec.Command
		if cmd[0] != daemon.Command[0] || !slices.Contains(cmd, "-probe") {
			t.Errorf("probe %v does not ask the daemon", cmd)
		}
		if probe.TimeoutSeconds < 5 {
			t.Errorf("probe %v: timeout %ds, below the probe's own 4 s bound", cmd, probe.TimeoutSeconds)
		}
	}
	grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	if grace <= conf.ShutdownTimeout.Duration {
		t.Errorf("terminationGracePeriodSeconds %s does not cover shutdownTimeout %s", grace, conf.ShutdownTimeout)
	}
	if u := ds.Spec.UpdateStrategy.RollingUpdate; u == nil || u.MaxSurge == nil || u.MaxSurge.IntValue() != 0 {
		t.Error("rolling update may surge: two daemons would share a node's socket")
	}
	init := pod.InitContainers[0]
	if !slices.Equal(init.Command, []string{"/usr/src/multus-cni/bin/install_multus", "-d", "/host/opt/cni/bin", "-t", "thick"}) {
		t.Errorf("init command %v", init.Command)
	}
	if got := hostPaths(t, pod, init)("/host/opt/cni/bin"); got != config.DefaultBinDir {
		t.Errorf("the shim is installed into %q on the host, want %s", got, config.DefaultBinDir)
	}
}

// TestThinManifestConsistent: the thin installer's arguments and probes parse
// with its own parser, and the folders they name are the host's.
func TestThinManifestConsistent(t *testing.T) {
	objs := readObjects(t, testbed.ThinManifest)
	var ds appsv1.DaemonSet
	objs.decode(t, "DaemonSet kube-system/kube-multus-ds", &ds)
	pod := ds.Spec.Template.Spec
	c := pod.Containers[0]
	if !slices.Equal(c.Command, []string{"/thin_entrypoint"}) {
		t.Errorf("command %v, want upstream's /thin_entrypoint", c.Command)
	}
	o, err := thinentry.Parse(c.Args, nil)
	if err != nil {
		t.Fatalf("args %v: %v", c.Args, err)
	}
	host := hostPaths(t, pod, c)
	for flag, p := range map[string]string{"--cni-conf-dir": o.CNIConfDir, "--multus-autoconfig-dir": o.AutoconfigDir,
		"--cni-bin-dir": o.CNIBinDir, "--multus-cni-conf-dir": o.MultusCNIConfDir} {
		if got := host(p); got != hostOwn(p) {
			t.Errorf("%s %s is %q on the host", flag, p, got)
		}
	}
	if filepath.Dir(o.KubeconfigHost) != filepath.Join(host(o.CNIConfDir), "multus.d") {
		t.Errorf("the plugin reads its kubeconfig at %s, but it is written to %s/multus.d", o.KubeconfigHost, host(o.CNIConfDir))
	}
	for _, probe := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
		cmd := probe.Exec.Command
		po, err := thinentry.Parse(cmd[1:], nil)
		if err != nil || !po.Probe || cmd[0] != c.Command[0] {
			t.Fatalf("probe %v: %v", cmd, err)
		}
		if po.CNIConfDir != o.CNIConfDir || po.MultusConfFile != o.MultusConfFile || po.KubeconfigHost != o.KubeconfigHost {
			t.Errorf("probe %v looks at other paths than the container writes", cmd)
		}
	}
	init := pod.InitContainers[0]
	if !slices.Equal(append(init.Command, init.Args...), []string{"/install_multus", "--type", "thin"}) {
		t.Errorf("init %v %v", init.Command, init.Args)
	}
	var cm corev1.ConfigMap
	objs.decode(t, "ConfigMap kube-system/multus-cni-config", &cm)
	var conf map[string]any
	if err := json.Unmarshal([]byte(cm.Data["cni-conf.json"]), &conf); err != nil || conf["type"] != "multus" {
		t.Errorf("cni-conf.json: %v %v", conf, err)
	}
}

// hostOwn is the host's own path for a path the manifests give: /host/x in a
// container is the host's /x, and /var/run is /run.
func hostOwn(p string) string {
	p = filepath.Clean(p)
	p = strings.Replace(p, "/host/", "/", 1)
	if strings.HasPrefix(p, "/var/run/") {
		p = "/run/" + strings.TrimPrefix(p, "/var/run/")
	}
	return p
}

// hostPaths returns a function that maps a path in container c to the host
// path its volume mounts, "" when no hostPath volume covers it. /var/run is
// /run in our image.
func hostPaths(t *testing.T, pod corev1.PodSpec, c corev1.Container) func(string) string {
	t.Helper()
	vols := map[string]string{}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			vols[v.Name] = v.HostPath.Path
		}
	}
	return func(p string) string {
		p = filepath.Clean(p)
		if strings.HasPrefix(p, "/var/run/") {
			p = "/run/" + strings.TrimPrefix(p, "/var/run/")
		}
		best, out := "", ""
		for _, m := range c.VolumeMounts {
			hp, ok := vols[m.Name]
			if !ok {
				continue
			}
			mp := filepath.Clean(m.MountPath)
			if (p == mp || strings.HasPrefix(p, mp+"/")) && len(mp) > len(best) {
				best, out = mp, filepath.Join(hp, strings.TrimPrefix(p, mp))
			}
		}
		return out
	}
}
