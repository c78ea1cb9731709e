package approver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"net"
	"strings"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
)

// csrPEM signs a certificate request of tmpl with a new key.
func csrPEM(tb testing.TB, tmpl *x509.CertificateRequest) []byte {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func subject(cn string, orgs ...string) pkix.Name {
	return pkix.Name{CommonName: cn, Organization: orgs}
}

var (
	clientUsages = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}
	saBound      = map[string]certificatesv1.ExtraValue{
		"authentication.kubernetes.io/node-name": {"node-a"}, "authentication.kubernetes.io/node-uid": {"uid-a"},
	}
)

// TestDecide: only the exact per-node shape from the node's kubelet or the
// daemon's node-bound ServiceAccount is approved; a request claiming a
// per-node identity with more or other in it is denied; everything else is
// left alone.
func TestDecide(t *testing.T) {
	policy := Policy{ServiceAccounts: []string{"kube-system:multus"}}
	good := &x509.CertificateRequest{Subject: subject("system:multus:node-a", "system:multus")}
	tests := []struct {
		name string
		// mutate changes a good request from the kubelet of node-a.
		mutate  func(csr *certificatesv1.CertificateSigningRequest)
		want    Verdict
		node    string
		nodeUID string
		reason  string // a part of the reason
	}{
		{name: "kubelet", want: Approve, node: "node-a"},
		{name: "daemon ServiceAccount bound to the node", want: Approve, node: "node-a", nodeUID: "uid-a", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Username, c.Spec.Groups, c.Spec.Extra = "system:serviceaccount:kube-system:multus", []string{"system:serviceaccounts"}, saBound
		}},
		{name: "RSA usages", want: Approve, node: "node-a", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Usages = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageClientAuth}
		}},
		// Left alone.
		{name: "another signer", want: Ignore, reason: "signer", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.SignerName = "kubernetes.io/kube-apiserver-client-kubelet"
		}},
		{name: "another identity", want: Ignore, reason: "not a per-node identity", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Request = csrPEM(t, &x509.CertificateRequest{Subject: subject("system:node:node-a", "system:nodes")})
		}},
		{name: "already approved", want: Ignore, reason: "already approved", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue}}
		}},
		{name: "already denied", want: Ignore, reason: "already denied", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateDenied, Status: corev1.ConditionTrue}}
		}},
		{name: "not PEM", want: Ignore, reason: "not a PEM", mutate: func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Request = []byte("junk") }},
		{name: "another node's kubelet", want: Ignore, reason: "neither node node-a's kubelet", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Username = "system:node:node-b"
		}},
		{name: "kubelet name without the nodes group", want: Ignore, reason: "not in group system:nodes", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Groups = []string{"system:authenticated"}
		}},
		{name: "the node's own identity renewing", want: Ignore, reason: "neither", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Username, c.Spec.Groups = "system:multus:node-a", []string{"system:multus"}
		}},
		{name: "another ServiceAccount", want: Ignore, reason: "neither", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Username, c.Spec.Extra = "system:serviceaccount:default:multus", saBound
		}},
		{name: "ServiceAccount token not bound to a node", want: Ignore, reason: `bound to node ""`, mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Username = "system:serviceaccount:kube-system:multus"
		}},
		{name: "ServiceAccount token bound to another node", want: Ignore, reason: `bound to node "node-b"`, mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Username = "system:serviceaccount:kube-system:multus"
			c.Spec.Extra = map[string]certificatesv1.ExtraValue{"authentication.kubernetes.io/node-name": {"node-b"}}
		}},
		{name: "a user", want: Ignore, reason: "neither", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Username, c.Spec.Groups = "alice", []string{"system:masters"}
		}},
		// Denied: a per-node identity asked for with more or other.
		{name: "no organisation", want: Deny, reason: "want exactly", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Request = csrPEM(t, &x509.CertificateRequest{Subject: subject("system:multus:node-a")})
		}},
		{name: "masters organisation", want: Deny, reason: "want exactly", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Request = csrPEM(t, &x509.CertificateRequest{Subject: subject("system:multus:node-a", "system:multus", "system:masters")})
		}},
		{name: "another subject attribute", want: Deny, reason: "besides CN and O", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			s := subject("system:multus:node-a", "system:multus")
			s.OrganizationalUnit = []string{"x"}
			c.Spec.Request = csrPEM(t, &x509.CertificateRequest{Subject: s})
		}},
		{name: "an extra subject name", want: Deny, reason: "besides CN and O", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			s := subject("system:multus:node-a", "system:multus")
			s.ExtraNames = []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 12}, Value: "title"}}
			c.Spec.Request = csrPEM(t, &x509.CertificateRequest{Subject: s})
		}},
		{name: "DNS name", want: Deny, reason: "alternative names", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Request = csrPEM(t, &x509.CertificateRequest{Subject: good.Subject, DNSNames: []string{"node-a"}})
		}},
		{name: "IP address", want: Deny, reason: "alternative names", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Request = csrPEM(t, &x509.CertificateRequest{Subject: good.Subject, IPAddresses: []net.IP{net.IPv4(10, 0, 0, 1)}})
		}},
		{name: "server auth", want: Deny, reason: `usage "server auth"`, mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Usages = append(c.Spec.Usages, certificatesv1.UsageServerAuth)
		}},
		{name: "no client auth", want: Deny, reason: "lack client auth", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Usages = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature}
		}},
		{name: "empty node", want: Deny, reason: "valid node", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Request = csrPEM(t, &x509.CertificateRequest{Subject: subject("system:multus:", "system:multus")})
		}},
		{name: "node with a colon", want: Deny, reason: "valid node", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Request = csrPEM(t, &x509.CertificateRequest{Subject: subject("system:multus:node-a:admin", "system:multus")})
		}},
		{name: "bad signature", want: Deny, reason: "signature", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			block, _ := pem.Decode(c.Spec.Request)
			block.Bytes[len(block.Bytes)-3] ^= 0xff
			c.Spec.Request = pem.EncodeToMemory(block)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr := &certificatesv1.CertificateSigningRequest{Spec: certificatesv1.CertificateSigningRequestSpec{
				Request: csrPEM(t, good), SignerName: "kubernetes.io/kube-apiserver-client", Usages: clientUsages,
				Username: "system:node:node-a", Groups: []string{"system:nodes", "system:authenticated"},
			}}
			if tt.mutate != nil {
				tt.mutate(csr)
			}
			d := Decide(csr, policy)
			if d.Verdict != tt.want || d.Node != tt.node || d.NodeUID != tt.nodeUID || !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("Decide = %+v (%s), want %s for node %q uid %q, a reason with %q", d, d.Verdict, tt.want, tt.node, tt.nodeUID, tt.reason)
			}
		})
	}
}

func TestParseServiceAccounts(t *testing.T) {
	got, err := ParseServiceAccounts("kube-system:multus, other:polynet-daemon")
	if err != nil || len(got) != 2 || got[1] != "other:polynet-daemon" {
		t.Errorf("got %q, %v", got, err)
	}
	for _, bad := range []string{"", "multus", "kube-system:", ":multus", "Kube_System:multus"} {
		if _, err := ParseServiceAccounts(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}
