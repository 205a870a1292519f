package volume

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

func TestVolumeIndex(t *testing.T) {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, Indexers())
	add := func(name, server, path string) {
		idx.Add(&v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{NFS: &v1.NFSVolumeSource{Server: server, Path: path}}}})
	}
	add("a", "NFS.example", "/srv/nfs/a")
	add("a-sub", "nfs.example", "/srv/nfs/a/sub/")
	add("ab", "nfs.example", "/srv/nfs/ab")
	add("other-server", "nfs-2.example", "/srv/nfs/a")
	vi := &informerIndex{indexer: idx}
	got, err := vi.VolumesUsing("nfs.example", "/srv/nfs/a")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, pv := range got {
		names = append(names, pv.Name)
	}
	if len(names) != 2 || !strings.Contains(strings.Join(names, ","), "a-sub") {
		t.Errorf("VolumesUsing = %v, want a and a-sub only", names)
	}
}
