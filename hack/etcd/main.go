// Command etcd is the etcd server, built from the Go module proxy for the test bed.
// The proxy does not serve the etcd root module that holds upstream's main package,
// so this wrapper calls the server's entry point directly.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
