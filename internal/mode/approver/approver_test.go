package approver

import (
	"context"
	"crypto/x509"
	"log/slog"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	certlisters "k8s.io/client-go/listers/certificates/v1"
	"k8s.io/client-go/tools/cache"
)

// TestHandle: an approval waits for the Node, and for the Node the token was
// bound to (its UID); a denial is written without one. The real API server's
// part is in test/e2e (TestPerNodeCertificate).
func TestHandle(t *testing.T) {
	good := csrPEM(t, &x509.CertificateRequest{Subject: subject("system:multus:node-a", "system:multus")})
	bad := csrPEM(t, &x509.CertificateRequest{Subject: subject("system:multus:node-a", "system:multus"), DNSNames: []string{"x"}})
	sa := map[string]certificatesv1.ExtraValue{"authentication.kubernetes.io/node-name": {"node-a"}, "authentication.kubernetes.io/node-uid": {"uid-a"}}
	tests := []struct {
		name  string
		node  *corev1.Node
		req   []byte
		extra map[string]certificatesv1.ExtraValue
		want  certificatesv1.RequestConditionType // "" for none
	}{
		{"approved", &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", UID: "uid-a"}}, good, sa, certificatesv1.CertificateApproved},
		{"no such node", nil, good, sa, ""},
		{"the node was made again", &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", UID: "uid-b"}}, good, sa, ""},
		{"denied", nil, bad, sa, certificatesv1.CertificateDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr := &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: "csr-1"},
				Spec: certificatesv1.CertificateSigningRequestSpec{
					Request: tt.req, SignerName: "kubernetes.io/kube-apiserver-client", Usages: clientUsages,
					Username: "system:serviceaccount:kube-system:multus", Extra: tt.extra,
				}}
			client := fake.NewClientset(csr)
			if tt.node != nil {
				if _, err := client.CoreV1().Nodes().Create(context.Background(), tt.node, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
			if err := indexer.Add(csr); err != nil {
				t.Fatal(err)
			}
			a := &approver{
				opts:   Options{Client: client, Policy: Policy{ServiceAccounts: []string{"kube-system:multus"}}, Log: slog.New(slog.DiscardHandler), CallTimeout: time.Minute},
				lister: certlisters.NewCertificateSigningRequestLister(indexer),
			}
			if err := a.handle(context.Background(), "csr-1"); err != nil {
				t.Fatal(err)
			}
			got, err := client.CertificatesV1().CertificateSigningRequests().Get(context.Background(), "csr-1", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var types []certificatesv1.RequestConditionType
			for _, c := range got.Status.Conditions {
				types = append(types, c.Type)
			}
			if (tt.want == "" && len(types) > 0) || (tt.want != "" && (len(types) != 1 || types[0] != tt.want)) {
				t.Errorf("conditions %v, want %q", types, tt.want)
			}
		})
	}
}
