package testbed

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	nadclient "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func TestDecodeManifest(t *testing.T) {
	tests := []struct {
		name     string
		manifest string
		want     []string // Kind namespace/name of each object
		wantErr  string
	}{
		{name: "empty", manifest: ""},
		{name: "only separators and comments", manifest: "---\n# nothing\n---\n\n---\n"},
		{
			name: "objects between empty and comment-only documents",
			manifest: "# Source: chart/templates/a.yaml\n---\n" +
				"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: x\n---\n---\n" +
				"# Source: chart/templates/b.yaml\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: b\n",
			want: []string{"ConfigMap x/a", "ServiceAccount b"},
		},
		{
			name: "a List is applied item by item",
			manifest: "apiVersion: v1\nkind: List\nitems:\n" +
				"- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: a\n" +
				"- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: b\n",
			want: []string{"ConfigMap a", "Secret b"},
		},
		{
			// The kind is checked when the object is applied, so that the
			// others are still tried.
			name:     "no kind",
			manifest: "metadata:\n  name: a\n",
			want:     []string{"<no kind> a"},
		},
		{name: "not YAML", manifest: "a: b\n---\nkind: [\n", wantErr: "manifest document 2"},
		{name: "not an object", manifest: "- a\n- b\n", wantErr: "manifest document 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := decodeManifest([]byte(tt.manifest))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("decodeManifest error %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, objectRef(o))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
		})
	}
}

// The objects of these tests live in namespaces every API server has, so the tests
// create nothing, and their names are unique to them, so that the checks that
// nothing was created cannot meet another test's objects.
const (
	validManifest = `# A comment-only document, as helm template writes them.
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: polynet-apply-cm
data:
  key: value
---
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: polynet-apply-sa
  namespace: kube-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: polynet-apply-role
rules:
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get"]
---
# A custom resource: the control plane serves the NAD CRD.
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: polynet-apply-nad
  namespace: kube-system
spec:
  config: '{"cniVersion": "1.0.0", "name": "n", "type": "bridge"}'
`

	// daemonSetTemplate is a valid DaemonSet but for what %s adds to its pod spec.
	daemonSetTemplate = `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: polynet-apply-ds
  namespace: kube-system
spec:
  selector:
    matchLabels: {app: polynet-apply}
  template:
    metadata:
      labels: {app: polynet-apply}
    spec:
%s      containers:
      - name: app
        image: registry.k8s.io/pause:3.10
`
)

// daemonSet returns daemonSetTemplate with podSpec added to its pod spec.
func daemonSet(podSpec string) string {
	return fmt.Sprintf(daemonSetTemplate, podSpec)
}

