//go:build e2e

package e2e

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// cluster holds the suite's admin clients. Only the suite uses them: the provisioner gets a
// ServiceAccount token (see provisioner_process_test.go).
type cluster struct {
	restConfig *rest.Config
	clientset  kubernetes.Interface
	dynamic    dynamic.Interface
	mapper     meta.RESTMapper
}

func newCluster(kubeconfig string) (*cluster, error) {
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
	return &cluster{restConfig: restConfig, clientset: clientset, dynamic: dynamicClient, mapper: mapper}, nil
}
