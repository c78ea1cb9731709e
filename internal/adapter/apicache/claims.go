package apicache

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	resourcelisters "k8s.io/client-go/listers/resource/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/polynet-cni/polynet/internal/podnet"
)

// DRAGroupVersion is the Dynamic Resource Allocation API the daemon reads.
const DRAGroupVersion = "resource.k8s.io/v1"

// poolIndex indexes slices by "driver/pool".
const poolIndex = "pool"

// Claims serves pods' ResourceClaims and the node's ResourceSlices from
// informers, for the network devices Dynamic Resource Allocation gives pods.
// Slices are those of this node's devices (spec.nodeName); claims are every
// namespace's (the API has no field to select a node's), each trimmed to its
// allocation's devices and reservations, and to nothing when its allocation
// is for another node, so a large cluster's claims cost little memory. A
// claim the cache lacks, or holds not yet allocated or reserved for the pod,
// costs one live read; so does a pool the cache lacks a device of (a device
// not on the node, or a slice the watch has not delivered yet).
type Claims struct {
	client kubernetes.Interface
	claims resourcelisters.ResourceClaimLister
	slices cache.Indexer
	trim   func(any) (any, error)
	start  func(ctx context.Context)
	synced []cache.InformerSynced
}

// NewClaims builds the informers; nothing is read before Start.
func NewClaims(cfg *rest.Config, nodeName string) (*Claims, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	watchCfg := rest.CopyConfig(cfg)
	watchCfg.Timeout = 0 // the watches stay open for minutes
	watchClient, err := kubernetes.NewForConfig(watchCfg)
	if err != nil {
		return nil, err
	}
	var sliceOpts []informers.SharedInformerOption
	if nodeName != "" {
		sliceOpts = append(sliceOpts, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", nodeName).String()
		}))
	}
	sliceFactory := informers.NewSharedInformerFactoryWithOptions(watchClient, 0, sliceOpts...)
	claimFactory := informers.NewSharedInformerFactory(watchClient, 0)
	sliceInformer := sliceFactory.Resource().V1().ResourceSlices().Informer()
	claimInformer := claimFactory.Resource().V1().ResourceClaims()
	c := &Claims{client: client, claims: claimInformer.Lister(), slices: sliceInformer.GetIndexer(), trim: trimClaim(nodeName)}
	if err := sliceInformer.SetTransform(trimSlice); err != nil {
		return nil, err
	}
	if err := sliceInformer.AddIndexers(cache.Indexers{poolIndex: slicePool}); err != nil {
		return nil, err
	}
	if err := claimInformer.Informer().SetTransform(c.trim); err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{sliceInformer.HasSynced, claimInformer.Informer().HasSynced}
	c.start = func(ctx context.Context) {
		sliceFactory.Start(ctx.Done())
		claimFactory.Start(ctx.Done())
	}
	return c, nil
}

// Start asks the API server whether it serves ResourceClaims and
// ResourceSlices of DRAGroupVersion, and when it does, starts the informers
// and waits until they synced. It reports whether it serves them: an older
// API server does not, and then nothing is started or read again. A failed
// discovery is tried again until timeout.
func (c *Claims) Start(ctx context.Context, timeout time.Duration) (served bool, err error) {
	startCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 2*time.Second) {
		served, err = c.served()
		if err == nil {
			break
		}
		select {
		case <-startCtx.Done():
			return false, fmt.Errorf("discovery of %s: %w", DRAGroupVersion, err)
		case <-time.After(backoff):
		}
	}
	if !served {
		return false, nil
	}
	c.start(ctx) // the informers run until the daemon stops
	if !cache.WaitForCacheSync(startCtx.Done(), c.synced...) {
		return false, fmt.Errorf("ResourceClaim and ResourceSlice caches did not sync within %s", timeout)
	}
	return true, nil
}

func (c *Claims) served() (bool, error) {
	list, err := c.client.Discovery().ServerResourcesForGroupVersion(DRAGroupVersion)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var names []string
	for _, r := range list.APIResources {
		names = append(names, r.Name)
	}
	return slices.Contains(names, "resourceclaims") && slices.Contains(names, "resourceslices"), nil
}

