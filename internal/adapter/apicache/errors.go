package apicache

import (
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"

	"github.com/polynet-cni/polynet/internal/podnet"
)

func apiError(op string, err error) error {
	transient := apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) || utilnet.IsConnectionRefused(err) ||
		utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) || utilnet.IsTimeout(err)
	status := 0
	if st, ok := err.(apierrors.APIStatus); ok {
		status = int(st.Status().Code)
	}
	return &podnet.APIError{Op: op, Status: status, Err: err, Transient: transient}
}
