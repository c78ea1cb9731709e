package apicache

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"

	"github.com/polynet-cni/polynet/internal/cnicode"
)

// APIError is a failed request; transient failures carry CNI code 11.
type APIError struct {
	Op        string
	Err       error
	Transient bool
}

func (e *APIError) Error() string { return fmt.Sprintf("kubernetes API: %s: %v", e.Op, e.Err) }
func (e *APIError) Unwrap() error { return e.Err }

// CNICode reports TryAgainLater for transient failures, KubernetesAPI otherwise.
func (e *APIError) CNICode() uint {
	if e.Transient {
		return cnicode.TryAgainLater
	}
	return cnicode.KubernetesAPI
}

func apiError(op string, err error) error {
	transient := apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) || utilnet.IsConnectionRefused(err) ||
		utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) || utilnet.IsTimeout(err)
	return &APIError{Op: op, Err: err, Transient: transient}
}
