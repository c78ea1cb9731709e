package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/polynet-cni/polynet/internal/mode/approver"
	"github.com/polynet-cni/polynet/test/testbed"
)

// certApproverManifest holds the approver and the per-node RBAC.
const certApproverManifest = "deployments/multus-cert-approver.yml"

// signingDuration is the signer's --cluster-signing-duration: each certificate
// is valid from 5 minutes before its issue (the signer's backdating) to 2
// minutes after, so the daemon's certificate manager, which renews at 70 to 90
// per cent of that life, renews it within about 80 s of its issue, before it
// expires. The daemon asks for upstream's default, 10 minutes, the least the
// API accepts; the signer's bound wins.
const signingDuration = 2 * time.Minute

// TestPerNodeCertificate runs the daemon with perNodeCertificate against a real
// API server, kube-controller-manager's signer and multus-cert-approver, with
// the RBAC of the manifests. The daemon bootstraps with its ServiceAccount's
// token, bound to a pod on its node; the approver approves its request, the
// signer issues the certificate, and every request of the daemon but its
// certificate requests is then made as system:multus:<node>. The certificate
// is renewed before it expires, and after the first one expired the daemon
// still serves an ADD whose status patch is made with the renewed one. Requests
// of other shapes, or from other requesters, are not approved.
func TestPerNodeCertificate(t *testing.T) {
	bed := testbed.Require(t)
	cp := testbed.StartControlPlane(t)
	kc, _ := cp.AdminClients(t)
	ctx := testbed.Context(t)
	testbed.StartSigner(t, cp, signingDuration)
	testbed.CreateNamespace(ctx, t, kc, "kube-system")
	for _, f := range []string{testbed.ThickManifest, certApproverManifest} {
		createRBAC(ctx, t, kc, filepath.Join(bed.Root, f))
	}
	const (
		saUser       = "system:serviceaccount:kube-system:multus"
		approverUser = "system:serviceaccount:kube-system:multus-cert-approver"
	)
	nodeUser := "system:multus:" + testbed.NodeName
	waitAllowed(ctx, t, kc, nodeUser, []string{"system:multus"}, "list", "", "pods", "")
	waitAllowed(ctx, t, kc, saUser, nil, "create", "certificates.k8s.io", "certificatesigningrequests", "")
	waitAllowed(ctx, t, kc, approverUser, nil, "update", "certificates.k8s.io", "certificatesigningrequests", "approval")
	for _, n := range []string{testbed.NodeName, "node-2"} {
		if _, err := kc.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	bootstrap := boundTokenKubeconfig(ctx, t, cp, kc)
	startApprover(ctx, t, cp)

	certDir := filepath.Join(t.TempDir(), "certs")
	testbed.Binary(t, "multus-daemon") // built before the clock starts
	launched := time.Now()
	d := testbed.StartDaemon(t, cp, testbed.DaemonOptions{
		// The account the bed makes for a daemon gets no rules: the daemon must
		// use neither it nor anything but the bootstrap token and its certificate.
		Account: "unused", Rules: []rbacv1.PolicyRule{},
		Config: map[string]any{"perNodeCertificate": map[string]any{
			"enabled": true, "bootstrapKubeconfig": bootstrap, "certDir": certDir, "certDuration": "10m",
		}},
	})
	ready := time.Since(launched)

	first := currentCert(t, certDir)
	if first.Subject.CommonName != nodeUser || !slices.Equal(first.Subject.Organization, []string{"system:multus"}) {
		t.Errorf("certificate subject %s, want CN %s O system:multus", first.Subject, nodeUser)
	}
	if err := cp.VerifyClientCertificate(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: first.Raw})); err != nil {
		t.Errorf("the daemon's certificate: %v", err)
	}
	logStartup(t, cp, launched, ready, nodeUser, saUser, approverUser)

	t.Run("other shapes are not approved", func(t *testing.T) {
		approverLeavesOthers(ctx, t, kc, bootstrap)
	})

	// Rotation: a new certificate before the first expires, then a request
	// made after it expired, which only the new one can authenticate.
	if err := poll(ctx, first.NotAfter.Add(testbed.StartTimeout), func() error {
		if c := currentCert(t, certDir); c.SerialNumber.Cmp(first.SerialNumber) == 0 {
			return fmt.Errorf("still the first certificate, valid until %s", first.NotAfter.Format(time.TimeOnly))
		}
		return nil
	}); err != nil {
		t.Fatalf("not renewed: %v", err)
	}
	renewed := time.Now()
	if renewed.After(first.NotAfter) {
		t.Errorf("renewed at %s, after the first certificate expired at %s", renewed.Format(time.TimeOnly), first.NotAfter.Format(time.TimeOnly))
	}
	if err := poll(ctx, first.NotAfter.Add(time.Minute), func() error {
		if time.Now().Before(first.NotAfter.Add(time.Second)) {
			return fmt.Errorf("the first certificate is valid until %s", first.NotAfter.Format(time.TimeOnly))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e := newEnvOn(t, cp, d)
	conf := e.multusConf("1.0.0", nil)
	_, sb, _ := e.pod("after-expiry", nil)
	e.add(conf, sb)
	e.del(conf, sb)
	checkAudit(t, cp, nodeUser, saUser, first.NotAfter, e.namespace)
	checkCSRs(ctx, t, kc, saUser)
}

// logStartup logs the time from the daemon's launch to each step of its first
// certificate, from the audit log's timestamps.
func logStartup(t *testing.T, cp *testbed.ControlPlane, launched time.Time, ready time.Duration, nodeUser, saUser, approverUser string) {
	t.Helper()
	at := func(user, verb, sub string) string {
		// Every stage: the daemon's first requests are watches, still open.
		evs, err := cp.AuditStages(user)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Received.After(launched) && (verb == "" || ev.Verb == verb) && ev.Subresource == sub &&
				(ev.Resource == "certificatesigningrequests" || verb == "") {
				return ev.Received.Sub(launched).Round(time.Millisecond).String()
			}
		}
		return "never"
	}
	t.Logf("per-node certificate start-up, from the daemon's launch: CSR created %s, approved %s, issued %s, "+
		"first request as %s %s, daemon ready %s",
		at(saUser, "create", ""), at(approverUser, "update", "approval"), at("system:kube-controller-manager", "update", "status"),
		nodeUser, at(nodeUser, "", ""), ready.Round(time.Millisecond))
}

// checkAudit: the node's identity made the daemon's requests, each allowed,
// among them a status patch after the first certificate expired: the API
// server checks a client certificate at every request, so that patch proves
// the connections made with the first certificate were closed and the renewed
// one presented. The ServiceAccount made certificate requests only.
func checkAudit(t *testing.T, cp *testbed.ControlPlane, nodeUser, saUser string, expired time.Time, namespace string) {
	t.Helper()
	evs, err := cp.AuditRequests(nodeUser)
	if err != nil {
		t.Fatal(err)
	}
	patched := false
	kinds := map[string]int{}
	for _, ev := range evs {
		kinds[ev.Kind()]++
		if !ev.Open() && ev.Code >= 400 {
			t.Errorf("%s's request %s %s/%s: %d", nodeUser, ev.Kind(), ev.Namespace, ev.Name, ev.Code)
		}
		if ev.Kind() == "patch pods/status" && ev.Namespace == namespace && ev.Received.After(expired) && ev.Code == 200 {
			patched = true
		}
	}
	t.Logf("%s's requests, open or complete: %v", nodeUser, kinds)
	if kinds["list pods"]+kinds["watch pods"] == 0 || kinds["list network-attachment-definitions"]+kinds["watch network-attachment-definitions"] == 0 {
		t.Errorf("%s never read pods and NADs: the daemon's caches used another identity", nodeUser)
	}
	if !patched {
		t.Errorf("no status patch by %s after the first certificate expired at %s", nodeUser, expired.Format(time.TimeOnly))
	}
	sa, err := cp.AuditEvents(saUser)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range sa {
		if ev.Resource != "certificatesigningrequests" {
			t.Errorf("the bootstrap identity %s made %s: only certificate requests should use it", saUser, ev.Kind())
		}
	}
	if unused, _ := cp.AuditEvents("system:serviceaccount:kube-system:unused"); len(unused) > 0 {
		t.Errorf("the daemon used its kubeconfig key's account: %s", unused[0].Kind())
	}
}

// checkCSRs: at least two requests of the daemon (the first and a renewal),
// each approved by the approver and issued, from a token bound to its node.
func checkCSRs(ctx context.Context, t *testing.T, kc kubernetes.Interface, saUser string) {
	t.Helper()
	list, err := kc.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, csr := range list.Items {
		// The daemon's own requests, named by client-go (csr-<random>), not
		// those approverLeavesOthers makes with its token.
		if csr.Spec.Username != saUser || csr.GenerateName != "csr-" {
			continue
		}
		if cn := requestCN(t, csr.Spec.Request); cn != "system:multus:"+testbed.NodeName {
			t.Errorf("CSR %s asks for %s", csr.Name, cn)
		}
		n++
		if got := csr.Spec.Extra["authentication.kubernetes.io/node-name"]; !slices.Equal(got, certificatesv1.ExtraValue{testbed.NodeName}) {
			t.Errorf("CSR %s: the token's node is %q", csr.Name, got)
		}
		approved := slices.ContainsFunc(csr.Status.Conditions, func(c certificatesv1.CertificateSigningRequestCondition) bool {
			return c.Type == certificatesv1.CertificateApproved && c.Reason == approver.ReasonApproved
		})
		if !approved || len(csr.Status.Certificate) == 0 {
			t.Errorf("CSR %s: approved by the approver %v, issued %v", csr.Name, approved, len(csr.Status.Certificate) > 0)
		}
		if csr.Spec.ExpirationSeconds == nil || *csr.Spec.ExpirationSeconds != 600 {
			t.Errorf("CSR %s: expirationSeconds %v, want certDuration's 600", csr.Name, csr.Spec.ExpirationSeconds)
		}
	}
	if n < 2 {
		t.Errorf("%d certificate requests of the daemon, want the first and at least one renewal", n)
	}
}

// approverLeavesOthers creates requests the approver must not approve: one of
// the exact shape from a user it does not vouch for and one from the daemon's
// token for another node (both left alone), then one claiming a per-node
// identity with O system:nodes besides (denied). The approver judges them in order,
// so once the last is denied, the others were judged and left alone.
func approverLeavesOthers(ctx context.Context, t *testing.T, admin kubernetes.Interface, bootstrap string) {
	cfg, err := clientcmd.BuildConfigFromFlags("", bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	create := func(kc kubernetes.Interface, name string, subject pkix.Name) {
		t.Helper()
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject}, key)
		if err != nil {
			t.Fatal(err)
		}
		_, err = kc.CertificatesV1().CertificateSigningRequests().Create(ctx, &certificatesv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: certificatesv1.CertificateSigningRequestSpec{
				Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
				SignerName: certificatesv1.KubeAPIServerClientSignerName,
				Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating CSR %s: %v", name, err)
		}
	}
	create(admin, "admin-asks-for-node", pkix.Name{CommonName: "system:multus:" + testbed.NodeName, Organization: []string{"system:multus"}})
	create(sa, "token-asks-for-other-node", pkix.Name{CommonName: "system:multus:node-2", Organization: []string{"system:multus"}})
	create(sa, "asks-for-nodes-group", pkix.Name{CommonName: "system:multus:" + testbed.NodeName, Organization: []string{"system:multus", "system:nodes"}})
	csrs := admin.CertificatesV1().CertificateSigningRequests()
	if err := poll(ctx, time.Now().Add(testbed.StartTimeout), func() error {
		csr, err := csrs.Get(ctx, "asks-for-nodes-group", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range csr.Status.Conditions {
			if c.Type == certificatesv1.CertificateDenied && c.Reason == approver.ReasonDenied {
				return nil
			}
		}
		return fmt.Errorf("not denied: %+v", csr.Status.Conditions)
	}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"admin-asks-for-node", "token-asks-for-other-node"} {
		csr, err := csrs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(csr.Status.Conditions) > 0 || len(csr.Status.Certificate) > 0 {
			t.Errorf("CSR %s was decided: %+v", name, csr.Status.Conditions)
		}
	}
}

// createRBAC creates every ServiceAccount, ClusterRole and ClusterRoleBinding
// of a manifest, as an operator's apply would.
func createRBAC(ctx context.Context, t *testing.T, kc kubernetes.Interface, file string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		switch meta.Kind {
		case "ServiceAccount":
			var o corev1.ServiceAccount
			err = yaml.UnmarshalStrict([]byte(doc), &o)
			if err == nil {
				_, err = kc.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, &o, metav1.CreateOptions{})
			}
		case "ClusterRole":
			var o rbacv1.ClusterRole
			err = yaml.UnmarshalStrict([]byte(doc), &o)
			if err == nil {
				_, err = kc.RbacV1().ClusterRoles().Create(ctx, &o, metav1.CreateOptions{})
			}
		case "ClusterRoleBinding":
			var o rbacv1.ClusterRoleBinding
			err = yaml.UnmarshalStrict([]byte(doc), &o)
			if err == nil {
				_, err = kc.RbacV1().ClusterRoleBindings().Create(ctx, &o, metav1.CreateOptions{})
			}
		}
		if err != nil {
			t.Fatalf("%s: %s: %v", file, meta.Kind, err)
		}
	}
}