// Claim reads a claim from the cache; from the API server when the cache
// lacks it or its copy is not allocated or not reserved for the pod.
func (c *Claims) Claim(ctx context.Context, pod podnet.PodRef, name string) (*podnet.Claim, error) {
	claim, err := c.claims.ResourceClaims(pod.Namespace).Get(name)
	if apierrors.IsNotFound(err) || (err == nil && !usable(claim, pod.UID)) {
		claim, err = c.client.ResourceV1().ResourceClaims(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			var trimmed any
			trimmed, err = c.trim(claim)
			claim, _ = trimmed.(*resourcev1.ResourceClaim)
		}
	}
	if apierrors.IsNotFound(err) {
		return nil, &podnet.NotFoundError{Kind: "ResourceClaim", Namespace: pod.Namespace, Name: name}
	}
	if err != nil {
		return nil, apiError("reading ResourceClaim", err)
	}
	return toClaim(claim), nil
}

// usable reports whether a cached claim can be used as it is: allocated, and
// reserved for the pod.
func usable(claim *resourcev1.ResourceClaim, podUID string) bool {
	return claim.Status.Allocation != nil && toClaim(claim).ReservedForPod(podUID)
}

// Slices returns the cached slices of a pool; those the API server has when
// the cache lacks one of devices.
func (c *Claims) Slices(ctx context.Context, driver, pool string, devices []string) ([]podnet.ResourceSlice, error) {
	objs, err := c.slices.ByIndex(poolIndex, driver+"/"+pool)
	if err != nil {
		return nil, err
	}
	var out []podnet.ResourceSlice
	have := map[string]bool{}
	for _, obj := range objs {
		if s, ok := obj.(*resourcev1.ResourceSlice); ok {
			out = append(out, toSlice(s))
			for _, d := range s.Spec.Devices {
				have[d.Name] = true
			}
		}
	}
	if !slices.ContainsFunc(devices, func(d string) bool { return !have[d] }) {
		return out, nil
	}
	selector := fields.AndSelectors(fields.OneTermEqualSelector("spec.driver", driver), fields.OneTermEqualSelector("spec.pool.name", pool))
	list, err := c.client.ResourceV1().ResourceSlices().List(ctx, metav1.ListOptions{FieldSelector: selector.String()})
	if err != nil {
		return nil, apiError("listing ResourceSlices", err)
	}
	out = out[:0]
	for i := range list.Items {
		trimmed, _ := trimSlice(&list.Items[i])
		out = append(out, toSlice(trimmed.(*resourcev1.ResourceSlice)))
	}
	return out, nil
}

// slicePool is the pool index's function.
func slicePool(obj any) ([]string, error) {
	s, ok := obj.(*resourcev1.ResourceSlice)
	if !ok {
		return nil, nil
	}
	return []string{s.Spec.Driver + "/" + s.Spec.Pool.Name}, nil
}

// trimSlice keeps what the engine reads of a slice: its pool and generation,
// and of each device its name and the network attributes.
func trimSlice(obj any) (any, error) {
	s, ok := obj.(*resourcev1.ResourceSlice)
	if !ok {
		return obj, nil
	}
	out := &resourcev1.ResourceSlice{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, UID: s.UID, ResourceVersion: s.ResourceVersion},
		Spec: resourcev1.ResourceSliceSpec{Driver: s.Spec.Driver, NodeName: s.Spec.NodeName,
			Pool: resourcev1.ResourcePool{Name: s.Spec.Pool.Name, Generation: s.Spec.Pool.Generation}},
	}
	for _, d := range s.Spec.Devices {
		dev := resourcev1.Device{Name: d.Name}
		for name, attr := range d.Attributes {
			q := podnet.QualifiedAttribute(s.Spec.Driver, string(name))
			if attr.StringValue == nil || (q != podnet.DeviceResourceAttribute && q != podnet.DeviceIDAttribute) {
				continue
			}
			if dev.Attributes == nil {
				dev.Attributes = map[resourcev1.QualifiedName]resourcev1.DeviceAttribute{}
			}
			dev.Attributes[name] = resourcev1.DeviceAttribute{StringValue: attr.StringValue}
		}
		out.Spec.Devices = append(out.Spec.Devices, dev)
	}
	return out, nil
}

