package e2e

import (
	"errors"
	"fmt"
	"math"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/polynet-cni/polynet/test/testbed"
)

// requireShaping skips the test, naming the missing kernel feature, when this
// kernel cannot do what the bandwidth plugin does: an ifb device, a tbf qdisc,
// an ingress qdisc and a u32 filter with a mirred redirect. It tries each, in a
// namespace of its own, with the calls the plugin makes.
func requireShaping(t *testing.T) {
	t.Helper()
	testbed.Require(t)
	probe := testbed.NewNetNS(t)
	var missing string
	err := probe.Do(func() error {
		if err := netlink.LinkAdd(&netlink.Ifb{LinkAttrs: netlink.LinkAttrs{Name: "ifbprobe"}}); err != nil {
			missing = "ifb devices (CONFIG_IFB)"
			return err
		}
		ifb, err := netlink.LinkByName("ifbprobe")
		if err != nil {
			return err
		}
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "vprobe0"}, PeerName: "vprobe1"}
		if err := netlink.LinkAdd(veth); err != nil {
			missing = "veth devices (CONFIG_VETH)"
			return err
		}
		host, err := netlink.LinkByName("vprobe0")
		if err != nil {
			return err
		}
		if err := netlink.QdiscAdd(&netlink.Tbf{
			QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifb.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
			Rate:       125000, Limit: 10000, Buffer: 100000,
		}); err != nil {
			missing = "the tbf qdisc (CONFIG_NET_SCH_TBF)"
			return err
		}
		ingress := &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: host.Attrs().Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_INGRESS}}
		if err := netlink.QdiscAdd(ingress); err != nil {
			missing = "the ingress qdisc (CONFIG_NET_SCH_INGRESS)"
			return err
		}
		if err := netlink.FilterAdd(&netlink.U32{
			FilterAttrs: netlink.FilterAttrs{LinkIndex: host.Attrs().Index, Parent: ingress.Handle, Priority: 1, Protocol: syscall.ETH_P_ALL},
			ClassId:     netlink.MakeHandle(1, 1),
			RedirIndex:  ifb.Attrs().Index,
			Actions:     []netlink.Action{&netlink.MirredAction{MirredAction: netlink.TCA_EGRESS_REDIR, Ifindex: ifb.Attrs().Index}},
		}); err != nil {
			missing = "u32 filters with mirred redirects (CONFIG_NET_CLS_U32, CONFIG_NET_ACT_MIRRED)"
			return err
		}
		return nil
	})
	if err != nil {
		if missing == "" {
			t.Fatalf("probing the kernel's traffic shaping: %v", err)
		}
		t.Skipf("this kernel lacks %s, which the bandwidth plugin needs: %v", missing, err)
	}
}

// tbfOf returns the root tbf qdisc of a link in the current namespace.
func tbfOf(t *testing.T, link netlink.Link) *netlink.Tbf {
	t.Helper()
	qdiscs, err := netlink.QdiscList(link)
	if err != nil {
		t.Fatalf("qdiscs of %s: %v", link.Attrs().Name, err)
	}
	for _, q := range qdiscs {
		if tbf, ok := q.(*netlink.Tbf); ok && tbf.Parent == netlink.HANDLE_ROOT {
			return tbf
		}
	}
	t.Fatalf("%s has no root tbf qdisc: %v", link.Attrs().Name, qdiscs)
	return nil
}

// checkShaper asserts that a tbf shapes at rateBits bits/s with a burst of
// burstBits bits. The bandwidth plugin (v1.10.0, createTBF) gives the kernel
// bytes: rate = rateBits/8 bytes/s, and the burst as the time it takes to send
// burstBits/8 bytes at that rate, in ticks (Buffer); Limit is 25 ms of rate
// plus the burst, in bytes. The burst is read back from Buffer the same way.
func checkShaper(t *testing.T, what string, tbf *netlink.Tbf, rateBits, burstBits uint64) {
	t.Helper()
	rate, burst := rateBits/8, burstBits/8
	if tbf.Rate != rate {
		t.Errorf("%s: tbf rate %d bytes/s = %d bits/s, want %d bits/s", what, tbf.Rate, tbf.Rate*8, rateBits)
	}
	gotBurst := uint64(math.Round(float64(tbf.Buffer) / netlink.TickInUsec() * float64(tbf.Rate) / netlink.TIME_UNITS_PER_SEC))
	if gotBurst != burst {
		t.Errorf("%s: tbf burst %d bytes = %d bits (buffer %d ticks), want %d bits", what, gotBurst, gotBurst*8, tbf.Buffer, burstBits)
	}
	if limit := uint32(float64(rate)*25000/netlink.TIME_UNITS_PER_SEC) + uint32(burst); tbf.Limit != limit {
		t.Errorf("%s: tbf limit %d bytes, want %d (25 ms at the rate plus the burst)", what, tbf.Limit, limit)
	}
}

