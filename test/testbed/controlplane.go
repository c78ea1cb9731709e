package testbed

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	nadclient "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// ControlPlane is a real etcd and kube-apiserver listening on loopback, with RBAC on
// and the NetworkAttachmentDefinition CRD of deployments/ installed.
type ControlPlane struct {
	Dir string
	// URL is the apiserver's address, https://127.0.0.1:<port>.
	URL       string
	Etcd      *Process
	APIServer *Process

	pki   *pki
	admin *rest.Config
	// forNode makes the apiserver fit for a real node (LaunchNodeControlPlane).
	forNode bool
}

// crdManifest is the project's own NAD CRD, which the control plane installs.
const crdManifest = "deployments/crd-network-attachment-definition.yaml"

// StartControlPlane starts a control plane for one test and stops it when the test
// ends.
func StartControlPlane(tb testing.TB) *ControlPlane {
	tb.Helper()
	b := Require(tb)
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	cp, err := LaunchControlPlane(ctx, b, tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cp.Stop)
	cp.tailsOnFailure(tb)
	return cp
}

var (
	sharedMu sync.Mutex
	shared   *ControlPlane
)

// SharedControlPlane returns the control plane that all tests of this test binary
// share, starting it on first use; Main stops it after the last test. Tests that
// share it keep apart by working in namespaces of their own. A test that fails
// prints the ends of its logs.
func SharedControlPlane(tb testing.TB) *ControlPlane {
	tb.Helper()
	b := Require(tb)
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil {
		dir, err := makeTempDir("controlplane")
		if err != nil {
			tb.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
		defer cancel()
		cp, err := LaunchControlPlane(ctx, b, dir)
		if err != nil {
			os.RemoveAll(dir)
			tb.Fatal(err)
		}
		shared = cp
	}
	shared.tailsOnFailure(tb)
	return shared
}

// tailsOnFailure makes tb print the ends of etcd's and the apiserver's logs if it
// fails.
func (cp *ControlPlane) tailsOnFailure(tb testing.TB) {
	TailsOnFailure(tb, "control plane "+cp.Dir, func() []*Process { return []*Process{cp.Etcd, cp.APIServer} })
}

// healthProbeTimeout bounds one health check of a starting process. A loaded
// machine can take seconds to answer; a probe that times out is simply retried
// until StartTimeout.
const healthProbeTimeout = 10 * time.Second

// stopShared stops the shared control plane and removes its folder.
func stopShared() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		shared.Stop()
		os.RemoveAll(shared.Dir)
		shared = nil
	}
}

// LaunchControlPlane starts etcd and kube-apiserver with their files in dir, waits
// until the apiserver is ready and installs the CRD. The caller calls Stop.
func LaunchControlPlane(ctx context.Context, b Bed, dir string) (cp *ControlPlane, err error) {
	return launchControlPlane(ctx, b, &ControlPlane{Dir: dir})
}

// LaunchNodeControlPlane is LaunchControlPlane for a cluster with a real node
// (LaunchNode): ServiceAccount admission on (the controller-manager makes the
// default accounts), and the apiserver reaches the kubelet on its InternalIP
// with a client certificate, for exec and logs.
func LaunchNodeControlPlane(ctx context.Context, b Bed, dir string) (*ControlPlane, error) {
	return launchControlPlane(ctx, b, &ControlPlane{Dir: dir, forNode: true})
}

func launchControlPlane(ctx context.Context, b Bed, cp *ControlPlane) (_ *ControlPlane, err error) {
	defer func() {
		if err != nil {
			cp.Stop()
		}
	}()
	if cp.pki, err = newPKI(); err != nil {
		return nil, fmt.Errorf("control plane CA: %w", err)
	}
	etcdURL, err := cp.startEtcd(b)
	if err != nil {
		return nil, err
	}
	if err := cp.startAPIServer(b, etcdURL); err != nil {
		return nil, err
	}
	if cp.forNode {
		// A real node's cluster gets the CRD from the manifest applied to it,
		// as a user's does.
		return cp, nil
	}
	if err := InstallCRD(ctx, cp.admin, filepath.Join(b.Root, crdManifest)); err != nil {
		return nil, err
	}
	return cp, nil
}

func (cp *ControlPlane) startEtcd(b Bed) (string, error) {
	client, peer, err := freePorts(2)
	if err != nil {
		return "", err
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(client)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peer)
	args := []string{
		"--name=polynet-test",
		"--data-dir=" + filepath.Join(cp.Dir, "etcd"),
		"--listen-client-urls=" + clientURL,
		"--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=polynet-test=" + peerURL,
		"--unsafe-no-fsync",
		"--log-level=warn",
	}
	cp.Etcd, err = StartProcess("etcd", b.Etcd(), args, os.Environ(), filepath.Join(cp.Dir, "etcd.log"))
	if err != nil {
		return "", err
	}
	httpc := &http.Client{Timeout: healthProbeTimeout}
	err = cp.Etcd.waitFor(StartTimeout, func() error {
		resp, err := httpc.Get(clientURL + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("etcd /health: %s", resp.Status)
		}
		return nil
	})
	return clientURL, err
}

