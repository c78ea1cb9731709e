package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

// TestStartClaimsWithoutDRA: on an API server that does not serve
// resource.k8s.io/v1 the daemon goes on without DRA (an untyped nil claim
// source) and says so in one log line.
func TestStartClaimsWithoutDRA(t *testing.T) {
	dir := t.TempDir()
	api := newMiniAPI(t, false)
	cfg, err := clientcmd.BuildConfigFromFlags("", api.kubeconfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	conf := daemonConf(t, dir, "", "")
	var logs bytes.Buffer
	claims, err := startClaims(context.Background(), cfg, conf, "node1", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil || claims != nil {
		t.Fatalf("startClaims = %v, %v; want nil, nil", claims, err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "does not serve resource.k8s.io/v1") {
		t.Errorf("log %q, want one line saying DRA is not served", logs.String())
	}
}
