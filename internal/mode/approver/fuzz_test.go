package approver

import (
	"crypto/x509"
	"encoding/pem"
	"slices"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"

	"github.com/polynet-cni/polynet/internal/nodeidentity"
)

// FuzzDecide feeds Decide requests, requesters and token node names of any
// content: it must not panic, and whatever it approves must be a per-node
// certificate of the node it names, with nothing else in it, requested by that
// node's kubelet or a node-bound token of the daemon's ServiceAccount.
func FuzzDecide(f *testing.F) {
	good := csrPEM(f, &x509.CertificateRequest{Subject: subject("system:multus:node-a", "system:multus")})
	f.Add(good, "system:node:node-a", "")
	f.Add(good, "system:serviceaccount:kube-system:multus", "node-a")
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"), "system:node:node-a", "")
	f.Fuzz(func(t *testing.T, request []byte, user, tokenNode string) {
		csr := &certificatesv1.CertificateSigningRequest{Spec: certificatesv1.CertificateSigningRequestSpec{
			Request: request, SignerName: nodeidentity.SignerName, Usages: clientUsages,
			Username: user, Groups: []string{nodeidentity.KubeletGroup},
			Extra: map[string]certificatesv1.ExtraValue{nodeidentity.NodeNameExtra: {tokenNode}},
		}}
		d := Decide(csr, Policy{ServiceAccounts: []string{"kube-system:multus"}})
		if d.Verdict != Approve {
			return
		}
		block, _ := pem.Decode(request)
		req, err := x509.ParseCertificateRequest(block.Bytes)
		if err != nil {
			t.Fatalf("approved a request that does not parse: %v", err)
		}
		if req.Subject.CommonName != nodeidentity.UserName(d.Node) || !slices.Equal(req.Subject.Organization, []string{nodeidentity.Group}) ||
			len(req.DNSNames)+len(req.IPAddresses)+len(req.EmailAddresses)+len(req.URIs) > 0 {
			t.Fatalf("approved %s with alternative names %v %v %v %v for node %q", req.Subject, req.DNSNames, req.IPAddresses, req.EmailAddresses, req.URIs, d.Node)
		}
		if user != nodeidentity.KubeletUserPrefix+d.Node && !(user == "system:serviceaccount:kube-system:multus" && tokenNode == d.Node) {
			t.Fatalf("approved node %q's certificate for %q (token node %q)", d.Node, user, tokenNode)
		}
	})
}
