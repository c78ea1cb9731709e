// Command multus-cert-approver approves the CertificateSigningRequests of the
// thick daemon's per-node client certificates (perNodeCertificate in
// daemon-config.json), and only those: see internal/mode/approver. It runs as
// an optional Deployment (deployments/multus-cert-approver.yml) beside
// kube-controller-manager, whose signer then issues the certificates.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/polynet-cni/polynet/internal/buildinfo"
	"github.com/polynet-cni/polynet/internal/logging"
	"github.com/polynet-cni/polynet/internal/mode/approver"
)

func main() {
	if buildinfo.PrintVersionFlag(os.Args, "multus-cert-approver", os.Stdout) {
		return
	}
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "multus-cert-approver: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig file; empty means the pod's ServiceAccount (in-cluster)")
	accounts := flag.String("service-accounts", "kube-system:multus",
		"the daemon's ServiceAccounts whose node-bound tokens may request their node's certificate, namespace:name[,namespace:name...]")
	resync := flag.Duration("resync", 10*time.Minute, "how often every pending request is judged again")
	level := flag.String("log-level", "verbose", "error, verbose or debug")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see -help)", flag.Arg(0))
	}
	sas, err := approver.ParseServiceAccounts(*accounts)
	if err != nil {
		return fmt.Errorf("-service-accounts: %w", err)
	}
	log, closer, err := logging.New(logging.Options{Level: *level, ToStderr: true})
	if err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	defer closer.Close()
	var cfg *rest.Config
	if *kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", *kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return fmt.Errorf("kubernetes credentials: %w", err)
	}
	cfg.UserAgent = "multus-cert-approver-polynet"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return approver.Run(ctx, approver.Options{
		Client: client, Policy: approver.Policy{ServiceAccounts: sas}, Log: log, Resync: *resync,
	}, 2*time.Minute)
}
