package attach

import (
	"fmt"

	"github.com/polynet-cni/polynet/internal/cnicode"
	"github.com/polynet-cni/polynet/internal/podnet"
)

// TooManyNetworksError says a pod's annotation requests more networks than
// maxNetworksPerPod allows. Every network costs a NAD read and a delegate
// exec, so the bound keeps one pod from making the node do unbounded work.
type TooManyNetworksError struct {
	Pod   podnet.PodRef
	Count int
	Max   int
}

func (e *TooManyNetworksError) Error() string {
	return fmt.Sprintf("pod %s requests %d networks, more than the %d allowed; raise the plugin configuration's \"maxNetworksPerPod\" to allow more",
		e.Pod, e.Count, e.Max)
}

// CNICode reports NetworkRefused: the pod may not have what it asks for.
func (e *TooManyNetworksError) CNICode() uint { return cnicode.NetworkRefused }

// checkNetworkCount refuses a pod whose networks annotation selects more
// networks than the configuration allows. It runs before any NAD is read. The
// cluster network, defaultNetworks and the auxiliary chain, which the operator
// chose, do not count.
func checkNetworkCount(in Input) error {
	if limit := in.Conf.MaxNetworksPerPod; len(in.Selections) > limit {
		return &TooManyNetworksError{Pod: in.Req.Pod, Count: len(in.Selections), Max: limit}
	}
	return nil
}
