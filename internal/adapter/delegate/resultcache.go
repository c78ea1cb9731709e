package delegate

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/polynet-cni/polynet/internal/atomicfile"
	"github.com/polynet-cni/polynet/internal/podnet"
)

// CacheFormatLibcni is the libcni version whose result cache RewriteDefaultRoutes
// was verified against: the file name (libcni/api.go getCacheFilePath), the
// entry (cachedInfo: kind "cniCacheV1", the result under "result") and how
// CHECK and DEL read it back (getCachedResult).
//
// Why we write libcni's private cache at all: libcni v1.3.1 gives CHECK and DEL
// of a list their prevResult only from this cache. CheckNetworkList and
// DelNetworkList take no prevResult; they call the unexported getCachedResult,
// and the cache is written only by AddNetworkList and AddNetwork (the
// unexported cacheAdd): there is no API to hand libcni an edited result. The
// one way around it, running each plugin ourselves with invoke and InjectConf,
// would copy libcni's orchestration (the unexported buildOneConfig and
// injectRuntimeConfig, the version gates, disableCheck, the cache's removal on
// DEL) and still leave libcni's cache file, which GC lists through
// GetCachedAttachments, disagreeing with the pod. So the edit stays, and its
// format is pinned instead: TestLibcniCacheFormatPin fails when the module graph
// selects another libcni than this version, and
// TestRewriteDefaultRoutesThroughLibcni proves the round trip through libcni's
// public functions (AddNetworkList writes the entry; after the edit,
// GetNetworkListCachedResult, CheckNetworkList and DelNetworkList read the new
// routes). In test/e2e, TestResultCacheAfterDefaultRoute checks the libcni
// linked into the built binaries against this constant too, and proves with the
// real bridge plugin in a real netns that CHECK and DEL hand each delegate the
// routes the pod has. Bump this constant only after re-reading libcni's cache
// code.
const CacheFormatLibcni = "v1.3.1"

// cacheFile is where libcni caches an attachment's result: <cache>/results/
// <network>-<container>-<ifname> (see CacheFormatLibcni for why we edit it).
func (r *Runner) cacheFile(sb podnet.Sandbox, a podnet.Attachment) (string, error) {
	list, err := List(a.Config)
	if err != nil {
		return "", err
	}
	return filepath.Join(r.CacheDir, "results", fmt.Sprintf("%s-%s-%s", list.Name, sb.ContainerID, a.IfName)), nil
}

// RewriteDefaultRoutes edits the attachment's cached result: default routes of the
// given families (4, 6) go, and one default route via each gateway comes. Results
// of 0.3.0 and later keep routes in "routes"; 0.1.0 and 0.2.0 in "ip4"/"ip6".
// The file is replaced atomically.
func (r *Runner) RewriteDefaultRoutes(sb podnet.Sandbox, a podnet.Attachment, families []int, gateways []net.IP) error {
	path, err := r.cacheFile(sb, a)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // nothing cached: nothing CHECK or DEL could disagree with
	}
	if err != nil {
		return err
	}
	var entry map[string]json.RawMessage
	if err := json.Unmarshal(data, &entry); err != nil {
		return fmt.Errorf("cached result %s: %w", path, err)
	}
	var result map[string]json.RawMessage
	if raw, ok := entry["result"]; !ok || json.Unmarshal(raw, &result) != nil || result == nil {
		return nil
	}
	drop := map[int]bool{}
	for _, f := range families {
		drop[f] = true
	}
	if _, legacy := result["routes"]; !legacy && (result["ip4"] != nil || result["ip6"] != nil) {
		err = rewriteLegacy(result, drop, gateways)
	} else {
		result["routes"], err = rewriteRoutes(result["routes"], drop, gateways)
	}
	if err != nil {
		return fmt.Errorf("cached result %s: %w", path, err)
	}
	if entry["result"], err = json.Marshal(result); err != nil {
		return err
	}
	out, err := json.Marshal(entry)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, out, 0o600)
}

// route is the part of a cached route the edit reads; routes it keeps are copied
// as raw JSON, so their other keys (mtu, priority, table...) survive.
type route struct {
	Dst string `json:"dst"`
	GW  string `json:"gw,omitempty"`
}

// rewriteRoutes drops default routes of the dropped families from a routes list
// and appends one per gateway, keeping every other route byte for byte.
func rewriteRoutes(raw json.RawMessage, drop map[int]bool, gateways []net.IP) (json.RawMessage, error) {
	var routes []json.RawMessage
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &routes); err != nil {
			return nil, err
		}
	}
	out := make([]json.RawMessage, 0, len(routes)+len(gateways))
	for _, rr := range routes {
		var r route
		if err := json.Unmarshal(rr, &r); err != nil {
			return nil, err
		}
		if fam, isDefault := defaultFamily(r.Dst); isDefault && drop[fam] {
			continue
		}
		out = append(out, rr)
	}
	for _, gw := range gateways {
		dst := "0.0.0.0/0"
		if gw.To4() == nil {
			dst = "::/0"
		}
		b, err := json.Marshal(route{Dst: dst, GW: gw.String()})
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return json.Marshal(out)
}

// rewriteLegacy applies the same edit to a 0.1.0/0.2.0 result's ip4 and ip6.
func rewriteLegacy(result map[string]json.RawMessage, drop map[int]bool, gateways []net.IP) error {
	for key, fam := range map[string]int{"ip4": 4, "ip6": 6} {
		raw, ok := result[key]
		if !ok {
			continue
		}
		var ipc map[string]json.RawMessage
		if err := json.Unmarshal(raw, &ipc); err != nil || ipc == nil {
			continue
		}
		var gws []net.IP
		for _, gw := range gateways {
			if (gw.To4() != nil) == (fam == 4) {
				gws = append(gws, gw)
			}
		}
		routes, err := rewriteRoutes(ipc["routes"], drop, gws)
		if err != nil {
			return err
		}
		ipc["routes"] = routes
		if result[key], err = json.Marshal(ipc); err != nil {
			return err
		}
	}
	return nil
}

// defaultFamily reports whether dst is a default route and of which family.
func defaultFamily(dst string) (int, bool) {
	_, n, err := net.ParseCIDR(dst)
	if err != nil {
		return 0, false
	}
	ones, _ := n.Mask.Size()
	if ones != 0 {
		return 0, false
	}
	if n.IP.To4() != nil {
		return 4, true
	}
	return 6, true
}
