package daemon

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/polynet-cni/polynet/internal/config"
	"github.com/polynet-cni/polynet/internal/mode/socketapi"
)

// probeTimeout bounds a probe inside the 5 s timeoutSeconds the DaemonSet gives
// its exec probes.
const probeTimeout = 4 * time.Second

// Probe asks the daemon running with conf for /healthz or /readyz over its
// socket: the kubelet's httpGet probes cannot reach a unix socket, so the
// DaemonSet's exec probes run `multus-daemon -probe readyz`.
func Probe(ctx context.Context, conf *config.DaemonConf, endpoint string) error {
	path := map[string]string{"healthz": socketapi.PathHealthz, "readyz": socketapi.PathReadyz}[endpoint]
	if path == "" {
		return fmt.Errorf("-probe %q: want healthz or readyz", endpoint)
	}
	c := socketapi.Client{Socket: socketapi.SocketPath(conf.SocketDir), ConnectTimeout: probeTimeout, RequestTimeout: probeTimeout}
	status, err := c.Get(ctx, path)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("%s answered %d %s", path, status, http.StatusText(status))
	}
	return nil
}
