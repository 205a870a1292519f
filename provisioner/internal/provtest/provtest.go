// Package provtest is the test fixture the provisioner's packages share: a whole Provisioner with
// its lifecycles wired as main wires them, over local directories that stand in for NFS exports
// (the mounted backend), a PV index the test fills, a fake clock for the server gate, and an
// Event recorder to read.
package provtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	testingclock "k8s.io/utils/clock/testing"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/archive"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/class"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/clone"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/mounted"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/usage"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/volume"
)

// The fixture's default export, a second one, and the PV name Provision gets.
const (
	Server = "nfs.example"
	Share  = "/srv/nfs"
	PV     = "pvc-0b6a3c1e-2f0d-4c55-9a53-6d3c8e1f7a10"
	// Provisioner is the name the fixture's provisioner and classes have.
	Provisioner = "k8s-sigs.io/nfs-subdir-external-provisioner"
)

// Exports is an Opener over real local directories, one per server:share.
type Exports struct {
	mu   sync.Mutex
	dirs map[string]string // "server:share" -> local dir
	open map[string]*mounted.FS
}

// Add serves dir as server:share.
func (e *Exports) Add(server, share, dir string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dirs[export.NewTarget(server, share).String()] = dir
}

func (e *Exports) Open(_ context.Context, server, share string) (export.FS, error) {
	key := export.NewTarget(server, share).String()
	e.mu.Lock()
	defer e.mu.Unlock()
	dir, ok := e.dirs[key]
	if !ok {
		return nil, errors.New("no such export")
	}
	if fsys := e.open[key]; fsys != nil {
		return fsys, nil
	}
	fsys, err := mounted.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	e.open[key] = fsys
	return fsys, nil
}

func (e *Exports) close() {
	for _, fsys := range e.open {
		fsys.Close()
	}
}

// Switch is an Opener a test may swap at any time (a poisoned or slowed export).
type Switch struct {
	mu sync.Mutex
	o  export.Opener
}

// Set makes o the opener from now on.
func (s *Switch) Set(o export.Opener) {
	s.mu.Lock()
	s.o = o
	s.mu.Unlock()
}

// Get is the opener now.
func (s *Switch) Get() export.Opener {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.o
}

func (s *Switch) Open(ctx context.Context, server, share string) (export.FS, error) {
	return s.Get().Open(ctx, server, share)
}

// Options tune a fixture; the zero value is a provisioner with no API server (no records, no
// clones).
type Options struct {
	Name       string          // default Provisioner
	Claims     clone.Claims    // clones
	Version    export.Version  // the provisioner's NFS_VERSION
	Records    archive.Records // archive records
	Namespaces volume.NamespaceUIDs
	Classes    []*storagev1.StorageClass // what the class lister knows
	Defaults   class.OwnerOverride
	Observe    Observer
	DryRun     bool
}

// Observer is every observer of the lifecycles (metrics.NFS is one).
type Observer interface {
	volume.RemovalObserver
	archive.Observer
	clone.Observer
	usage.Observer
}

// Fixture is one provisioner over two local "exports": Server:Share in Dir and
// nfs-2.example:/srv/b in Other.
type Fixture struct {
	T        testing.TB
	Dir      string
	Other    string
	Exports  *Exports
	Opener   *Switch // what the gate opens through: Exports unless a test swaps it
	Clock    *testingclock.FakePassiveClock
	PVs      cache.Indexer
	Classes  cache.Indexer
	Recorder *record.FakeRecorder
	Gate     *export.Gate
	Locator  *volume.Locator
	Archives *archive.Keeper
	Clones   *clone.Cloner
	Monitor  *usage.Monitor
	Prov     *provisioner.Provisioner
	// ArchiveConfig and CloneConfig are what Archives and Clones were made with, for a test that
	// makes another (a dry-run sweeper).
	ArchiveConfig archive.Config
	CloneConfig   clone.Config
}

// New returns a fixture; its background work stops when the test ends.
func New(t testing.TB, o Options) *Fixture {
	f := &Fixture{T: t, Dir: t.TempDir(), Other: t.TempDir(), Recorder: record.NewFakeRecorder(1000),
		Exports: &Exports{dirs: map[string]string{}, open: map[string]*mounted.FS{}},
		Clock:   testingclock.NewFakePassiveClock(time.Now())}
	f.Exports.Add(Server, Share, f.Dir)
	f.Exports.Add("nfs-2.example", "/srv/b", f.Other)
	t.Cleanup(f.Exports.close)
	f.Opener = &Switch{o: f.Exports}
	f.PVs = cache.NewIndexer(cache.MetaNamespaceKeyFunc, volume.Indexers())
	f.Classes = cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, sc := range o.Classes {
		if err := f.Classes.Add(sc); err != nil {
			t.Fatal(err)
		}
	}
	name := o.Name
	if name == "" {
		name = Provisioner
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f.Gate = export.NewGateWithClock(f.Opener, f.Clock)
	f.Locator = &volume.Locator{Name: name, DefaultServer: Server, DefaultShare: Share, Classes: storagelisters.NewStorageClassLister(f.Classes)}
	volumes := volume.IndexOf(f.PVs)
	var obs Observer = o.Observe
	f.ArchiveConfig = archive.Config{Gate: f.Gate, Locator: f.Locator, Volumes: volumes, Records: o.Records, Namespaces: o.Namespaces,
		Recorder: f.Recorder, Timeout: 30 * time.Second, RemoveTimeout: time.Minute, DryRun: o.DryRun}
	f.CloneConfig = clone.Config{Name: name, Gate: f.Gate, Locator: f.Locator, Volumes: volumes, Claims: o.Claims, Namespaces: o.Namespaces,
		Recorder: f.Recorder, Background: ctx, Timeout: 30 * time.Second, RemoveTimeout: time.Minute}
	monitor := usage.Config{Gate: f.Gate, Locator: f.Locator, Volumes: volumes, Recorder: f.Recorder, Timeout: 30 * time.Second, WalkTimeout: time.Minute}
	pcfg := provisioner.Config{Gate: f.Gate, Locator: f.Locator, Defaults: o.Defaults, Volumes: volumes, Recorder: f.Recorder,
		Namespaces: o.Namespaces, Version: o.Version}
	if obs != nil {
		f.ArchiveConfig.Observe, f.CloneConfig.Observe, monitor.Observe, pcfg.Observe = obs, obs, obs, obs
	}
	f.Archives, f.Clones, f.Monitor = archive.New(f.ArchiveConfig), clone.New(f.CloneConfig), usage.New(monitor)
	pcfg.Archives, pcfg.Clones = f.Archives, f.Clones
	f.Prov = provisioner.New(pcfg)
	return f
}

// PassBackoff moves the gate's clock past any back-off, so the next operation on a server that
// failed is its probe.
func (f *Fixture) PassBackoff() { f.Clock.SetTime(f.Clock.Now().Add(time.Minute)) }

// Claim is a claim default/data asking for 100Mi, ReadWriteMany.
func Claim(annotations map[string]string) *v1.PersistentVolumeClaim {
	fs := v1.PersistentVolumeFilesystem
	return &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "data", UID: types.UID("0b6a3c1e"), Annotations: annotations},
		Spec: v1.PersistentVolumeClaimSpec{
			AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteMany},
			VolumeMode:  &fs,
			Resources:   v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("100Mi")}},
		},
	}
}

