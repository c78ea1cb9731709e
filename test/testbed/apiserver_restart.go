package testbed

import (
	"fmt"
	"net/http"
	"time"

	"k8s.io/client-go/rest"
)

// StopAPIServer ends the control plane's kube-apiserver by its PID and leaves
// etcd running, as an API server outage does: clients get connection refused.
func (cp *ControlPlane) StopAPIServer() {
	cp.APIServer.Stop(10 * time.Second)
}

// RestartAPIServer starts the kube-apiserver again exactly as it first ran: the
// same binary and arguments, so the same port, etcd, certificates, ServiceAccount
// keys and audit log (the new process appends to it). Tokens minted before stay
// valid. It waits until the server is ready.
func (cp *ControlPlane) RestartAPIServer() error {
	old := cp.APIServer
	if exited, _ := old.Exited(); !exited {
		return fmt.Errorf("kube-apiserver (PID %d) is still running: StopAPIServer first", old.PID())
	}
	p, err := StartProcess(old.Name, old.cmd.Path, old.cmd.Args[1:], old.cmd.Env, old.Log)
	if err != nil {
		return err
	}
	cp.APIServer = p
	client, err := rest.HTTPClientFor(cp.admin)
	if err != nil {
		return err
	}
	client.Timeout = 2 * time.Second
	return p.waitFor(90*time.Second, func() error {
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