func toSlice(s *resourcev1.ResourceSlice) podnet.ResourceSlice {
	out := podnet.ResourceSlice{Driver: s.Spec.Driver, Pool: s.Spec.Pool.Name, Generation: s.Spec.Pool.Generation}
	for _, d := range s.Spec.Devices {
		dev := podnet.SliceDevice{Name: d.Name}
		for name, attr := range d.Attributes {
			if attr.StringValue != nil {
				dev.SetAttribute(s.Spec.Driver, string(name), *attr.StringValue)
			}
		}
		out.Devices = append(out.Devices, dev)
	}
	return out
}

// trimClaim returns the claims' transform: it keeps a claim's identity, its
// allocation's devices and the pods it is reserved for; of a claim allocated
// on another node than nodeName, only that it is allocated.
func trimClaim(nodeName string) func(any) (any, error) {
	return func(obj any) (any, error) {
		claim, ok := obj.(*resourcev1.ResourceClaim)
		if !ok {
			return obj, nil
		}
		out := &resourcev1.ResourceClaim{ObjectMeta: metav1.ObjectMeta{
			Name: claim.Name, Namespace: claim.Namespace, UID: claim.UID, ResourceVersion: claim.ResourceVersion,
		}}
		a := claim.Status.Allocation
		if a == nil {
			return out, nil
		}
		out.Status.Allocation = &resourcev1.AllocationResult{}
		if nodeName != "" && excludesNode(a.NodeSelector, nodeName) {
			return out, nil
		}
		for _, r := range a.Devices.Results {
			out.Status.Allocation.Devices.Results = append(out.Status.Allocation.Devices.Results, resourcev1.DeviceRequestAllocationResult{
				Request: r.Request, Driver: r.Driver, Pool: r.Pool, Device: r.Device, AdminAccess: r.AdminAccess,
			})
		}
		for _, r := range claim.Status.ReservedFor {
			if r.APIGroup == "" && r.Resource == "pods" {
				out.Status.ReservedFor = append(out.Status.ReservedFor, resourcev1.ResourceClaimConsumerReference{Resource: r.Resource, UID: r.UID})
			}
		}
		return out, nil
	}
}

// excludesNode reports whether a node selector surely selects no node of
// this name: every term asks for metadata.name among names without it (the
// selector the scheduler writes for node-local devices). A term that reads
// labels could select the node: the node's labels are not read, so it is
// kept.
func excludesNode(sel *corev1.NodeSelector, node string) bool {
	if sel == nil || len(sel.NodeSelectorTerms) == 0 {
		return false
	}
	for _, term := range sel.NodeSelectorTerms {
		if !termExcludesNode(term, node) {
			return false
		}
	}
	return true
}

func termExcludesNode(term corev1.NodeSelectorTerm, node string) bool {
	for _, req := range term.MatchFields {
		if req.Key != "metadata.name" {
			continue
		}
		switch req.Operator {
		case corev1.NodeSelectorOpIn:
			if !slices.Contains(req.Values, node) {
				return true
			}
		case corev1.NodeSelectorOpNotIn:
			if slices.Contains(req.Values, node) {
				return true
			}
		}
	}
	return false
}

func toClaim(claim *resourcev1.ResourceClaim) *podnet.Claim {
	out := &podnet.Claim{Namespace: claim.Namespace, Name: claim.Name}
	for _, r := range claim.Status.ReservedFor {
		if r.APIGroup == "" && r.Resource == "pods" {
			out.ReservedFor = append(out.ReservedFor, string(r.UID))
		}
	}
	if a := claim.Status.Allocation; a != nil {
		out.Allocated = true
		for _, r := range a.Devices.Results {
			out.Devices = append(out.Devices, podnet.ClaimDevice{
				Request: r.Request, Driver: r.Driver, Pool: r.Pool, Device: r.Device,
				AdminAccess: r.AdminAccess != nil && *r.AdminAccess,
			})
		}
	}
	return out
}
