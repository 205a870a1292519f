//go:build e2e

package framework

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
)

const (
	// ProvisionerNamespace and ProvisionerServiceAccount are where deploy/rbac.yaml puts the
	// provisioner's identity; every provisioner the suites run authenticates as it.
	ProvisionerNamespace      = "default"
	ProvisionerServiceAccount = "nfs-client-provisioner"
	fieldManager              = "nfsp-e2e"
)

// Cluster holds the suites' admin clients. Only the suites use them: a provisioner gets a
// ServiceAccount token (ServiceAccountKubeconfig).
type Cluster struct {
	RestConfig *rest.Config
	Clientset  kubernetes.Interface
	Dynamic    dynamic.Interface
	mapper     meta.RESTMapper
}

// NewCluster makes the admin clients from a kubeconfig.
func NewCluster(kubeconfig string) (*Cluster, error) {
	restConfig, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading admin kubeconfig %s: %w", kubeconfig, err)
	}
	restConfig.QPS, restConfig.Burst = 100, 200
	clientset, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return nil, fmt.Errorf("creating clientset: %w", err)
	}
	dynamicClient, err := dynamic.NewForConfig(restConfig)
	if err != nil {
		return nil, fmt.Errorf("creating dynamic client: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(clientset.Discovery()))
	return &Cluster{RestConfig: restConfig, Clientset: clientset, Dynamic: dynamicClient, mapper: mapper}, nil
}

// InstallRBAC applies deploy/rbac.yaml: the ServiceAccount every provisioner of the suites runs as.
func (c *Cluster) InstallRBAC(ctx context.Context, repoRoot string) error {
	if _, err := c.ApplyManifestFile(ctx, filepath.Join(repoRoot, "deploy", "rbac.yaml"), ProvisionerNamespace); err != nil {
		return fmt.Errorf("installing the provisioner's RBAC: %w", err)
	}
	return nil
}

// ServiceAccountKubeconfig asks the TokenRequest API for a token of the provisioner's
// ServiceAccount and writes dir/provisioner.kubeconfig, which authenticates with it, so a
// provisioner has exactly the permissions deploy/rbac.yaml grants.
func (c *Cluster) ServiceAccountKubeconfig(ctx context.Context, dir string) (string, error) {
	return c.KubeconfigFor(ctx, dir, ProvisionerNamespace, ProvisionerServiceAccount)
}

// KubeconfigFor is ServiceAccountKubeconfig for any ServiceAccount (a chart's, say).
func (c *Cluster) KubeconfigFor(ctx context.Context, dir, namespace, serviceAccount string) (string, error) {
	request := &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](4 * 3600)},
	}
	token, err := c.Clientset.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, serviceAccount, request, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token for ServiceAccount %s/%s: %w", namespace, serviceAccount, err)
	}
	caData := c.RestConfig.CAData
	if len(caData) == 0 && c.RestConfig.CAFile != "" {
		if caData, err = os.ReadFile(c.RestConfig.CAFile); err != nil {
			return "", fmt.Errorf("reading the cluster CA: %w", err)
		}
	}
	config := clientcmdapi.NewConfig()
	config.Clusters["cluster"] = &clientcmdapi.Cluster{
		Server:                   c.RestConfig.Host,
		CertificateAuthorityData: caData,
		InsecureSkipTLSVerify:    c.RestConfig.Insecure,
	}
	config.AuthInfos["provisioner"] = &clientcmdapi.AuthInfo{Token: token.Status.Token}
	config.Contexts["provisioner"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: "provisioner", Namespace: namespace}
	config.CurrentContext = "provisioner"
	path := filepath.Join(dir, "provisioner.kubeconfig")
	if err := clientcmd.WriteToFile(*config, path); err != nil {
		return "", fmt.Errorf("writing the provisioner's kubeconfig: %w", err)
	}
	return path, nil
}

// ApplyManifestFile server-side applies every object of a multi-document YAML file, like
// `kubectl apply --server-side -f`. Namespaced objects without a namespace go to defaultNamespace.
func (c *Cluster) ApplyManifestFile(ctx context.Context, path, defaultNamespace string) ([]*unstructured.Unstructured, error) {
	return c.ApplyManifestFileWith(ctx, path, defaultNamespace, nil)
}

// ApplyManifestFileWith is ApplyManifestFile with edit, when not nil, called on each object first.
func (c *Cluster) ApplyManifestFileWith(ctx context.Context, path, defaultNamespace string, edit func(*unstructured.Unstructured) error) ([]*unstructured.Unstructured, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening manifest: %w", err)
	}
	defer file.Close()
	return c.ApplyManifests(ctx, file, path, defaultNamespace, edit)
}

// ApplyManifests is ApplyManifestFileWith on a stream (a rendered chart, say), named source in errors.
func (c *Cluster) ApplyManifests(ctx context.Context, r io.Reader, source, defaultNamespace string, edit func(*unstructured.Unstructured) error) ([]*unstructured.Unstructured, error) {
	decoder := yaml.NewYAMLOrJSONDecoder(r, 4096)
	var applied []*unstructured.Unstructured
	for {
		object := &unstructured.Unstructured{}
		if err := decoder.Decode(&object.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return applied, nil
			}
			return applied, fmt.Errorf("decoding %s: %w", source, err)
		}
		if len(object.Object) == 0 {
			continue // an empty document between two `---`
		}
		if edit != nil {
			if err := edit(object); err != nil {
				return applied, fmt.Errorf("%s: %w", source, err)
			}
		}
		result, err := c.applyObject(ctx, object, defaultNamespace)
		if err != nil {
			return applied, fmt.Errorf("%s: %w", source, err)
		}
		applied = append(applied, result)
	}
}

func (c *Cluster) applyObject(ctx context.Context, object *unstructured.Unstructured, defaultNamespace string) (*unstructured.Unstructured, error) {
	gvk := object.GroupVersionKind()
	mapping, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("mapping %s: %w", gvk, err)
	}
	resource := c.Dynamic.Resource(mapping.Resource)
	name := object.GetName()
	options := metav1.ApplyOptions{FieldManager: fieldManager, Force: true}
	var result *unstructured.Unstructured
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		if object.GetNamespace() == "" {
			object.SetNamespace(defaultNamespace)
		}
		result, err = resource.Namespace(object.GetNamespace()).Apply(ctx, name, object, options)
	} else {
		result, err = resource.Apply(ctx, name, object, options)
	}
	if err != nil {
		return nil, fmt.Errorf("applying %s %s: %w", gvk.Kind, name, err)
	}
	return result, nil
}
