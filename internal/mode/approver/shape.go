package approver

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"

	"github.com/polynet-cni/polynet/internal/nodeidentity"
)

// Verdict is what the approver does with one CertificateSigningRequest.
type Verdict int

const (
	// Ignore leaves the request to others: it is not a per-node request, it is
	// decided already, or its requester is not one the approver vouches for.
	Ignore Verdict = iota
	// Approve approves it, once its node is found to exist.
	Approve
	// Deny denies it: it claims a per-node identity (the signer and a CN
	// beginning system:multus:) but asks for more or other than one, so no
	// approver should sign it and its requester learns at once.
	Deny
)

func (v Verdict) String() string {
	return [...]string{"ignore", "approve", "deny"}[v]
}

// Decision is a verdict, why, and for an approval the node the certificate
// names, which must exist (with NodeUID, when the requester's token names
// one).
type Decision struct {
	Verdict Verdict
	Reason  string
	Node    string
	NodeUID string
}

// Policy is whom the approver vouches for besides the node's kubelet.
type Policy struct {
	// ServiceAccounts are the daemon's ServiceAccounts, "namespace:name". A
	// request of theirs is approved only when its token is bound to a pod on
	// the node it names (the API server adds the node to such a token).
	ServiceAccounts []string
}

// allowedUsages are the key usages a per-node certificate may have: client
// auth, with the digital signature client-go asks for, and key encipherment,
// which it adds for an RSA key.
var allowedUsages = []certificatesv1.KeyUsage{
	certificatesv1.UsageClientAuth, certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment,
}

// Decide judges a request by its shape and requester alone; the node's
// existence is the caller's to check.
func Decide(csr *certificatesv1.CertificateSigningRequest, p Policy) Decision {
	if csr.Spec.SignerName != nodeidentity.SignerName {
		return Decision{Reason: "signer " + csr.Spec.SignerName + " is not " + nodeidentity.SignerName}
	}
	for _, c := range csr.Status.Conditions {
		switch c.Type {
		case certificatesv1.CertificateApproved, certificatesv1.CertificateDenied, certificatesv1.CertificateFailed:
			return Decision{Reason: "already " + strings.ToLower(string(c.Type))}
		}
	}
	block, _ := pem.Decode(csr.Spec.Request)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return Decision{Reason: "the request is not a PEM CERTIFICATE REQUEST"}
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return Decision{Reason: "the request does not parse: " + err.Error()}
	}
	if !strings.HasPrefix(req.Subject.CommonName, nodeidentity.UserPrefix) {
		return Decision{Reason: fmt.Sprintf("CN %q is not a per-node identity", req.Subject.CommonName)}
	}
	node, reason := checkShape(req, csr.Spec.Usages)
	if reason != "" {
		return Decision{Verdict: Deny, Reason: reason}
	}
	uid, reason := checkRequester(csr.Spec, node, p)
	if reason != "" {
		return Decision{Reason: reason}
	}
	return Decision{Verdict: Approve, Reason: "a per-node client certificate requested by " + csr.Spec.Username, Node: node, NodeUID: uid}
}

// checkShape returns the node a request claiming a per-node identity names,
// or why the request is not exactly one: signed by its key, subject CN and O
// only, no alternative names, client usages only.
func checkShape(req *x509.CertificateRequest, usages []certificatesv1.KeyUsage) (node, reason string) {
	if err := req.CheckSignature(); err != nil {
		return "", "the request's signature does not verify: " + err.Error()
	}
	node, ok := nodeidentity.NodeOf(req.Subject.CommonName)
	if !ok {
		return "", fmt.Sprintf("CN %q does not name a valid node", req.Subject.CommonName)
	}
	if !slices.Equal(req.Subject.Organization, []string{nodeidentity.Group}) {
		return "", fmt.Sprintf("O is %q, want exactly [%q]", req.Subject.Organization, nodeidentity.Group)
	}
	// Names holds every attribute of the subject: the CN and the one O only.
	if len(req.Subject.Names) != 2 {
		return "", fmt.Sprintf("the subject %q has attributes besides CN and O", req.Subject.String())
	}
	if len(req.DNSNames)+len(req.IPAddresses)+len(req.EmailAddresses)+len(req.URIs) > 0 {
		return "", "the request has subject alternative names"
	}
	if !slices.Contains(usages, certificatesv1.UsageClientAuth) {
		return "", "the usages lack client auth"
	}
	for _, u := range usages {
		if !slices.Contains(allowedUsages, u) {
			return "", fmt.Sprintf("usage %q is not one of a client certificate's", u)
		}
	}
	return node, ""
}

// checkRequester returns the node UID the requester's token names, if any, or
// why the approver does not vouch for the requester: it must be node's kubelet,
// or a ServiceAccount of p whose token is bound to a pod on node.
func checkRequester(spec certificatesv1.CertificateSigningRequestSpec, node string, p Policy) (nodeUID, reason string) {
	if spec.Username == nodeidentity.KubeletUserPrefix+node {
		if !slices.Contains(spec.Groups, nodeidentity.KubeletGroup) {
			return "", fmt.Sprintf("requester %s is not in group %s", spec.Username, nodeidentity.KubeletGroup)
		}
		return "", ""
	}
	sa, ok := strings.CutPrefix(spec.Username, "system:serviceaccount:")
	if !ok || !slices.Contains(p.ServiceAccounts, sa) {
		return "", fmt.Sprintf("requester %s is neither node %s's kubelet nor a ServiceAccount of the daemon", spec.Username, node)
	}
	names := spec.Extra[nodeidentity.NodeNameExtra]
	if !slices.Equal(names, certificatesv1.ExtraValue{node}) {
		return "", fmt.Sprintf("requester %s's token is bound to node %q, not %q", spec.Username, strings.Join(names, ","), node)
	}
	if uids := spec.Extra[nodeidentity.NodeUIDExtra]; len(uids) == 1 {
		return uids[0], ""
	}
	return "", ""
}
