package volume

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// NamespaceUIDs tells a namespace's UID ("" when there is no such namespace).
type NamespaceUIDs interface {
	NamespaceUID(ctx context.Context, name string) (string, error)
}

// KubeNamespaces reads namespaces from the API server.
type KubeNamespaces struct{ Client kubernetes.Interface }

// NamespaceUID implements NamespaceUIDs.
func (k KubeNamespaces) NamespaceUID(ctx context.Context, name string) (string, error) {
	ns, err := k.Client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read namespace %s: %w", name, err)
	}
	return string(ns.UID), nil
}
