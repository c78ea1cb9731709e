package apicache

import (
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"

	"github.com/polynet-cni/polynet/internal/podnet"
)

// uidRefused reports whether the API server refused a patch because the UID
// it carries is not the pod's: the pod was deleted and recreated under the
// same name. A merge patch gets 422 with a cause on metadata.uid.
func uidRefused(err error) bool {
	if !apierrors.IsInvalid(err) {
		return false
	}
	st, ok := err.(apierrors.APIStatus)
	if !ok || st.Status().Details == nil {
		return false
	}
	for _, c := range st.Status().Details.Causes {
		if c.Field == "metadata.uid" {
			return true
		}
	}
	return false
}

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
