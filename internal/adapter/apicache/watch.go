package apicache

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
