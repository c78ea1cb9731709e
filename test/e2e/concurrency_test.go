package e2e

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// TestConcurrentAddDelOfOneSandbox: the runtime's ADD and DEL of one sandbox
// race (a DEL sent while an ADD it gave up on still runs), in both modes: two
// multus processes for one container ID (thin), two shims to the daemon
// (thick). The commands of one sandbox are serialised, so whichever
// runs second sees the whole of what the first did: after each round the
// sandbox is either fully attached, with its record, or has nothing at all;
// never attachments without a record or a record without attachments. The
// second network is a slow recorder, so the DEL arrives in the middle of the
// ADD; DEL's start is staggered so both orders happen.
func TestConcurrentAddDelOfOneSandbox(t *testing.T) {
	modes(t, func(t *testing.T) {
		const v, rounds = "1.0.0", 20
		const sleep = 400 * time.Millisecond
		e := newEnv(t)
		e.nad("slow", e.recorderConf(v, "slow", map[string]any{"sleepMs": sleep.Milliseconds()}), nil)
		conf := e.multusConf(v, nil)
		_, sb, netns := e.pod("pod-1", map[string]string{"k8s.v1.cni.cncf.io/networks": "slow"})

		// What a sandbox attached alone looks like.
		e.add(conf, sb)
		attached := e.remains(sb, netns)
		e.del(conf, sb)
		if left := e.remains(sb, netns); len(left) > 0 || len(attached) == 0 {
			t.Fatalf("sequential ADD left %v, its DEL %v", attached, left)
		}

		outcomes := map[string]int{}
		for i := range rounds {
			stagger := time.Duration(i%5) * sleep / 4
			var wg sync.WaitGroup
			var addErr, delErr error
			wg.Add(2)
			go func() { defer wg.Done(); _, addErr = e.rt.Add(e.ctx, conf, sb) }()
			go func() { defer wg.Done(); time.Sleep(stagger); delErr = e.rt.Del(e.ctx, conf, sb) }()
			wg.Wait()
			if addErr != nil || delErr != nil {
				t.Errorf("round %d (DEL %s after ADD): ADD error %v, DEL error %v\nlog:\n%s", i, stagger, addErr, delErr, e.log())
			}
			left := e.remains(sb, netns)
			switch {
			case len(left) == 0:
				outcomes["nothing"]++
			case slices.Equal(left, attached):
				outcomes["attached"]++
			default:
				t.Fatalf("round %d (DEL %s after ADD): inconsistent state %v, want nothing or %v\nlog:\n%s", i, stagger, left, attached, e.log())
			}
			e.del(conf, sb) // the runtime's next DEL
			if left := e.remains(sb, netns); len(left) > 0 {
				t.Fatalf("round %d: left after the final DEL: %v", i, left)
			}
		}
		t.Logf("outcomes of %d rounds: %v", rounds, outcomes)
	})
}
