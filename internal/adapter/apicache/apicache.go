// Package apicache is the daemon's adapter to the API server: pods of this node
// and NetworkAttachmentDefinitions come from informer caches, trimmed to the
// fields the engine reads, so an ADD reads nothing from the API server when the
// cache has its objects; a lagging cache costs one live read. It writes the
// network-status annotation with a merge patch, and records events
// asynchronously through client-go's event broadcaster. Claims (claims.go) serves
// pods' DRA ResourceClaims and the node's ResourceSlices the same way.
package apicache

import (
	"context"
	"fmt"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadclient "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	nadinformers "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/informers/externalversions"
	nadlisters "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/listers/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	ktypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/polynet-cni/polynet/internal/netstatus"
	"github.com/polynet-cni/polynet/internal/podnet"
)

// Cache serves the engine's Kubernetes interface from informers.
type Cache struct {
	client    kubernetes.Interface
	nadClient nadclient.Interface
	pods      corelisters.PodLister
	nads      nadlisters.NetworkAttachmentDefinitionLister
	start     func(ctx context.Context, timeout time.Duration) error
	recorder  record.EventRecorder
	stopEvent func()
	// podInformer delivers the node's pods to WatchNetworks.
	podInformer cache.SharedIndexInformer
	nadInformer cache.SharedIndexInformer
}

// New builds the informers: pods with spec.nodeName = nodeName (every pod when
// nodeName is empty, as upstream does; a large cluster then costs memory), and
// NADs of every namespace.
func New(cfg *rest.Config, nodeName, component string) (*Cache, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	nc, err := nadclient.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	podOpts := []informers.SharedInformerOption{informers.WithTransform(trimPod)}
	if nodeName != "" {
		podOpts = append(podOpts, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", nodeName).String()
		}))
	}
	// The informers' watches stay open for minutes: cfg.Timeout, which bounds
	// every other request, would cut them.
	watchCfg := rest.CopyConfig(cfg)
	watchCfg.Timeout = 0
	watchClient, err := kubernetes.NewForConfig(watchCfg)
	if err != nil {
		return nil, err
	}
	watchNADClient, err := nadclient.NewForConfig(watchCfg)
	if err != nil {
		return nil, err
	}
	podFactory := informers.NewSharedInformerFactoryWithOptions(watchClient, 0, podOpts...)
	nadFactory := nadinformers.NewSharedInformerFactory(watchNADClient, 0)
	podInformer := podFactory.Core().V1().Pods()
	nadInformer := nadFactory.K8sCniCncfIo().V1().NetworkAttachmentDefinitions()
	if err := nadInformer.Informer().SetTransform(trimNAD); err != nil {
		return nil, err
	}
	c := &Cache{client: client, nadClient: nc, pods: podInformer.Lister(), nads: nadInformer.Lister(), podInformer: podInformer.Informer(), nadInformer: nadInformer.Informer()}
	podSynced, nadSynced := podInformer.Informer().HasSynced, nadInformer.Informer().HasSynced
	c.start = func(ctx context.Context, timeout time.Duration) error {
		podFactory.Start(ctx.Done())
		nadFactory.Start(ctx.Done())
		syncCtx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if !cache.WaitForCacheSync(syncCtx.Done(), podSynced, nadSynced) {
			return fmt.Errorf("pod and NAD caches did not sync within %s", timeout)
		}
		return nil
	}
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	c.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component})
	c.stopEvent = broadcaster.Shutdown
	return c, nil
}

// Start starts the informers and waits until both caches synced: the daemon does
// not serve from a cache it has not filled.
func (c *Cache) Start(ctx context.Context, timeout time.Duration) error { return c.start(ctx, timeout) }

// Stop flushes and stops the event broadcaster.
func (c *Cache) Stop() { c.stopEvent() }

// trimPod keeps what the engine reads of a pod: identity, annotations, node,
// deletion, and the names of its ResourceClaims.
func trimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID,
			ResourceVersion: pod.ResourceVersion, Annotations: pod.Annotations,
			DeletionTimestamp: pod.DeletionTimestamp,
		},
		Spec: corev1.PodSpec{NodeName: pod.Spec.NodeName},
	}
	for _, c := range pod.Spec.ResourceClaims {
		if c.ResourceClaimName != nil {
			out.Spec.ResourceClaims = append(out.Spec.ResourceClaims, corev1.PodResourceClaim{Name: c.Name, ResourceClaimName: c.ResourceClaimName})
		}
	}
	out.Status.ResourceClaimStatuses = pod.Status.ResourceClaimStatuses
	if ext := pod.Status.ExtendedResourceClaimStatus; ext != nil {
		out.Status.ExtendedResourceClaimStatus = &corev1.PodExtendedResourceClaimStatus{ResourceClaimName: ext.ResourceClaimName}
	}
	return out, nil
}

