package volume

import (
	"fmt"
	"path"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// The PV informer is indexed twice: by each NFS PV's directory and every
// ancestor of it (which PVs use a directory or something inside it), and
// by its directory alone (which PV uses exactly this one). Both are one
// map lookup per question even with tens of thousands of PVs cached.
const (
	nfsPathIndex  = "nfs-path-and-ancestors"
	nfsExactIndex = "nfs-path"
)

// Index answers which PersistentVolumes use a directory.
type Index interface {
	// VolumesUsing returns the PVs whose NFS path on server is dir or lies
	// below dir.
	VolumesUsing(server, dir string) ([]*v1.PersistentVolume, error)
	// VolumesAt returns the PVs whose NFS path on server is exactly dir.
	VolumesAt(server, dir string) ([]*v1.PersistentVolume, error)
	// All returns every PV.
	All() []*v1.PersistentVolume
}

// NewIndex adds the path indexes to a PV informer (before it starts).
func NewIndex(informer cache.SharedIndexInformer) (Index, error) {
	if err := informer.AddIndexers(Indexers()); err != nil {
		return nil, fmt.Errorf("add PV path index: %w", err)
	}
	return IndexOf(informer.GetIndexer()), nil
}

// Indexers are the path indexes an indexer of PVs needs for IndexOf.
func Indexers() cache.Indexers {
	return cache.Indexers{nfsPathIndex: indexNFSPath, nfsExactIndex: indexNFSExact}
}

// IndexOf is the Index of an indexer made with Indexers.
func IndexOf(indexer cache.Indexer) Index { return &informerIndex{indexer: indexer} }

// Users names the PVs but except whose NFS path on server is dir or lies below it (none without
// an index).
func Users(idx Index, server, dir, except string) ([]string, error) {
	if idx == nil {
		return nil, nil
	}
	pvs, err := idx.VolumesUsing(server, dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, pv := range pvs {
		if pv.Name != except {
			names = append(names, pv.Name)
		}
	}
	return names, nil
}

type informerIndex struct{ indexer cache.Indexer }

func (i *informerIndex) VolumesUsing(server, dir string) ([]*v1.PersistentVolume, error) {
	return i.byIndex(nfsPathIndex, pathKey(server, dir))
}

func (i *informerIndex) VolumesAt(server, dir string) ([]*v1.PersistentVolume, error) {
	return i.byIndex(nfsExactIndex, pathKey(server, dir))
}

func (i *informerIndex) All() []*v1.PersistentVolume {
	objs := i.indexer.List()
	pvs := make([]*v1.PersistentVolume, 0, len(objs))
	for _, o := range objs {
		if pv, ok := o.(*v1.PersistentVolume); ok {
			pvs = append(pvs, pv)
		}
	}
	return pvs
}

func (i *informerIndex) byIndex(index, key string) ([]*v1.PersistentVolume, error) {
	objs, err := i.indexer.ByIndex(index, key)
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

func indexNFSExact(obj any) ([]string, error) {
	pv, ok := obj.(*v1.PersistentVolume)
	if !ok || pv.Spec.NFS == nil {
		return nil, nil
	}
	return []string{pathKey(pv.Spec.NFS.Server, pv.Spec.NFS.Path)}, nil
}

// pathKey is the index key of a directory: the canonical server and the
// clean absolute path.
func pathKey(server, dir string) string {
	return export.CanonicalServer(server) + ":" + path.Clean("/"+dir)
}
