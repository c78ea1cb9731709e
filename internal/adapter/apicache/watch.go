package apicache

import (
	"context"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/polynet-cni/polynet/internal/podnet"
	"github.com/polynet-cni/polynet/internal/selection"
)

// WatchNetworks calls changed with each pod of the node the cache receives,
// the ones listed when it starts included, and again whenever a pod's networks
// annotation changes: what dynamic networks reconcile. Other changes of a pod
// (its status, its other annotations) are not passed on. Call it before Start,
// so that the pods listed at start are passed too; changed must not block.
func (c *Cache) WatchNetworks(changed func(podnet.PodRef)) error {
	ref := func(obj any) (podnet.PodRef, bool) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return podnet.PodRef{}, false
		}
		return podnet.PodRef{Namespace: pod.Namespace, Name: pod.Name, UID: string(pod.UID)}, true
	}
	_, err := c.podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if r, ok := ref(obj); ok {
				changed(r)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*corev1.Pod)
			n, ok2 := newObj.(*corev1.Pod)
			if !ok1 || !ok2 || o.Annotations[selection.NetworksAnnotation] == n.Annotations[selection.NetworksAnnotation] {
				return
			}
			if r, ok := ref(newObj); ok {
				changed(r)
			}
		},
	})
	return err
}

// LogArrivals logs, at debug level, each pod and NAD the caches receive and
// each they drop, once they hold it (handlers run after the store changed): a
// line to tell when the daemon can serve an object without reading it, for
// an operator tracing a lagging cache and for tests that wait for it. Call it
// before Start.
func (c *Cache) LogArrivals(log *slog.Logger) error {
	for kind, inf := range map[string]cache.SharedIndexInformer{"pod": c.podInformer, "NetworkAttachmentDefinition": c.nadInformer} {
		say := func(event string, obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if m, err := meta.Accessor(obj); err == nil {
				log.Debug("cache "+event, "kind", kind, "object", m.GetNamespace()+"/"+m.GetName(), "uid", string(m.GetUID()))
			}
		}
		_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { say("added", obj) },
			DeleteFunc: func(obj any) { say("dropped", obj) },
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// CachedPod returns the pod as the cache holds it; nil when it holds none.
func (c *Cache) CachedPod(ref podnet.PodRef) *podnet.Pod {
	pod, err := c.pods.Pods(ref.Namespace).Get(ref.Name)
	if err != nil {
		return nil
	}
	return toPod(pod)
}

// LivePod reads a pod from the API server, past the cache: what dynamic
// networks start from before they rewrite the pod's network-status, which the
// cache may not have caught up with.
func (c *Cache) LivePod(ctx context.Context, ref podnet.PodRef) (*podnet.Pod, error) {
	pod, err := c.client.CoreV1().Pods(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, &podnet.NotFoundError{Kind: "pod", Namespace: ref.Namespace, Name: ref.Name}
	}
	if err != nil {
		return nil, apiError("reading pod", err)
	}
	return toPod(pod), nil
}