// TestBandwidthShaper: the bandwidth a pod's selection requests (R-4.1.2.1.8,
// the NPWG runtime configuration "bandwidth") reaches the real bandwidth
// plugin chained on a secondary network (capabilities: bandwidth), and the
// shaper the kernel holds is what was asked for, read back with netlink:
// ingress is a tbf at the root of the host-side veth; egress is an ingress
// qdisc on that veth whose u32 filter redirects to an ifb device, with a tbf
// at the root of the ifb. Rates and bursts are compared in the plugin's units
// (bits/s and bits) after its conversions. DEL removes the ifb, and nothing
// is left on the node (CheckLeaks).
func TestBandwidthShaper(t *testing.T) {
	requireShaping(t)
	const (
		ingressRate, ingressBurst = 8_000_000, 800_000    // 1 MB/s, 100 kB
		egressRate, egressBurst   = 16_000_000, 3_200_000 // 2 MB/s, 400 kB
	)
	modes(t, func(t *testing.T) {
		for _, v := range []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
			t.Run(v, func(t *testing.T) {
				e := newEnv(t)
				br := fmt.Sprintf("bwb%d", e.idx)
				t.Cleanup(func() { deleteLink(t, br) })
				e.nad("shaped", fmt.Sprintf(`{"cniVersion":%q,"name":"shaped","plugins":[
				{"type":"bridge","bridge":%q,"ipam":{"type":"host-local","subnet":"172.27.%d.0/24","dataDir":%q}},
				{"type":"bandwidth","capabilities":{"bandwidth":true}}]}`, v, br, e.idx%250, e.dataDir), nil)
				_, sb, netns := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": fmt.Sprintf(`[{"name":"shaped",
				"bandwidth":{"ingressRate":%d,"ingressBurst":%d,"egressRate":%d,"egressBurst":%d}}]`, ingressRate, ingressBurst, egressRate, egressBurst)})
				conf := e.multusConf(v, nil)
				e.add(conf, sb)

				// A veth's IFLA_LINK is its peer's index, here in the node namespace.
				var peer int
				if err := netns.Do(func() error {
					l, err := netlink.LinkByName("net1")
					if err == nil {
						peer = l.Attrs().ParentIndex
					}
					return err
				}); err != nil {
					t.Fatalf("the host side of net1: %v", err)
				}
				host, err := netlink.LinkByIndex(peer)
				if err != nil {
					t.Fatalf("the host side of net1 (index %d): %v", peer, err)
				}
				checkShaper(t, "ingress on "+host.Attrs().Name, tbfOf(t, host), ingressRate, ingressBurst)

				filters, err := netlink.FilterList(host, netlink.MakeHandle(0xffff, 0))
				if err != nil {
					t.Fatalf("ingress filters of %s: %v", host.Attrs().Name, err)
				}
				ifbIndex := 0
				for _, f := range filters {
					if u32, ok := f.(*netlink.U32); ok {
						for _, a := range u32.Actions {
							if m, ok := a.(*netlink.MirredAction); ok && m.MirredAction == netlink.TCA_EGRESS_REDIR {
								ifbIndex = m.Ifindex
							}
						}
					}
				}
				if ifbIndex == 0 {
					t.Fatalf("no u32 filter on %s's ingress redirects to an ifb: %v", host.Attrs().Name, filters)
				}
				ifb, err := netlink.LinkByIndex(ifbIndex)
				if err != nil || ifb.Type() != "ifb" {
					t.Fatalf("the redirect target (index %d) is %v (%v), want an ifb device", ifbIndex, ifb, err)
				}
				checkShaper(t, "egress on "+ifb.Attrs().Name, tbfOf(t, ifb), egressRate, egressBurst)

				e.del(conf, sb)
				var notFound netlink.LinkNotFoundError
				if _, err := netlink.LinkByName(ifb.Attrs().Name); !errors.As(err, &notFound) {
					t.Errorf("ifb %s after DEL: %v, want it gone", ifb.Attrs().Name, err)
				}
			})
		}
	})
}
