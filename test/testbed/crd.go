package testbed

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

const crdPath = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"

// InstallCRD creates the CustomResourceDefinition in the YAML file at path and waits
// until it is established and its resource is served. It speaks the REST API
// directly, so the tests need no apiextensions client module.
func InstallCRD(ctx context.Context, cfg *rest.Config, path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading CRD manifest: %w", err)
	}
	body, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return fmt.Errorf("CRD manifest %s: %w", path, err)
	}
	var crd struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec struct {
			Group string `json:"group"`
			Names struct {
				Plural string `json:"plural"`
			} `json:"names"`
			Versions []struct {
				Name string `json:"name"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(body, &crd); err != nil || len(crd.Spec.Versions) == 0 {
		return fmt.Errorf("CRD manifest %s: not a CustomResourceDefinition with a version (%v)", path, err)
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	rc := kc.Discovery().RESTClient()
	err = rc.Post().AbsPath(crdPath).SetHeader("Content-Type", "application/json").Body(body).Do(ctx).Error()
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating CRD %s: %w", crd.Metadata.Name, err)
	}
	list := fmt.Sprintf("/apis/%s/%s/%s", crd.Spec.Group, crd.Spec.Versions[0].Name, crd.Spec.Names.Plural)
	for {
		established, err := crdEstablished(ctx, rc, crd.Metadata.Name)
		if err == nil && established {
			if err = rc.Get().AbsPath(list).Do(ctx).Error(); err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CRD %s not served: %v: %w", crd.Metadata.Name, err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func crdEstablished(ctx context.Context, rc rest.Interface, name string) (bool, error) {
	raw, err := rc.Get().AbsPath(crdPath, name).DoRaw(ctx)
	if err != nil {
		return false, err
	}
	var got struct {
		Status struct {
			Conditions []struct {
				Type   string `json:"type"`
				Status string `json:"status"`
			} `json:"conditions"`
		} `json:"status"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		return false, err
	}
	for _, c := range got.Status.Conditions {
		if c.Type == "Established" && c.Status == "True" {
			return true, nil
		}
	}
	return false, nil
}