func (cp *ControlPlane) startAPIServer(b Bed, etcdURL string) error {
	port, _, err := freePorts(1)
	if err != nil {
		return err
	}
	files := map[string][]byte{"ca.crt": cp.pki.caPEM}
	serving, servingKey, err := cp.pki.issue(pkix.Name{CommonName: "kube-apiserver"}, x509.ExtKeyUsageServerAuth,
		// 10.0.0.1 is the kubernetes Service's address, which in-cluster clients
		// of a real node dial (KubeNode sends it to loopback).
		[]net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 0, 0, 1)}, []string{"localhost", "kubernetes.default.svc"})
	if err != nil {
		return err
	}
	files["serving.crt"], files["serving.key"] = serving, servingKey
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(cp.Dir, name), data, 0o600); err != nil {
			return err
		}
	}
	auditPolicy := filepath.Join(cp.Dir, "audit-policy.yaml")
	if err := os.WriteFile(auditPolicy, []byte(auditPolicyYAML), 0o600); err != nil {
		return err
	}
	saKey, saPub := filepath.Join(cp.Dir, "sa.key"), filepath.Join(cp.Dir, "sa.pub")
	if err := serviceAccountKey(saKey, saPub); err != nil {
		return err
	}
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		// With a loopback advertise address the apiserver refuses to start unless
		// it leaves the kubernetes Service's endpoints alone.
		"--endpoint-reconciler-type=none",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + filepath.Join(cp.Dir, "certs"),
		"--tls-cert-file=" + filepath.Join(cp.Dir, "serving.crt"),
		"--tls-private-key-file=" + filepath.Join(cp.Dir, "serving.key"),
		"--client-ca-file=" + filepath.Join(cp.Dir, "ca.crt"),
		"--authorization-mode=RBAC",
		"--service-account-key-file=" + saPub,
		"--service-account-signing-key-file=" + saKey,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--allow-privileged=true",
		"--profiling=false",
		// Every request is audited, so tests can prove what an identity did.
		"--audit-policy-file=" + auditPolicy,
		"--audit-log-path=" + filepath.Join(cp.Dir, "audit.log"),
		"--enable-priority-and-fairness=false",
	}
	if cp.forNode {
		kubeletClient, kubeletKey, err := cp.pki.issue(pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}},
			x509.ExtKeyUsageClientAuth, nil, nil)
		if err != nil {
			return err
		}
		for name, data := range map[string][]byte{"kubelet-client.crt": kubeletClient, "kubelet-client.key": kubeletKey} {
			if err := os.WriteFile(filepath.Join(cp.Dir, name), data, 0o600); err != nil {
				return err
			}
		}
		for i, a := range args {
			if a == "--authorization-mode=RBAC" {
				args[i] = "--authorization-mode=Node,RBAC"
			}
		}
		args = append(args, "--enable-admission-plugins=NodeRestriction",
			"--kubelet-preferred-address-types=InternalIP",
			"--kubelet-client-certificate="+filepath.Join(cp.Dir, "kubelet-client.crt"),
			"--kubelet-client-key="+filepath.Join(cp.Dir, "kubelet-client.key"),
			"--kubelet-certificate-authority="+filepath.Join(cp.Dir, "ca.crt"))
	} else {
		// No controller-manager makes default ServiceAccounts, so pods could not
		// be created under the ServiceAccount admission plugin.
		args = append(args, "--disable-admission-plugins=ServiceAccount")
	}
	cp.APIServer, err = StartProcess("kube-apiserver", b.KubeAPIServer(), args, os.Environ(), filepath.Join(cp.Dir, "kube-apiserver.log"))
	if err != nil {
		return err
	}
	cp.URL = "https://127.0.0.1:" + strconv.Itoa(port)
	if cp.admin, err = cp.certConfig("polynet-admin", "system:masters"); err != nil {
		return err
	}
	// The tests' own requests go out as fast as the tests make them: client-go's
	// default limiter (5 a second, bursts of 10) would hold a test that creates
	// many objects behind its own earlier requests, in the client, unseen by the
	// server's logs. One request waits up to CallTimeout for a loaded apiserver.
	cp.admin.QPS, cp.admin.Burst = -1, 0
	cp.admin.Timeout = CallTimeout
	return cp.waitAPIServerReady(cp.APIServer)
}

// waitAPIServerReady waits until the apiserver process p answers /readyz with 200,
// for up to StartTimeout, and fails at once if p exits. The health check
// authenticates with a certificate of our own CA and checks the server's against
// it, so it proves it talks to the server started here.
func (cp *ControlPlane) waitAPIServerReady(p *Process) error {
	client, err := rest.HTTPClientFor(cp.admin)
	if err != nil {
		return err
	}
	client.Timeout = healthProbeTimeout
	return p.waitFor(StartTimeout, func() error {
		resp, err := client.Get(cp.URL + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s", resp.Status)
		}
		return nil
	})
}

// Stop ends the apiserver, then etcd, by PID.
func (cp *ControlPlane) Stop() {
	if cp.APIServer != nil {
		cp.APIServer.Stop(10 * time.Second)
	}
	if cp.Etcd != nil {
		cp.Etcd.Stop(10 * time.Second)
	}
}

// AdminConfig returns a client config of a cluster administrator (system:masters).
func (cp *ControlPlane) AdminConfig() *rest.Config {
	return rest.CopyConfig(cp.admin)
}

// AdminClients returns the core and NAD clientsets of the administrator.
func (cp *ControlPlane) AdminClients(tb testing.TB) (kubernetes.Interface, nadclient.Interface) {
	tb.Helper()
	kc, err := kubernetes.NewForConfig(cp.AdminConfig())
	if err != nil {
		tb.Fatal(err)
	}
	nc, err := nadclient.NewForConfig(cp.AdminConfig())
	if err != nil {
		tb.Fatal(err)
	}
	return kc, nc
}

// freePorts asks the kernel for n free loopback ports. Inside a node namespace made
// by Main nothing else listens anyway; outside one, this avoids other processes of
// a shared machine.
func freePorts(n int) (first, second int, err error) {
	ports := make([]int, 0, 2)
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, 0, fmt.Errorf("finding a free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	ports = append(ports, 0)
	return ports[0], ports[1], nil
}
