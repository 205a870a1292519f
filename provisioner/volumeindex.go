package provisioner

import (
	"fmt"
	"path"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/nfs-subdir/provisioner/provisioner/export"
)

// nfsPathIndex indexes NFS PersistentVolumes by their directory and every
// ancestor of it, so "which PVs use this directory or something inside it"
// is one map lookup even with tens of thousands of PVs cached.
const nfsPathIndex = "nfs-path-and-ancestors"

// VolumeIndex answers which PersistentVolumes use a directory.
type VolumeIndex interface {
	// VolumesUsing returns the PVs whose NFS path on server is dir or lies
	// below dir.
	VolumesUsing(server, dir string) ([]*v1.PersistentVolume, error)
}

// NewVolumeIndex adds the path index to a PV informer (before it starts).
func NewVolumeIndex(informer cache.SharedIndexInformer) (VolumeIndex, error) {
	if err := informer.AddIndexers(cache.Indexers{nfsPathIndex: indexNFSPath}); err != nil {
		return nil, fmt.Errorf("add PV path index: %w", err)
	}
	return &informerIndex{indexer: informer.GetIndexer()}, nil
}

type informerIndex struct{ indexer cache.Indexer }

func (i *informerIndex) VolumesUsing(server, dir string) ([]*v1.PersistentVolume, error) {
	objs, err := i.indexer.ByIndex(nfsPathIndex, pathKey(server, dir))
	if err != nil {
		return nil, err
	}
	pvs := make([]*v1.PersistentVolume, 0, len(objs))
	for _, o := range objs {
		if pv, ok := o.(*v1.PersistentVolume); ok {
			pvs = append(pvs, pv)
		}
	}
	return pvs, nil
}

func indexNFSPath(obj any) ([]string, error) {
	pv, ok := obj.(*v1.PersistentVolume)
	if !ok || pv.Spec.NFS == nil {
		return nil, nil
	}
	p := path.Clean("/" + pv.Spec.NFS.Path)
	var keys []string
	for {
		keys = append(keys, pathKey(pv.Spec.NFS.Server, p))
		if p == "/" {
			return keys, nil
		}
		p = path.Dir(p)
	}
}

func pathKey(server, dir string) string {
	return export.CanonicalServer(server) + ":" + path.Clean("/"+dir)
}
