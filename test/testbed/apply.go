package testbed

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"
)

// ApplyFieldManager is the field manager of ApplyDryRun's apply requests.
const ApplyFieldManager = "polynet-test"

// ApplyDryRun sends every object of a multi-document YAML manifest to the API server
// as a server-side apply with dryRun=All and fieldValidation=Strict, so the server
// validates, defaults and admits each one exactly as `kubectl apply --server-side`
// would, and persists nothing. Empty and comments-only documents are skipped, and a
// v1 List is applied item by item.
//
// It returns every warning the server sent, each prefixed with "Kind namespace/name:"
// ("Kind name:" for cluster-scoped objects), and an error that names each object the
// server refused, whose kind it does not serve, or that could not be read. It tries
// every object even after a failure, so one call reports all of them. Callers fail on
// a warning as on an error.
//
// A namespaced object without metadata.namespace goes to "default"; a namespace on
// a cluster-scoped object is ignored. Because nothing is persisted, each object is
// checked against the cluster as it is: a Namespace or CRD in the manifest does not
// make the objects after it valid, so a test creates those first.
func ApplyDryRun(ctx context.Context, cfg *rest.Config, manifest []byte) (warnings []string, err error) {
	objs, err := decodeManifest(manifest)
	if err != nil {
		return nil, err
	}
	a, err := newDryApplier(cfg)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, obj := range objs {
		if err := a.apply(ctx, obj); err != nil {
			errs = append(errs, err)
		}
	}
	return a.warnings.all(), errors.Join(errs...)
}

// decodeManifest splits a YAML stream into objects, skipping documents that hold
// nothing but comments or whitespace.
func decodeManifest(manifest []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifest)))
	var objs []*unstructured.Unstructured
	for doc := 1; ; doc++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("manifest document %d: %w", doc, err)
		}
		js, err := yaml.YAMLToJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("manifest document %d: %w", doc, err)
		}
		if t := bytes.TrimSpace(js); len(t) == 0 || bytes.Equal(t, []byte("null")) {
			continue
		}
		// A plain map, not Unstructured's decoder: an object without a kind is
		// reported by name when it is applied, with the others still tried.
		var content map[string]any
		if err := json.Unmarshal(js, &content); err != nil {
			return nil, fmt.Errorf("manifest document %d: not a Kubernetes object: %w", doc, err)
		}
		obj := &unstructured.Unstructured{Object: content}
		if !obj.IsList() {
			objs = append(objs, obj)
			continue
		}
		list, err := obj.ToList()
		if err != nil {
			return nil, fmt.Errorf("manifest document %d: %w", doc, err)
		}
		for i := range list.Items {
			objs = append(objs, &list.Items[i])
		}
	}
}

// dryApplier holds the clients of one ApplyDryRun call.
type dryApplier struct {
	client   dynamic.Interface
	mapper   *restmapper.DeferredDiscoveryRESTMapper
	warnings *warningCollector
}

func newDryApplier(cfg *rest.Config) (*dryApplier, error) {
	wc := &warningCollector{}
	c := rest.CopyConfig(cfg)
	// A handler of our own on a copy: the process-wide default handler would only
	// log the warnings, and other clients of cfg keep theirs.
	c.WarningHandler = nil
	c.WarningHandlerWithContext = wc
	dc, err := discovery.NewDiscoveryClientForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	client, err := dynamic.NewForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	return &dryApplier{client: client, mapper: mapper, warnings: wc}, nil
}

// apply dry-runs one object and attributes the server's warnings to it.
func (a *dryApplier) apply(ctx context.Context, obj *unstructured.Unstructured) error {
	gvk := obj.GroupVersionKind()
	if gvk.Kind == "" || gvk.Version == "" {
		return fmt.Errorf("%s: apiVersion and kind are required", objectRef(obj))
	}
	if obj.GetName() == "" {
		return fmt.Errorf("%s: metadata.name is required (server-side apply cannot use generateName)", objectRef(obj))
	}
	mapping, err := a.mapping(obj)
	if err != nil {
		return err
	}
	ri := a.client.Resource(mapping.Resource)
	var target dynamic.ResourceInterface = ri
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			obj.SetNamespace(metav1.NamespaceDefault)
		}
		target = ri.Namespace(obj.GetNamespace())
	} else {
		// A namespace means nothing on a cluster-scoped object: drop it, as
		// kubectl does, so that messages name the object as the server knows it.
		obj.SetNamespace("")
	}
	body, err := obj.MarshalJSON()
	if err != nil {
		return fmt.Errorf("%s: %w", objectRef(obj), err)
	}
	force := true
	opts := metav1.PatchOptions{
		DryRun:          []string{metav1.DryRunAll},
		Force:           &force,
		FieldManager:    ApplyFieldManager,
		FieldValidation: metav1.FieldValidationStrict,
	}
	ctx = context.WithValue(ctx, warningPrefixKey{}, objectRef(obj))
	if _, err := target.Patch(ctx, obj.GetName(), types.ApplyPatchType, body, opts); err != nil {
		return fmt.Errorf("%s: %w", objectRef(obj), err)
	}
	return nil
}

// mapping finds the resource of obj's kind. Discovery is cached for the call; a
// kind it does not know makes it ask the server once more, in case the kind was
// added (a CRD established) since. Discovery requests carry no object in their
// context, so their warnings, if any, are reported as "discovery: ...".
func (a *dryApplier) mapping(obj *unstructured.Unstructured) (*meta.RESTMapping, error) {
	gvk := obj.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		a.mapper.Reset()
		m, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: kind %s is not served by the API server: %w", objectRef(obj), gvk, err)
	}
	return m, nil
}

// objectRef names an object as "Kind namespace/name", or "Kind name" without a
// namespace.
func objectRef(obj *unstructured.Unstructured) string {
	kind := obj.GetKind()
	if kind == "" {
		kind = "<no kind>"
	}
	name := obj.GetName()
	if name == "" {
		name = "<no name>"
	}
	if ns := obj.GetNamespace(); ns != "" {
		return kind + " " + ns + "/" + name
	}
	return kind + " " + name
}

// warningPrefixKey keys the name of the object a request is about in its context,
// so the warning handler can attribute each warning.
type warningPrefixKey struct{}

// warningCollector is a rest.WarningHandlerWithContext that keeps every warning,
// prefixed with the object its request was about.
type warningCollector struct {
	mu   sync.Mutex
	list []string
}

func (w *warningCollector) HandleWarningHeaderWithContext(ctx context.Context, code int, _ string, text string) {
	// 299 is the only code the API server uses; others are not warnings about the
	// request (RFC 7234 caching warnings).
	if code != 299 || text == "" {
		return
	}
	prefix, ok := ctx.Value(warningPrefixKey{}).(string)
	if !ok {
		prefix = "discovery"
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, prefix+": "+text)
}

func (w *warningCollector) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.list...)
}
