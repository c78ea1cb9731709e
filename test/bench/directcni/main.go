// Command directcni is the floor of the ADD+DEL benchmarks: it is invoked by the
// runtime exactly as the meta-plugin is (the CNI environment and a configuration
// on stdin) and calls the same delegates through libcni, with nothing else: no
// Kubernetes, no attachment records, no status. So the benchmarks compare three
// process trees started the same way, and the difference to this one is what the
// meta-plugin adds.
//
// Its stdin names the networks in order, each with the interface it gets:
//
//	{"binDir":"/opt/cni/bin","cacheDir":"/var/lib/cni/direct",
//	 "networks":[{"ifName":"eth0","conf":{...conflist or conf...}}, ...]}
//
// ADD attaches them in order and prints the first network's result; DEL detaches
// them in reverse order. Plugins are found in binDir, then in CNI_PATH.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

// input is what directcni reads from stdin.
type input struct {
	BinDir   string    `json:"binDir"`
	CacheDir string    `json:"cacheDir"`
	Networks []network `json:"networks"`
}

// network is one attachment: a configuration (a list or a single plugin's) and
// the interface name it gets in the pod.
type network struct {
	IfName string          `json:"ifName"`
	Conf   json.RawMessage `json:"conf"`
}

func main() {
	if err := run(context.Background(), os.Getenv, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "directcni:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdin io.Reader, stdout io.Writer) error {
	var in input
	if err := json.NewDecoder(stdin).Decode(&in); err != nil {
		return fmt.Errorf("decoding stdin: %w", err)
	}
	lists := make([]*libcni.NetworkConfigList, len(in.Networks))
	for i, n := range in.Networks {
		list, err := confList(n.Conf)
		if err != nil {
			return fmt.Errorf("network %d (%s): %w", i, n.IfName, err)
		}
		lists[i] = list
	}
	paths := []string{in.BinDir}
	if p := getenv("CNI_PATH"); p != "" {
		paths = append(paths, filepath.SplitList(p)...)
	}
	cni := libcni.NewCNIConfigWithCacheDir(paths, in.CacheDir, nil)
	rt := func(i int) *libcni.RuntimeConf {
		return &libcni.RuntimeConf{
			ContainerID: getenv("CNI_CONTAINERID"),
			NetNS:       getenv("CNI_NETNS"),
			IfName:      in.Networks[i].IfName,
			Args:        cniArgs(getenv("CNI_ARGS")),
		}
	}
	switch cmd := getenv("CNI_COMMAND"); cmd {
	case "ADD":
		var first types.Result
		for i, list := range lists {
			res, err := cni.AddNetworkList(ctx, list, rt(i))
			if err != nil {
				return fmt.Errorf("adding network %q: %w", list.Name, err)
			}
			if i == 0 {
				first = res
			}
		}
		if first == nil {
			return nil
		}
		return first.PrintTo(stdout)
	case "DEL":
		for i := len(lists) - 1; i >= 0; i-- {
			if err := cni.DelNetworkList(ctx, lists[i], rt(i)); err != nil {
				return fmt.Errorf("deleting network %q: %w", lists[i].Name, err)
			}
		}
		return nil
	default:
		return fmt.Errorf("CNI_COMMAND %q: only ADD and DEL are measured", cmd)
	}
}

// confList parses a configuration list, or a single plugin's configuration
// wrapped in a list of one, as runtimes accept both.
func confList(conf []byte) (*libcni.NetworkConfigList, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(conf, &keys); err != nil {
		return nil, err
	}
	if _, ok := keys["plugins"]; !ok {
		wrapped, err := json.Marshal(map[string]any{
			"name": keys["name"], "cniVersion": keys["cniVersion"], "plugins": []json.RawMessage{conf},
		})
		if err != nil {
			return nil, err
		}
		conf = wrapped
	}
	return libcni.NetworkConfFromBytes(conf)
}

// cniArgs splits CNI_ARGS ("K=V;K=V") into libcni's pairs.
func cniArgs(s string) [][2]string {
	var out [][2]string
	for _, kv := range strings.Split(s, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out = append(out, [2]string{k, v})
		}
	}
	return out
}