// trimNAD drops the managed fields, which can outweigh the config.
func trimNAD(obj any) (any, error) {
	if nad, ok := obj.(*nadv1.NetworkAttachmentDefinition); ok {
		nad.ManagedFields = nil
	}
	return obj, nil
}

// Pod reads a pod from the cache, else once from the API server: when the cache
// lacks it, and when the cached pod is not the one wanted. A pod deleted and
// recreated under the same name (a StatefulSet's) has a new UID, and the
// runtime's ADD for it can come before the watch delivers the change: the
// cached pod's UID is then not ref.UID, and only a live read can tell a stale
// cache from a sandbox of a pod that is really gone. A static pod's API object
// is a mirror whose UID never matches the sandbox's, so its cached copy is kept.
func (c *Cache) Pod(ctx context.Context, ref podnet.PodRef) (*podnet.Pod, error) {
	pod, err := c.pods.Pods(ref.Namespace).Get(ref.Name)
	switch {
	case err == nil && !stale(pod, ref):
		return toPod(pod), nil
	case err != nil && !apierrors.IsNotFound(err):
		return nil, apiError("reading pod", err)
	}
	return c.LivePod(ctx, ref)
}

// stale reports whether the cached pod is another pod than the one ref wants.
func stale(cached *corev1.Pod, ref podnet.PodRef) bool {
	return !ref.Is(toPod(cached))
}

func toPod(pod *corev1.Pod) *podnet.Pod {
	var claims []string
	for _, c := range pod.Spec.ResourceClaims {
		if c.ResourceClaimName != nil {
			claims = append(claims, *c.ResourceClaimName)
		}
	}
	for _, c := range pod.Status.ResourceClaimStatuses {
		if c.ResourceClaimName != nil {
			claims = append(claims, *c.ResourceClaimName)
		}
	}
	if ext := pod.Status.ExtendedResourceClaimStatus; ext != nil {
		claims = append(claims, ext.ResourceClaimName)
	}
	return &podnet.Pod{Namespace: pod.Namespace, Name: pod.Name, UID: string(pod.UID), Annotations: pod.Annotations,
		Claims: podnet.ClaimNames(claims...), Deleting: pod.DeletionTimestamp != nil}
}

// NAD reads a NetworkAttachmentDefinition from the cache, else once from the API.
func (c *Cache) NAD(ctx context.Context, namespace, name string) (*podnet.NAD, error) {
	nad, err := c.nads.NetworkAttachmentDefinitions(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		nad, err = c.nadClient.K8sCniCncfIoV1().NetworkAttachmentDefinitions(namespace).Get(ctx, name, metav1.GetOptions{})
	}
	if apierrors.IsNotFound(err) {
		return nil, &podnet.NotFoundError{Kind: "NetworkAttachmentDefinition", Namespace: namespace, Name: name}
	}
	if err != nil {
		return nil, apiError("reading NetworkAttachmentDefinition", err)
	}
	return &podnet.NAD{Namespace: nad.Namespace, Name: nad.Name, Config: nad.Spec.Config, Annotations: nad.Annotations}, nil
}

// PatchNetworkStatus sets the annotation with a merge patch of pods/status that
// carries the pod's UID, as the thin plugin does.
func (c *Cache) PatchNetworkStatus(ctx context.Context, ref podnet.PodRef, value string) error {
	patch, err := netstatus.MergePatch(ref.UID, value)
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Pods(ref.Namespace).Patch(ctx, ref.Name, ktypes.MergePatchType, patch, metav1.PatchOptions{}, "status")
	if err == nil {
		return nil
	}
	aerr := apiError("patching pod status", err).(*podnet.APIError)
	if uidRefused(err) {
		return &podnet.PodRecreatedError{Pod: ref, Err: aerr}
	}
	return aerr
}

// Event records an event; the broadcaster sends it in the background.
func (c *Cache) Event(_ context.Context, ref podnet.PodRef, eventType, reason, message string) error {
	c.recorder.Event(&corev1.ObjectReference{
		Kind: "Pod", APIVersion: "v1", Namespace: ref.Namespace, Name: ref.Name, UID: ktypes.UID(ref.UID),
	}, eventType, reason, message)
	return nil
}

// Ready checks the API server's /readyz with our credentials.
func (c *Cache) Ready(ctx context.Context) error {
	_, err := c.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return apiError("API server readiness", err)
	}
	return nil
}
