package testbed

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Signer is kube-controller-manager running its CSR signing controllers only,
// beside a control plane, with the control plane's CA (the one the API server
// trusts for client certificates) as the cluster signing CA: it issues the
// certificates of approved CertificateSigningRequests of the Kubernetes
// signers, kubernetes.io/kube-apiserver-client among them.
type Signer struct {
	Process *Process
	Dir     string
	// Duration is --cluster-signing-duration: the longest life the signer
	// gives. It gives NotAfter = now + min(Duration, the CSR's
	// expirationSeconds, at least 10 min), and NotBefore 5 min in the past.
	Duration time.Duration
}

// StartSigner starts a signer for one test beside cp, waits until it has
// issued a certificate of its own probe request, and stops it when the test
// ends. duration is --cluster-signing-duration; zero means kube's default.
func StartSigner(tb testing.TB, cp *ControlPlane, duration time.Duration) *Signer {
	tb.Helper()
	b := Require(tb)
	s := &Signer{Dir: tb.TempDir(), Duration: duration}
	TailsOnFailure(tb, "signer "+s.Dir, func() []*Process { return []*Process{s.Process} })
	if err := s.start(b, cp); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Process.Stop(10 * time.Second) })
	if err := s.Process.waitFor(StartTimeout, func() error { return probeSigner(cp) }); err != nil {
		tb.Fatal(err)
	}
	return s
}

func (s *Signer) start(b Bed, cp *ControlPlane) error {
	keyDER, err := x509.MarshalECPrivateKey(cp.pki.caKey.(*ecdsa.PrivateKey))
	if err != nil {
		return err
	}
	caCert, caKey := filepath.Join(s.Dir, "ca.crt"), filepath.Join(s.Dir, "ca.key")
	if err := os.WriteFile(caCert, cp.pki.caPEM, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(caKey, pemBlock("EC PRIVATE KEY", keyDER), 0o600); err != nil {
		return err
	}
	// The signer writes certificates into requests' status: an administrator,
	// so that no controller ServiceAccounts (and no token controller) are needed.
	cfg, err := cp.certConfig("system:kube-controller-manager", "system:masters")
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(s.Dir, "controller-manager.kubeconfig")
	if err := WriteKubeconfig(kubeconfig, cfg); err != nil {
		return err
	}
	args := []string{
		"--kubeconfig=" + kubeconfig, "--authentication-kubeconfig=" + kubeconfig, "--authorization-kubeconfig=" + kubeconfig,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0",
		"--controllers=csrsigning",
		"--cluster-signing-cert-file=" + caCert, "--cluster-signing-key-file=" + caKey,
	}
	if s.Duration > 0 {
		args = append(args, "--cluster-signing-duration="+s.Duration.String())
	}
	s.Process, err = StartProcess("kube-controller-manager (csrsigning)", b.KubeControllerManager(), args, os.Environ(),
		filepath.Join(s.Dir, "kube-controller-manager.log"))
	return err
}

// probeSigner asks for a client certificate, approves the request as an
// administrator, and waits, within one probe's bound, until the signer has
// issued a certificate that the control plane's CA verifies.
func probeSigner(cp *ControlPlane) error {
	ctx, cancel := context.WithTimeout(context.Background(), healthProbeTimeout)
	defer cancel()
	kc, err := kubernetes.NewForConfig(cp.AdminConfig())
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "polynet-signer-probe"}}, key)
	if err != nil {
		return err
	}
	csrs := kc.CertificatesV1().CertificateSigningRequests()
	csr, err := csrs.Create(ctx, &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "polynet-signer-probe-"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request: pemBlock("CERTIFICATE REQUEST", der), SignerName: certificatesv1.KubeAPIServerClientSignerName,
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("probe CSR: %w", err)
	}
	defer csrs.Delete(context.Background(), csr.Name, metav1.DeleteOptions{})
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "SignerProbe",
	})
	if _, err := csrs.UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("approving the probe CSR: %w", err)
	}
	for {
		got, err := csrs.Get(ctx, csr.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("probe CSR: %w", err)
		}
		if len(got.Status.Certificate) > 0 {
			return cp.VerifyClientCertificate(got.Status.Certificate)
		}
		select {
		case <-ctx.Done():
			return errors.New("the probe CSR was approved but not signed yet")
		case <-time.After(pollInterval):
		}
	}
}

// VerifyClientCertificate checks that a PEM certificate is a client
// certificate of the control plane's CA, valid now, and returns nil if it is.
func (cp *ControlPlane) VerifyClientCertificate(certPEM []byte) error {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return errors.New("not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AddCert(cp.pki.caCert)
	_, err = cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return err
}