func TestApplyDryRun(t *testing.T) {
	Require(t)
	cp := SharedControlPlane(t)
	tests := []struct {
		name     string
		manifest string
		// wantErr are the texts the error must hold; none means no error.
		wantErr []string
		// wantWarnings are the texts, in order, each warning must hold.
		wantWarnings []string
	}{
		{name: "valid objects", manifest: validManifest},
		{
			name:     "unknown field in a DaemonSet",
			manifest: strings.Replace(daemonSet(""), "  template:", "  templat:", 1),
			wantErr:  []string{"DaemonSet kube-system/polynet-apply-ds:", "templat"},
		},
		{
			name:     "unknown field in metadata, default namespace",
			manifest: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: polynet-apply-typo\n  lables: {a: b}\n",
			wantErr:  []string{"ConfigMap default/polynet-apply-typo:", "lables"},
		},
		{
			name:     "unknown kind",
			manifest: "apiVersion: polynet.test/v1\nkind: Gizmo\nmetadata:\n  name: polynet-apply-gizmo\n",
			wantErr:  []string{"Gizmo polynet-apply-gizmo:", `"Gizmo"`},
		},
		{
			name:     "namespace of a cluster-scoped object dropped",
			manifest: "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: polynet-apply-role\n  namespace: default\nrulez: []\n",
			wantErr:  []string{"ClusterRole polynet-apply-role:", "rulez"},
		},
		{
			name:     "no kind",
			manifest: "apiVersion: v1\nmetadata:\n  name: polynet-apply-nokind\n",
			wantErr:  []string{"<no kind> polynet-apply-nokind:", "kind"},
		},
		{
			name:     "no name",
			manifest: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: polynet-apply-\n",
			wantErr:  []string{"ConfigMap <no name>:", "metadata.name"},
		},
		{
			name:     "missing namespace",
			manifest: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: polynet-apply-cm\n  namespace: polynet-no-such-namespace\n",
			wantErr:  []string{"ConfigMap polynet-no-such-namespace/polynet-apply-cm:", "not found"},
		},
		{
			name:     "invalid value",
			manifest: "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: Not_A_Name\n",
			wantErr:  []string{"ServiceAccount default/Not_A_Name:", "Invalid value"},
		},
		{
			name: "every failure is reported, valid objects between them pass",
			manifest: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: polynet-apply-a\n  lables: {}\n---\n" +
				validManifest + "\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: polynet-apply-b\nstringDatta: {}\n",
			wantErr: []string{"ConfigMap default/polynet-apply-a:", "Secret default/polynet-apply-b:", "stringDatta"},
		},
		{
			name:     "deprecated node label in a pod template",
			manifest: daemonSet("      nodeSelector:\n        beta.kubernetes.io/os: linux\n"),
			wantWarnings: []string{
				"DaemonSet kube-system/polynet-apply-ds: spec.template.spec.nodeSelector[beta.kubernetes.io/os]: deprecated",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			warnings, err := ApplyDryRun(ctx, cp.AdminConfig(), []byte(tt.manifest))
			t.Logf("error: %v\nwarnings: %q", err, warnings)
			switch {
			case len(tt.wantErr) == 0 && err != nil:
				t.Errorf("ApplyDryRun: %v\nmanifest:\n%s", err, tt.manifest)
			case len(tt.wantErr) > 0 && err == nil:
				t.Errorf("ApplyDryRun succeeded, want an error with %q\nmanifest:\n%s", tt.wantErr, tt.manifest)
			case err != nil:
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("ApplyDryRun error lacks %q:\n%v", w, err)
					}
				}
			}
			if len(warnings) != len(tt.wantWarnings) {
				t.Fatalf("ApplyDryRun warned %q, want %d warnings with %q", warnings, len(tt.wantWarnings), tt.wantWarnings)
			}
			for i, w := range tt.wantWarnings {
				if !strings.HasPrefix(warnings[i], w) {
					t.Errorf("warning %d is %q, want it to start with %q", i, warnings[i], w)
				}
			}
		})
	}
	// A dry run persists nothing, whatever the outcome was.
	kc, nc := cp.AdminClients(t)
	assertNotCreated(t, kc, nc)
}

// assertNotCreated checks that none of the objects the dry runs named exist.
func assertNotCreated(t *testing.T, kc kubernetes.Interface, nc nadclient.Interface) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	get := map[string]func() error{
		"ConfigMap default/polynet-apply-cm": func() error {
			_, err := kc.CoreV1().ConfigMaps("default").Get(ctx, "polynet-apply-cm", metav1.GetOptions{})
			return err
		},
		"ServiceAccount kube-system/polynet-apply-sa": func() error {
			_, err := kc.CoreV1().ServiceAccounts("kube-system").Get(ctx, "polynet-apply-sa", metav1.GetOptions{})
			return err
		},
		"ClusterRole polynet-apply-role": func() error {
			_, err := kc.RbacV1().ClusterRoles().Get(ctx, "polynet-apply-role", metav1.GetOptions{})
			return err
		},
		"NetworkAttachmentDefinition kube-system/polynet-apply-nad": func() error {
			_, err := nc.K8sCniCncfIoV1().NetworkAttachmentDefinitions("kube-system").Get(ctx, "polynet-apply-nad", metav1.GetOptions{})
			return err
		},
		"DaemonSet kube-system/polynet-apply-ds": func() error {
			_, err := kc.AppsV1().DaemonSets("kube-system").Get(ctx, "polynet-apply-ds", metav1.GetOptions{})
			return err
		},
	}
	for ref, f := range get {
		if err := f(); !apierrors.IsNotFound(err) {
			t.Errorf("after dry runs, getting %s: %v; want not found", ref, err)
		}
	}
}