// waitAllowed polls a SubjectAccessReview until RBAC, which learns of new
// bindings through an informer, allows user in groups verb on resource.
func waitAllowed(ctx context.Context, t *testing.T, kc kubernetes.Interface, user string, groups []string, verb, group, resource, sub string) {
	t.Helper()
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user, Groups: groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource, Subresource: sub},
	}}
	if err := poll(ctx, time.Now().Add(testbed.StartTimeout), func() error {
		got, err := kc.AuthorizationV1().SubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		if !got.Status.Allowed {
			return fmt.Errorf("%s may not %s %s/%s yet", user, verb, resource, sub)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// boundTokenKubeconfig writes a kubeconfig with a token of the daemon's
// ServiceAccount (kube-system/multus) bound to a pod on the node, as the
// kubelet mounts into the DaemonSet's pods: the API server names the node in
// the token's user information.
func boundTokenKubeconfig(ctx context.Context, t *testing.T, cp *testbed.ControlPlane, kc kubernetes.Interface) string {
	t.Helper()
	pod, err := kc.CoreV1().Pods("kube-system").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-multus-ds-" + testbed.NodeName, Namespace: "kube-system"},
		Spec: corev1.PodSpec{NodeName: testbed.NodeName, ServiceAccountName: "multus",
			Containers: []corev1.Container{{Name: "kube-multus", Image: "ghcr.io/polynet-cni/polynet:snapshot"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secs := int64(time.Hour / time.Second)
	tr, err := kc.CoreV1().ServiceAccounts("kube-system").CreateToken(ctx, "multus", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &secs,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bootstrap.kubeconfig")
	cfg := &rest.Config{Host: cp.URL, BearerToken: tr.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAData: cp.CAData()}}
	if err := testbed.WriteKubeconfig(path, cfg); err != nil {
		t.Fatal(err)
	}
	return path
}

// startApprover runs multus-cert-approver with a token of its manifest's
// ServiceAccount, and stops it when the test ends.
func startApprover(ctx context.Context, t *testing.T, cp *testbed.ControlPlane) {
	t.Helper()
	token, err := cp.Token(ctx, "kube-system", "multus-cert-approver", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	cfg := &rest.Config{Host: cp.URL, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: cp.CAData()}}
	if err := testbed.WriteKubeconfig(kubeconfig, cfg); err != nil {
		t.Fatal(err)
	}
	p, err := testbed.StartProcess("multus-cert-approver", testbed.Binary(t, "multus-cert-approver"),
		[]string{"-kubeconfig", kubeconfig, "-service-accounts", "kube-system:multus", "-log-level", "debug"},
		os.Environ(), filepath.Join(dir, "approver.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(10 * time.Second) })
	testbed.TailsOnFailure(t, "approver", func() []*testbed.Process { return []*testbed.Process{p} })
}

// currentCert reads the certificate the daemon's store holds now.
func currentCert(t *testing.T, certDir string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(certDir, "multus-client-current.pem"))
	if err != nil {
		t.Fatal(err)
	}
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type == "CERTIFICATE" {
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			return cert
		}
	}
	t.Fatalf("no certificate in %s", certDir)
	return nil
}

// requestCN is the subject CN of a PEM certificate request.
func requestCN(t *testing.T, request []byte) string {
	t.Helper()
	block, _ := pem.Decode(request)
	if block == nil {
		t.Fatal("a CSR without a PEM request")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return req.Subject.CommonName
}

// poll calls cond until it returns nil, ctx ends or deadline passes.
func poll(ctx context.Context, deadline time.Time, cond func() error) error {
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
