package deploy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/polynet-cni/polynet/test/testbed"
)

// chartPath is the chart, relative to the module root.
const chartPath = "charts/polynet"

// chartObjects are the objects of a rendered chart or a manifest, by
// "Kind namespace/name" ("Kind name" when cluster-scoped).
type chartObjects map[string]map[string]any

// chartDir is the chart's folder.
func chartDir(t *testing.T) string {
	t.Helper()
	bed, err := testbed.Load()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(bed.Root, chartPath)
}

// chartRender renders the chart with the test bed's helm and splits the result.
func chartRender(t *testing.T, release, namespace string, args ...string) chartObjects {
	t.Helper()
	return chartSplit(t, "helm template", testbed.HelmTemplate(t, chartDir(t), release, namespace, args...))
}

// chartReadManifest reads and splits a manifest of deployments/.
func chartReadManifest(t *testing.T, file string) chartObjects {
	t.Helper()
	bed, err := testbed.Load()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(bed.Root, file))
	if err != nil {
		t.Fatal(err)
	}
	return chartSplit(t, file, data)
}

// chartSplit splits a multi-document YAML stream into objects, skipping empty
// and comments-only documents. A document that is not an object with a kind
// and a name, or an object twice, fails the test.
func chartSplit(t *testing.T, what string, stream []byte) chartObjects {
	t.Helper()
	out := chartObjects{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	for doc := 1; ; doc++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", what, doc, err)
		}
		var obj map[string]any
		if err := yaml.Unmarshal(raw, &obj); err != nil {
			t.Fatalf("%s: document %d: %v\n%s", what, doc, err, raw)
		}
		if len(obj) == 0 {
			continue
		}
		key := chartKey(obj)
		if _, dup := out[key]; dup {
			t.Fatalf("%s: %s twice", what, key)
		}
		out[key] = obj
	}
}

// chartKey names an object as "Kind namespace/name".
func chartKey(obj map[string]any) string {
	kind, _ := obj["kind"].(string)
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	ns, _ := meta["namespace"].(string)
	return kind + " " + path.Join(ns, name)
}