// ClaimIn is Claim named namespace/name, with a UID of its own.
func ClaimIn(namespace, name string, annotations map[string]string) *v1.PersistentVolumeClaim {
	c := Claim(annotations)
	c.Namespace, c.Name, c.UID = namespace, name, types.UID(namespace+"-"+name+"-uid")
	return c
}

// Class is the class nfs-client of the fixture's provisioner with params (reclaim Retain, mount
// options nfsvers=4.1,hard).
func Class(params map[string]string) *storagev1.StorageClass {
	retain := v1.PersistentVolumeReclaimRetain
	return &storagev1.StorageClass{
		ObjectMeta:    metav1.ObjectMeta{Name: "nfs-client"},
		Provisioner:   Provisioner,
		Parameters:    params,
		ReclaimPolicy: &retain,
		MountOptions:  []string{"nfsvers=4.1", "hard"},
	}
}

// Provision provisions claim on class as PV.
func (f *Fixture) Provision(claim *v1.PersistentVolumeClaim, sc *storagev1.StorageClass) (*v1.PersistentVolume, controller.ProvisioningState, error) {
	return f.Prov.Provision(context.Background(), controller.ProvisionOptions{StorageClass: sc, PVName: PV, PVC: claim})
}

// MustProvision provisions claim on class as PV, and adds the PV to the index.
func (f *Fixture) MustProvision(claim *v1.PersistentVolumeClaim, sc *storagev1.StorageClass) *v1.PersistentVolume {
	f.T.Helper()
	pv, state, err := f.Provision(claim, sc)
	if err != nil || state != controller.ProvisioningFinished {
		f.T.Fatalf("Provision: %v (state %s)", err, state)
	}
	if err := f.PVs.Add(pv); err != nil {
		f.T.Fatal(err)
	}
	return pv
}

// ProvisionAs provisions claim on the class with params as PV pv and, unless hidden, adds the PV
// to the index.
func (f *Fixture) ProvisionAs(claim *v1.PersistentVolumeClaim, params map[string]string, pv string, hidden bool) (*v1.PersistentVolume, error) {
	f.T.Helper()
	out, _, err := f.Prov.Provision(context.Background(), controller.ProvisionOptions{StorageClass: Class(params), PVName: pv, PVC: claim})
	if err == nil && !hidden {
		if err := f.PVs.Add(out); err != nil {
			f.T.Fatal(err)
		}
	}
	return out, err
}

// Write writes data to the file rel of the default export, making its parents.
func (f *Fixture) Write(rel, data string) {
	f.T.Helper()
	p := filepath.Join(f.Dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
		f.T.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		f.T.Fatal(err)
	}
}

// MustHave fails the test unless the file rel of the default export holds data.
func (f *Fixture) MustHave(rel, data string) {
	f.T.Helper()
	got, err := os.ReadFile(filepath.Join(f.Dir, filepath.FromSlash(rel)))
	if err != nil || string(got) != data {
		f.T.Errorf("%s: %q, %v; want %q untouched", rel, got, err, data)
	}
}

// Entries names what is in the local directory dir.
func (f *Fixture) Entries(dir string) []string {
	f.T.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		f.T.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// Events drains the recorded Events.
func (f *Fixture) Events() string {
	var out []string
	for len(f.Recorder.Events) > 0 {
		out = append(out, <-f.Recorder.Events)
	}
	return strings.Join(out, "\n")
}

// WantRefusal fails the test unless err is a refusal (or a class error) saying every word.
func WantRefusal(t testing.TB, err error, words ...string) {
	t.Helper()
	var refused *volume.Refusal
	if err == nil {
		t.Fatal("Provision succeeded; want a refusal")
	}
	if !errors.As(err, &refused) && !strings.Contains(err.Error(), "StorageClass") {
		t.Errorf("not a refusal: %v", err)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal %q does not say %q", err, w)
		}
	}
}

// StatOwner is the permission bits and owner of the local path p.
func StatOwner(t testing.TB, p string) (mode os.FileMode, uid, gid uint32) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return os.FileMode(st.Mode & 0o7777), st.Uid, st.Gid
}
