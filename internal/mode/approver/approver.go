// Package approver is multus-cert-approver: it approves the
// CertificateSigningRequests of the thick daemon's per-node client
// certificates (daemon-config.json's perNodeCertificate), and only those.
//
// A request is approved when it has exactly the per-node shape (signer
// kubernetes.io/kube-apiserver-client, subject CN system:multus:<node> and O
// system:multus and nothing else, client usages, no alternative names), comes
// from that node's kubelet or from the daemon's ServiceAccount with a token
// bound to a pod on that node, and the Node exists. A request that claims a
// per-node identity but has another shape is denied; every other request is
// left to other approvers. The approver never signs: kube-controller-manager's
// signer does, once a request is approved.
package approver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	certlisters "k8s.io/client-go/listers/certificates/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Options configure the approver.
type Options struct {
	Client kubernetes.Interface
	Policy Policy
	Log    *slog.Logger
	// Resync is how often every request is judged again, so that one left
	// alone while its Node did not exist yet is approved once it does.
	Resync time.Duration
	// CallTimeout bounds each request to the API server.
	CallTimeout time.Duration
}

// The condition reasons the approver writes.
const (
	ReasonApproved = "MultusPerNodeCertificate"
	ReasonDenied   = "NotAPerNodeCertificate"
	// Component names the approver in the conditions' messages.
	Component = "multus-cert-approver"
)

type approver struct {
	opts   Options
	lister certlisters.CertificateSigningRequestLister
	queue  workqueue.TypedRateLimitingInterface[string]
}

// Run approves until ctx ends. It fails when its cache of requests does not
// fill within syncTimeout.
func Run(ctx context.Context, opts Options, syncTimeout time.Duration) error {
	if opts.CallTimeout == 0 {
		opts.CallTimeout = 30 * time.Second
	}
	factory := informers.NewSharedInformerFactory(opts.Client, opts.Resync)
	inf := factory.Certificates().V1().CertificateSigningRequests()
	a := &approver{
		opts:   opts,
		lister: inf.Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "csr"}),
	}
	defer a.queue.ShutDown()
	enqueue := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			a.queue.Add(key)
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	sctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	for typ, ok := range factory.WaitForCacheSync(sctx.Done()) {
		if !ok {
			return fmt.Errorf("the cache of %v did not sync within %s", typ, syncTimeout)
		}
	}
	opts.Log.Info("approving per-node client certificates", "serviceAccounts", opts.Policy.ServiceAccounts)
	go func() {
		<-ctx.Done()
		a.queue.ShutDown()
	}()
	for a.next(ctx) {
	}
	return nil
}

// next handles one queued request; false once the queue shuts down.
func (a *approver) next(ctx context.Context) bool {
	name, quit := a.queue.Get()
	if quit {
		return false
	}
	defer a.queue.Done(name)
	if err := a.handle(ctx, name); err != nil {
		a.opts.Log.Warn("judging a certificate signing request; retrying", "csr", name, "err", err)
		a.queue.AddRateLimited(name)
		return true
	}
	a.queue.Forget(name)
	return true
}

// handle judges the request name and acts on the verdict. An error is worth
// a retry; a request left alone is not an error.
func (a *approver) handle(ctx context.Context, name string) error {
	csr, err := a.lister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	d := Decide(csr, a.opts.Policy)
	log := a.opts.Log.With("csr", name, "requester", csr.Spec.Username)
	switch d.Verdict {
	case Ignore:
		log.Debug("left alone", "why", d.Reason)
		return nil
	case Deny:
		log.Info("denying", "why", d.Reason)
		return a.decide(ctx, csr, certificatesv1.CertificateDenied, ReasonDenied, Component+": "+d.Reason)
	}
	cctx, cancel := context.WithTimeout(ctx, a.opts.CallTimeout)
	defer cancel()
	node, err := a.opts.Client.CoreV1().Nodes().Get(cctx, d.Node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// Perhaps not registered yet: the next resync judges it again.
		log.Info("left alone: the node does not exist", "node", d.Node)
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading node %s: %w", d.Node, err)
	}
	if reason := sameNode(node, d.NodeUID); reason != "" {
		log.Info("left alone", "why", reason)
		return nil
	}
	log.Info("approving", "node", d.Node)
	return a.decide(ctx, csr, certificatesv1.CertificateApproved, ReasonApproved,
		fmt.Sprintf("%s: %s of node %s", Component, d.Reason, d.Node))
}

// sameNode is why node is not the one the requester's token was bound to, or
// "" when it is (or the token names no UID).
func sameNode(node *corev1.Node, uid string) string {
	if uid != "" && node.UID != types.UID(uid) {
		return fmt.Sprintf("the requester's token names node %s with UID %s, which is now %s", node.Name, uid, node.UID)
	}
	return ""
}

// decide writes an Approved or Denied condition to the request's approval.
func (a *approver) decide(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, typ certificatesv1.RequestConditionType, reason, msg string) error {
	csr = csr.DeepCopy()
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: typ, Status: corev1.ConditionTrue, Reason: reason, Message: msg, LastUpdateTime: metav1.Now(),
	})
	cctx, cancel := context.WithTimeout(ctx, a.opts.CallTimeout)
	defer cancel()
	_, err := a.opts.Client.CertificatesV1().CertificateSigningRequests().UpdateApproval(cctx, csr.Name, csr, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		// Changed or gone meanwhile: the informer brings the new state.
		return nil
	}
	if err != nil {
		return fmt.Errorf("writing the %s condition: %w", typ, err)
	}
	return nil
}

// ParseServiceAccounts reads a comma-separated list of "namespace:name"
// ServiceAccounts (the -service-accounts flag).
func ParseServiceAccounts(list string) ([]string, error) {
	var out []string
	for _, sa := range strings.Split(list, ",") {
		sa = strings.TrimSpace(sa)
		if sa == "" {
			continue
		}
		ns, name, ok := strings.Cut(sa, ":")
		if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
			return nil, fmt.Errorf("ServiceAccount %q: want namespace:name", sa)
		}
		out = append(out, sa)
	}
	if len(out) == 0 {
		return nil, errors.New("no ServiceAccount of the daemon given: want namespace:name[,namespace:name...]")
	}
	return out, nil
}
