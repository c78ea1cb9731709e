package apiclient

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/polynet-cni/polynet/internal/podnet"
)

// Dynamic Resource Allocation, resource.k8s.io/v1: the engine reads these only
// for a pod that names ResourceClaims, and only when a network asks for a
// device.

// resourceClaim is the part of a ResourceClaim we decode.
type resourceClaim struct {
	Metadata objectMeta `json:"metadata"`
	Status   struct {
		Allocation *struct {
			Devices struct {
				Results []struct {
					Request     string `json:"request"`
					Driver      string `json:"driver"`
					Pool        string `json:"pool"`
					Device      string `json:"device"`
					AdminAccess *bool  `json:"adminAccess"`
				} `json:"results"`
			} `json:"devices"`
		} `json:"allocation"`
		ReservedFor []struct {
			APIGroup string `json:"apiGroup"`
			Resource string `json:"resource"`
			UID      string `json:"uid"`
		} `json:"reservedFor"`
	} `json:"status"`
}

// Claim reads a ResourceClaim.
func (c *Client) Claim(ctx context.Context, namespace, name string) (*podnet.Claim, error) {
	var obj resourceClaim
	path := fmt.Sprintf("/apis/resource.k8s.io/v1/namespaces/%s/resourceclaims/%s", escape(namespace), escape(name))
	if err := c.do(ctx, http.MethodGet, path, "", nil, &obj); err != nil {
		return nil, notFound(err, "ResourceClaim", namespace, name)
	}
	out := &podnet.Claim{Namespace: obj.Metadata.Namespace, Name: obj.Metadata.Name}
	for _, r := range obj.Status.ReservedFor {
		if r.APIGroup == "" && r.Resource == "pods" {
			out.ReservedFor = append(out.ReservedFor, r.UID)
		}
	}
	if a := obj.Status.Allocation; a != nil {
		out.Allocated = true
		for _, r := range a.Devices.Results {
			out.Devices = append(out.Devices, podnet.ClaimDevice{
				Request: r.Request, Driver: r.Driver, Pool: r.Pool, Device: r.Device,
				AdminAccess: r.AdminAccess != nil && *r.AdminAccess,
			})
		}
	}
	return out, nil
}

// resourceSliceList is the part of a ResourceSliceList we decode: of each
// device, its string attributes.
type resourceSliceList struct {
	Items []struct {
		Spec struct {
			Driver string `json:"driver"`
			Pool   struct {
				Name       string `json:"name"`
				Generation int64  `json:"generation"`
			} `json:"pool"`
			Devices []struct {
				Name       string `json:"name"`
				Attributes map[string]struct {
					String *string `json:"string"`
				} `json:"attributes"`
			} `json:"devices"`
		} `json:"spec"`
	} `json:"items"`
}

// PoolSlices lists the ResourceSlices of the pools of this name, of every
// driver: drivers of node-local devices name their pool after the node, so
// one request serves a claim's NIC and GPU alike. The field selector keeps the
// answer to those pools, whatever the size of the cluster.
func (c *Client) PoolSlices(ctx context.Context, pool string) ([]podnet.ResourceSlice, error) {
	path := "/apis/resource.k8s.io/v1/resourceslices?fieldSelector=" + url.QueryEscape("spec.pool.name="+escapeFieldValue(pool))
	var list resourceSliceList
	if err := c.do(ctx, http.MethodGet, path, "", nil, &list); err != nil {
		return nil, err
	}
	out := make([]podnet.ResourceSlice, 0, len(list.Items))
	for _, it := range list.Items {
		s := podnet.ResourceSlice{Driver: it.Spec.Driver, Pool: it.Spec.Pool.Name, Generation: it.Spec.Pool.Generation}
		for _, d := range it.Spec.Devices {
			dev := podnet.SliceDevice{Name: d.Name}
			for name, attr := range d.Attributes {
				if attr.String != nil {
					dev.SetAttribute(s.Driver, name, *attr.String)
				}
			}
			s.Devices = append(s.Devices, dev)
		}
		out = append(out, s)
	}
	return out, nil
}

// escapeFieldValue escapes a field selector's value as the API server reads
// it: a backslash before "\", "," and "=".
func escapeFieldValue(v string) string {
	return strings.NewReplacer(`\`, `\\`, `,`, `\,`, `=`, `\=`).Replace(v)
}
