//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
)

const fieldManager = "nfsp-e2e"

// applyManifestFile server-side applies every object of a multi-document YAML file, like
// `kubectl apply --server-side -f`. Namespaced objects without a namespace go to defaultNamespace.
func (c *cluster) applyManifestFile(ctx context.Context, path, defaultNamespace string) ([]*unstructured.Unstructured, error) {
	return c.applyManifestFileWith(ctx, path, defaultNamespace, nil)
}

// applyManifestFileWith is applyManifestFile with edit, when not nil, called on each object first.
func (c *cluster) applyManifestFileWith(ctx context.Context, path, defaultNamespace string, edit func(*unstructured.Unstructured) error) ([]*unstructured.Unstructured, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening manifest: %w", err)
	}
	defer file.Close()
	decoder := yaml.NewYAMLOrJSONDecoder(file, 4096)
	var applied []*unstructured.Unstructured
	for {
		object := &unstructured.Unstructured{}
		if err := decoder.Decode(&object.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return applied, nil
			}
			return applied, fmt.Errorf("decoding %s: %w", path, err)
		}
		if len(object.Object) == 0 {
			continue // an empty document between two `---`
		}
		if edit != nil {
			if err := edit(object); err != nil {
				return applied, fmt.Errorf("%s: %w", path, err)
			}
		}
		result, err := c.applyObject(ctx, object, defaultNamespace)
		if err != nil {
			return applied, fmt.Errorf("%s: %w", path, err)
		}
		applied = append(applied, result)
	}
}

func (c *cluster) applyObject(ctx context.Context, object *unstructured.Unstructured, defaultNamespace string) (*unstructured.Unstructured, error) {
	gvk := object.GroupVersionKind()
	mapping, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("mapping %s: %w", gvk, err)
	}
	resource := c.dynamic.Resource(mapping.Resource)
	name := object.GetName()
	var result *unstructured.Unstructured
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		if object.GetNamespace() == "" {
			object.SetNamespace(defaultNamespace)
		}
		result, err = resource.Namespace(object.GetNamespace()).Apply(ctx, name, object,
			metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	} else {
		result, err = resource.Apply(ctx, name, object, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	}
	if err != nil {
		return nil, fmt.Errorf("applying %s %s: %w", gvk.Kind, name, err)
	}
	return result, nil
}