// keys returns the objects' keys, sorted.
func (o chartObjects) keys() []string {
	var ks []string
	for k := range o {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// get returns one object, failing the test when there is none.
func (o chartObjects) get(t *testing.T, key string) map[string]any {
	t.Helper()
	obj, ok := o[key]
	if !ok {
		t.Fatalf("no %s; the objects are %v", key, o.keys())
	}
	return obj
}

// chartParseConfigJSON replaces the value of every ConfigMap data key that ends
// in .json with the JSON it holds, so that two ConfigMaps compare as JSON
// rather than as text.
func chartParseConfigJSON(t *testing.T, objs chartObjects) {
	t.Helper()
	for key, obj := range objs {
		if obj["kind"] != "ConfigMap" {
			continue
		}
		data, _ := obj["data"].(map[string]any)
		for k, v := range data {
			s, ok := v.(string)
			if !ok || !strings.HasSuffix(k, ".json") {
				continue
			}
			var parsed any
			if err := json.Unmarshal([]byte(s), &parsed); err != nil {
				t.Errorf("%s: %s is not JSON: %v\n%s", key, k, err, s)
				continue
			}
			data[k] = parsed
		}
	}
}

// chartDig walks obj along path: a string indexes a map, an int a list, and a
// string of the form "name=x" the list item whose name is x. It fails the test
// when a step is missing.
func chartDig(t *testing.T, obj any, steps ...any) any {
	t.Helper()
	cur := obj
	for i, step := range steps {
		switch s := step.(type) {
		case int:
			l, ok := cur.([]any)
			if !ok || s >= len(l) {
				t.Fatalf("%v: no item %d at step %d", steps, s, i)
			}
			cur = l[s]
		case string:
			if name, ok := strings.CutPrefix(s, "name="); ok {
				l, _ := cur.([]any)
				idx := slices.IndexFunc(l, func(item any) bool {
					m, _ := item.(map[string]any)
					return m["name"] == name
				})
				if idx < 0 {
					t.Fatalf("%v: no item named %q at step %d", steps, name, i)
				}
				cur = l[idx]
				continue
			}
			m, ok := cur.(map[string]any)
			if !ok {
				t.Fatalf("%v: not a map at step %d", steps, i)
			}
			if cur, ok = m[s]; !ok {
				t.Fatalf("%v: no key %q at step %d", steps, s, i)
			}
		}
	}
	return cur
}

// chartStrings converts a YAML list of strings.
func chartStrings(t *testing.T, v any) []string {
	t.Helper()
	l, ok := v.([]any)
	if !ok {
		t.Fatalf("%v is not a list", v)
	}
	out := make([]string, len(l))
	for i, item := range l {
		if out[i], ok = item.(string); !ok {
			t.Fatalf("item %d of %v is not a string", i, v)
		}
	}
	return out
}

// chartWriteFile writes content to a file of that name in a temporary folder
// of the test, and returns its path: a values file for `helm template -f`, or
// a manifest.
func chartWriteFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// chartHelmFails runs `helm template` expecting it to fail, and returns its
// stderr. helm runs in a home of its own, as testbed.HelmTemplate runs it.
func chartHelmFails(t *testing.T, args ...string) string {
	t.Helper()
	bed, err := testbed.Load()
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := append([]string{"template", "polynet", chartDir(t), "--namespace", "kube-system"}, args...)
	cmd := exec.CommandContext(ctx, bed.Helm(), full...)
	cmd.Env = []string{
		"HOME=" + home, "PATH=" + os.Getenv("PATH"),
		"XDG_CACHE_HOME=" + filepath.Join(home, "cache"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
		"XDG_DATA_HOME=" + filepath.Join(home, "data"),
		"KUBECONFIG=" + filepath.Join(home, "kubeconfig"),
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err == nil {
		t.Fatalf("helm %s succeeded, want a failure; it rendered:\n%s", strings.Join(full, " "), stdout.String())
	}
	return stderr.String()
}

// chartNamespace creates a namespace with a name of its own for one test, and
// deletes it when the test ends. No namespace controller runs in the test bed,
// so the cleanup finalizes the (empty) namespace itself, as that controller
// would, and waits until it is gone.
func chartNamespace(t *testing.T, kc kubernetes.Interface) string {
	t.Helper()
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatal(err)
	}
	name := "polynet-chart-" + hex.EncodeToString(suffix)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := chartDeleteNamespace(ctx, kc, name); err != nil {
			t.Errorf("deleting namespace %s: %v", name, err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	testbed.CreateNamespace(ctx, t, kc, name)
	return name
}

func chartDeleteNamespace(ctx context.Context, kc kubernetes.Interface, name string) error {
	nsc := kc.CoreV1().Namespaces()
	if err := nsc.Delete(ctx, name, metav1.DeleteOptions{}); apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		ns, err := nsc.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, nil // transient; retried until the bound
		}
		if len(ns.Spec.Finalizers) > 0 {
			ns.Spec.Finalizers = nil
			if _, err := nsc.Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				return false, err
			}
		}
		// A terminating namespace without finalizers is removed by a second
		// delete, as the namespace controller does.
		if err := nsc.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return false, err
		}
		return false, nil
	})
}

// chartServiceMonitorCRD is a minimal Prometheus Operator ServiceMonitor CRD:
// the kind, served, with any content.
const chartServiceMonitorCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names:
    plural: servicemonitors
    singular: servicemonitor
    kind: ServiceMonitor
    listKind: ServiceMonitorList
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
`

// chartInstallServiceMonitorCRD installs chartServiceMonitorCRD for real, waits
// until it is established and served, and removes it (waiting until it is
// gone) when the test ends.
func chartInstallServiceMonitorCRD(t *testing.T, cfg *rest.Config) {
	t.Helper()
	const name = "servicemonitors.monitoring.coreos.com"
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rc := kc.Discovery().RESTClient()
	crdURL := "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/" + name
	// Registered first, so that a CRD created by a failing install goes too.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := rc.Delete().AbsPath(crdURL).Do(ctx).Error(); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting CRD %s: %v", name, err)
			return
		}
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			err := rc.Get().AbsPath(crdURL).Do(ctx).Error()
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			t.Errorf("CRD %s still there after its deletion: %v", name, err)
		}
	})
	file := chartWriteFile(t, "servicemonitor-crd.yaml", chartServiceMonitorCRD)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := testbed.InstallCRD(ctx, cfg, file); err != nil {
		t.Fatal(err)
	}
}
