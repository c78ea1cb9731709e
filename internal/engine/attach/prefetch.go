package attach

import (
	"context"
	"sync"

	"github.com/polynet-cni/polynet/internal/podnet"
)

// nadKey names one NetworkAttachmentDefinition.
type nadKey struct{ namespace, name string }

type nadResult struct {
	nad *podnet.NAD
	err error
}

// prefetched serves the NADs read ahead, each once, and reads any other from
// the source. A thin plugin reads every NAD from the API server: read one
// after the other, a pod with five networks waits five round trips; read
// together, one.
type prefetched struct {
	src NADGetter
	got map[nadKey]nadResult
}

// prefetch reads, at once, the NADs of the selections the pod may use (the
// isolation check refuses the others before any read, so none is read that
// the reads one by one would not have made). The errors are kept and
// returned when resolution asks for that NAD, in its own order, so the error
// an ADD reports is the one it reported before.
func prefetch(ctx context.Context, in Input) NADGetter {
	keys := make(map[nadKey]bool)
	for i := range in.Selections {
		sel := &in.Selections[i]
		if checkIsolation(in, sel) == nil {
			keys[nadKey{sel.Namespace, sel.Name}] = true
		}
	}
	if len(keys) < 2 {
		return in.NADs
	}
	p := &prefetched{src: in.NADs, got: make(map[nadKey]nadResult, len(keys))}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for k := range keys {
		wg.Go(func() {
			nad, err := in.NADs.NAD(ctx, k.namespace, k.name)
			mu.Lock()
			p.got[k] = nadResult{nad, err}
			mu.Unlock()
		})
	}
	wg.Wait()
	return p
}

func (p *prefetched) NAD(ctx context.Context, namespace, name string) (*podnet.NAD, error) {
	if r, ok := p.got[nadKey{namespace, name}]; ok {
		return r.nad, r.err
	}
	return p.src.NAD(ctx, namespace, name)
}
