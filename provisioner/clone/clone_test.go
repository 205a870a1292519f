package clone_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/clone"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/internal/provtest"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/volume"
)

// cloneFixture is a fixture whose provisioner can clone: a fake API server holding a bound source
// claim "src" in namespace "default" whose directory holds a few files.
type cloneFixture struct {
	*provtest.Fixture
	client *fake.Clientset
	claims cache.Indexer
	src    *v1.PersistentVolumeClaim
	srcDir string
}

func newCloneFixture(t *testing.T) *cloneFixture {
	client := fake.NewClientset()
	claims := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	f := &cloneFixture{Fixture: provtest.New(t, provtest.Options{Classes: []*storagev1.StorageClass{provtest.Class(nil)},
		Claims: clone.KubeClaims{Client: client, Lister: corelisters.NewPersistentVolumeClaimLister(claims)}}), client: client, claims: claims}
	src := claimOf("default", "src")
	pv, err := f.ProvisionAs(src, nil, "pvc-src", false)
	if err != nil {
		t.Fatal(err)
	}
	pv.Annotations[volume.AnnProvisionedBy] = provtest.Provisioner
	pv.Spec.ClaimRef = &v1.ObjectReference{Namespace: "default", Name: "src", UID: src.UID}
	src.Spec.VolumeName, src.Status.Phase = pv.Name, v1.ClaimBound
	f.src, f.srcDir = src, pv.Annotations[volume.AnnDirectory]
	f.create(src)
	if _, err := f.client.CoreV1().PersistentVolumes().Create(context.Background(), pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.Write(f.srcDir+"/hello.txt", "hello")
	f.Write(f.srcDir+"/sub/deeper/data.bin", strings.Repeat("x", 100000))
	if err := os.Symlink("../../elsewhere", filepath.Join(f.Dir, f.srcDir, "sub", "link")); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *cloneFixture) create(claim *v1.PersistentVolumeClaim) {
	f.T.Helper()
	if _, err := f.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Create(context.Background(), claim, metav1.CreateOptions{}); err != nil {
		f.T.Fatal(err)
	}
	if err := f.claims.Add(claim); err != nil {
		f.T.Fatal(err)
	}
}

// staging is the local path of the provisioner's staging directory.
func (f *cloneFixture) staging() string {
	f.T.Helper()
	root, err := f.Clones.StagingRoot(context.Background())
	if err != nil {
		f.T.Fatal(err)
	}
	return filepath.Join(f.Dir, root)
}

// claimOf is a claim of the class nfs-client.
func claimOf(namespace, name string) *v1.PersistentVolumeClaim {
	c := provtest.ClaimIn(namespace, name, nil)
	class := "nfs-client"
	c.Spec.StorageClassName = &class
	return c
}

func cloneOf(source, namespace, name string) *v1.PersistentVolumeClaim {
	c := claimOf(namespace, name)
	c.Spec.DataSource = &v1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: source}
	return c
}

// wait waits for the cl job of claim to end.
func (f *cloneFixture) wait(claim *v1.PersistentVolumeClaim) {
	f.T.Helper()
	job := f.Clones.Job(claim.UID)
	if job == nil {
		f.T.Fatal("no cl job started")
	}
	select {
	case <-job.Done():
	case <-time.After(30 * time.Second):
		f.T.Fatal("clone did not end within 30s")
	}
	// The end is announced on the claim just after; wait for that too (a deleted claim has none).
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := f.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Get(context.Background(), claim.Name, metav1.GetOptions{})
		if err != nil || strings.HasSuffix(c.Annotations[clone.AnnCloneStatus], job.Attempt()) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.T.Fatal("the clone's end was not announced on its claim")
}

func (f *cloneFixture) current(name string) *v1.PersistentVolumeClaim {
	f.T.Helper()
	c, err := f.client.CoreV1().PersistentVolumeClaims("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		f.T.Fatal(err)
	}
	return c
}

func TestClone(t *testing.T) {
	f := newCloneFixture(t)
	cl := cloneOf("src", "default", "copy")
	f.create(cl)
	opts := controller.ProvisionOptions{StorageClass: provtest.Class(nil), PVName: "pvc-copy", PVC: cl}
	_, state, err := f.Prov.Provision(context.Background(), opts)
	var ignored *controller.IgnoredError
	if !errors.As(err, &ignored) {
		t.Fatalf("first Provision: %v (%s), want the copy started in the background", err, state)
	}
	if !slices.Contains(f.current("src").Finalizers, clone.FinalizerCloneSource) {
		t.Error("the source claim is not protected while it is copied")
	}
	f.wait(cl)
	if got := f.current("copy").Annotations[clone.AnnCloneStatus]; !strings.HasPrefix(got, "copied ") {
		t.Errorf("claim annotation %s=%q after the copy, want copied <attempt>", clone.AnnCloneStatus, got)
	}
	if slices.Contains(f.current("src").Finalizers, clone.FinalizerCloneSource) {
		t.Error("the source claim is still protected after the copy")
	}
	pv, state, err := f.Prov.Provision(context.Background(), opts)
	if err != nil || state != controller.ProvisioningFinished {
		t.Fatalf("Provision after the copy: %v (%s)", err, state)
	}
	dir := pv.Annotations[volume.AnnDirectory]
	f.MustHave(dir+"/hello.txt", "hello")
	f.MustHave(dir+"/sub/deeper/data.bin", strings.Repeat("x", 100000))
	if target, err := os.Readlink(filepath.Join(f.Dir, dir, "sub", "link")); err != nil || target != "../../elsewhere" {
		t.Errorf("symlink in the copy: %q, %v", target, err)
	}
	if got := f.Entries(f.staging()); len(got) != 0 {
		t.Errorf("staging directories left: %v", got)
	}
	events := f.Events()
	for _, reason := range []string{clone.ReasonCloneStarted, clone.ReasonCloneFinished} {
		if !strings.Contains(events, reason) {
			t.Errorf("no %s Event; events: %s", reason, events)
		}
	}
	// A retry after the PV was not saved finds the finished copy and does not copy again.
	if again, _, err := f.Prov.Provision(context.Background(), opts); err != nil || again.Spec.NFS.Path != pv.Spec.NFS.Path {
		t.Errorf("Provision once more: %v", err)
	}
}

// poisoned fails every read of a file named "poison": a copy that breaks half way.
type poisoned struct{ export.Opener }

func (o poisoned) Open(ctx context.Context, server, share string) (export.FS, error) {
	fsys, err := o.Opener.Open(ctx, server, share)
	return poisonedFS{fsys}, err
}

type poisonedFS struct{ export.FS }

func (f poisonedFS) Tree() export.Tree { return poisonedTree{f.FS.Tree()} }

type poisonedTree struct{ export.Tree }

func (t poisonedTree) ReadAt(ctx context.Context, n export.Node, p []byte, off uint64) (int, bool, error) {
	if strings.HasSuffix(fmt.Sprint(n), "/poison") {
		return 0, false, fmt.Errorf("injected read failure: %w", export.ErrPermission) // the server refused, as for a file the provisioner may not read
	}
	return t.Tree.ReadAt(ctx, n, p, off)
}

// Every refusal is final, says what to change, and makes nothing.
func TestCloneRefused(t *testing.T) {
	f := newCloneFixture(t)
	other := "other"
	snapshots := "snapshot.storage.k8s.io"
	big := cloneOf("src", "default", "small")
	big.Spec.Resources.Requests[v1.ResourceStorage] = resource.MustParse("10Mi")
	foreign := provtest.ClaimIn("default", "foreign", nil)
	f.create(foreign)
	fpv := &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-foreign", Annotations: map[string]string{volume.AnnProvisionedBy: "someone.else/nfs"}},
		Spec: v1.PersistentVolumeSpec{ClaimRef: &v1.ObjectReference{UID: foreign.UID}, PersistentVolumeSource: v1.PersistentVolumeSource{NFS: &v1.NFSVolumeSource{Server: provtest.Server, Path: provtest.Share + "/x"}}}}
	if _, err := f.client.CoreV1().PersistentVolumes().Create(context.Background(), fpv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	foreign.Spec.VolumeName, foreign.Status.Phase = fpv.Name, v1.ClaimBound
	if _, err := f.client.CoreV1().PersistentVolumeClaims("default").Update(context.Background(), foreign, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	crossNS := provtest.ClaimIn("default", "cross", nil)
	crossNS.Spec.DataSourceRef = &v1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "src", Namespace: &other}
	snap := provtest.ClaimIn("default", "snap", nil)
	snap.Spec.DataSource = &v1.TypedLocalObjectReference{APIGroup: &snapshots, Kind: "VolumeSnapshot", Name: "s1"}
	cases := []struct {
		claim  *v1.PersistentVolumeClaim
		params map[string]string
		words  string
	}{
		{crossNS, nil, "own namespace"},
		{cloneOf("foreign", "default", "f"), nil, "not made by this provisioner"},
		{big, nil, "request at least 100Mi"},
		{snap, nil, "CSI driver"},
		{cloneOf("src", "default", "shared"), map[string]string{"pathPattern": "${.PVC.namespace}/${.PVC.name}"}, "directory of its own"},
	}
	for _, c := range cases {
		_, state, err := f.Prov.Provision(context.Background(), controller.ProvisionOptions{StorageClass: provtest.Class(c.params), PVName: "pvc-" + c.claim.Name, PVC: c.claim})
		if err == nil || state != controller.ProvisioningFinished || !strings.Contains(err.Error(), c.words) {
			t.Errorf("claim %s: %v (%s), want a final refusal saying %q", c.claim.Name, err, state, c.words)
		}
	}
	if got := f.Entries(f.Dir); len(got) != 1 { // the source's directory only
		t.Errorf("directories made for refused clones: %v", got)
	}
	if slices.Contains(f.current("src").Finalizers, clone.FinalizerCloneSource) {
		t.Error("a refused cl left the source protected")
	}
}

// A copy that fails leaves no staging directory, releases the source, and is reported by the next
// Provision; the one after starts again and succeeds.
func TestCloneFailedStartsOver(t *testing.T) {
	f := newCloneFixture(t)
	f.Write(f.srcDir+"/poison", "breaks the copy")
	f.Opener.Set(poisoned{f.Opener.Get()})
	cl := cloneOf("src", "default", "copy")
	f.create(cl)
	opts := controller.ProvisionOptions{StorageClass: provtest.Class(nil), PVName: "pvc-copy", PVC: cl}
	if _, _, err := f.Prov.Provision(context.Background(), opts); !errors.As(err, new(*controller.IgnoredError)) {
		t.Fatalf("first Provision: %v", err)
	}
	f.wait(cl)
	_, state, err := f.Prov.Provision(context.Background(), opts)
	if err == nil || state != controller.ProvisioningInBackground {
		t.Fatalf("Provision after a failed copy: %v (%s), want its error, retried", err, state)
	}
	if got := f.Entries(f.staging()); len(got) != 0 {
		t.Errorf("a failed copy left staging directories: %v", got)
	}
	if slices.Contains(f.current("src").Finalizers, clone.FinalizerCloneSource) {
		t.Error("a failed copy left the source protected")
	}
	if _, err := os.Stat(filepath.Join(f.Dir, "default-copy-pvc-copy")); !os.IsNotExist(err) {
		t.Errorf("a failed copy left a directory for the claim: %v", err)
	}
	if !strings.Contains(f.Events(), clone.ReasonCloneFailed) {
		t.Error("no CloneFailed Event")
	}
	if err := os.Remove(filepath.Join(f.Dir, f.srcDir, "poison")); err != nil {
		t.Fatal(err)
	}
	// The next attempt waits for the backoff: until then, the failure is what Provision says.
	if _, _, err := f.Prov.Provision(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "starts again in") {
		t.Fatalf("Provision during the backoff: %v, want the failure and when the copy starts again", err)
	}
	f.Clones.Job(cl.UID).SkipBackoff() // the backoff has passed
	if _, _, err := f.Prov.Provision(context.Background(), opts); !errors.As(err, new(*controller.IgnoredError)) {
		t.Fatalf("Provision after the failure was mended: %v, want a new copy started", err)
	}
	f.wait(cl)
	if _, state, err := f.Prov.Provision(context.Background(), opts); err != nil || state != controller.ProvisioningFinished {
		t.Fatalf("Provision after the second copy: %v (%s)", err, state)
	}
}

// The sweep removes what an interrupted copy left: a staging directory no job writes, and the
// protection of a source no pending claim clones.
func TestCloneSweep(t *testing.T) {
	f := newCloneFixture(t)
	root, err := f.Clones.StagingRoot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f.Write(root+"/pvc-gone/half.txt", "half")
	f.Write(volume.StagingDir+"/another-install/pvc-theirs/half.txt", "theirs")
	if err := f.CloneConfig.Claims.Protect(context.Background(), "default", "src", f.src.UID); err != nil {
		t.Fatal(err)
	}
	protected := f.current("src")
	pending := cloneOf("src", "default", "pending")
	if err := f.claims.Add(protected); err != nil {
		t.Fatal(err)
	}
	if err := f.claims.Add(pending); err != nil {
		t.Fatal(err)
	}
	f.Clones.SweepOnce(context.Background())
	if got := f.Entries(f.staging()); len(got) != 0 {
		t.Errorf("leftover staging directories: %v", got)
	}
	f.MustHave(volume.StagingDir+"/another-install/pvc-theirs/half.txt", "theirs") // not this install's to sweep
	if !slices.Contains(f.current("src").Finalizers, clone.FinalizerCloneSource) {
		t.Error("the sweep released a source a pending claim still clones")
	}
	if err := f.claims.Delete(pending); err != nil {
		t.Fatal(err)
	}
	f.Clones.SweepOnce(context.Background())
	if slices.Contains(f.current("src").Finalizers, clone.FinalizerCloneSource) {
		t.Error("the sweep kept a source no claim clones protected")
	}
}

// slowed makes every read of a file take a while: a copy long enough to report on.
type slowed struct {
	export.Opener
	delay time.Duration
}

func (o slowed) Open(ctx context.Context, server, share string) (export.FS, error) {
	fsys, err := o.Opener.Open(ctx, server, share)
	return slowedFS{fsys, o.delay}, err
}

type slowedFS struct {
	export.FS
	delay time.Duration
}

func (f slowedFS) Tree() export.Tree { return slowedTree{f.FS.Tree(), f.delay} }

type slowedTree struct {
	export.Tree
	delay time.Duration
}

func (t slowedTree) ReadAt(ctx context.Context, n export.Node, p []byte, off uint64) (int, bool, error) {
	select {
	case <-time.After(t.delay):
	case <-ctx.Done():
		return 0, false, ctx.Err()
	}
	return t.Tree.ReadAt(ctx, n, p, off)
}

// slowClone starts a copy of files small files at 50 ms a read, sending progress Events (and
// looking for its claim's deletion) every progressEvery; the interval is set before the copy starts,
// since the copy reads it once.
func slowClone(t *testing.T, files int, progressEvery time.Duration) (*cloneFixture, *v1.PersistentVolumeClaim, controller.ProvisionOptions) {
	f := newCloneFixture(t)
	for i := 0; i < files; i++ {
		f.Write(fmt.Sprintf("%s/many/f%03d", f.srcDir, i), "data")
	}
	f.Opener.Set(slowed{f.Opener.Get(), 50 * time.Millisecond})
	interval := clone.CloneProgressInterval
	clone.CloneProgressInterval = progressEvery
	t.Cleanup(func() { clone.CloneProgressInterval = interval })
	cl := cloneOf("src", "default", "copy")
	f.create(cl)
	opts := controller.ProvisionOptions{StorageClass: provtest.Class(nil), PVName: "pvc-copy", PVC: cl}
	if _, _, err := f.Prov.Provision(context.Background(), opts); !errors.As(err, new(*controller.IgnoredError)) {
		t.Fatalf("first Provision: %v", err)
	}
	return f, cl, opts
}

// A copy that takes a while says how far it is, in Events on its claim.
func TestCloneProgress(t *testing.T) {
	f, cl, opts := slowClone(t, 200, 20*time.Millisecond)
	f.wait(cl)
	if _, state, err := f.Prov.Provision(context.Background(), opts); err != nil || state != controller.ProvisioningFinished {
		t.Fatalf("Provision after the copy: %v (%s)", err, state)
	}
	events := f.Events()
	if !strings.Contains(events, clone.ReasonCloneProgress) || !strings.Contains(events, "of 207 entries") {
		t.Errorf("no CloneProgress Event counting the source's 207 entries (its top directory included); events:\n%s", events)
	}
}

// A claim deleted while it is copied stops its copy: the staging directory goes and the source is
// released.
func TestCloneClaimDeletedStops(t *testing.T) {
	f, cl, _ := slowClone(t, 400, 20*time.Millisecond)
	if err := f.client.CoreV1().PersistentVolumeClaims("default").Delete(context.Background(), cl.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.wait(cl)
	if job := f.Clones.Job(cl.UID); !errors.Is(job.Err(), context.Canceled) {
		t.Errorf("copy of a deleted claim ended with %v, want it stopped", job.Err())
	}
	if got := f.Entries(f.staging()); len(got) != 0 {
		t.Errorf("staging directories left: %v", got)
	}
	if slices.Contains(f.current("src").Finalizers, clone.FinalizerCloneSource) {
		t.Error("the source is still protected")
	}
}

// A claim deleted at the end of its copy gets no copy: the finished copy waits in staging for the
// Provision that makes the PV, which never comes, and the sweep removes it and forgets the job.
func TestCloneClaimDeletedAtTheEnd(t *testing.T) {
	f, cl, _ := slowClone(t, 3, time.Hour) // only the sweep sees the deletion
	if err := f.client.CoreV1().PersistentVolumeClaims("default").Delete(context.Background(), cl.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := f.claims.Delete(cl); err != nil {
		t.Fatal(err)
	}
	f.wait(cl)
	if _, err := os.Stat(filepath.Join(f.Dir, "default-copy-pvc-copy")); !os.IsNotExist(err) {
		t.Errorf("a copy is in the place of a deleted claim: %v", err)
	}
	if got := f.Entries(f.staging()); len(got) != 1 || !strings.HasSuffix(got[0], clone.DoneSuffix) {
		t.Errorf("staging after the copy: %v, want the one finished copy", got)
	}
	f.Clones.SweepOnce(context.Background())
	if got := f.Entries(f.staging()); len(got) != 0 {
		t.Errorf("staging directories left after the sweep: %v", got)
	}
	if f.Clones.Job(cl.UID) != nil {
		t.Error("the sweep kept the ended job of a deleted claim")
	}
	if events := f.Events(); strings.Contains(events, clone.ReasonCloneFailed) {
		t.Errorf("a CloneFailed Warning for a deleted claim: %s", events)
	}
}

// A finished copy waiting in staging survives the sweep while its claim is pending, and a restarted
// provisioner (no job in memory) puts it in place.
func TestCloneFinishedCopyAfterRestart(t *testing.T) {
	f := newCloneFixture(t)
	cl := cloneOf("src", "default", "copy")
	f.create(cl)
	opts := controller.ProvisionOptions{StorageClass: provtest.Class(nil), PVName: "pvc-" + string(cl.UID), PVC: cl} // the library's naming, which the sweep reads
	if _, _, err := f.Prov.Provision(context.Background(), opts); !errors.As(err, new(*controller.IgnoredError)) {
		t.Fatalf("first Provision: %v", err)
	}
	f.wait(cl)
	f.Clones.Forget(cl.UID) // as after a restart
	f.Clones.SweepOnce(context.Background())
	pv, state, err := f.Prov.Provision(context.Background(), opts)
	if err != nil || state != controller.ProvisioningFinished {
		t.Fatalf("Provision after a restart: %v (%s)", err, state)
	}
	f.MustHave(pv.Annotations[volume.AnnDirectory]+"/hello.txt", "hello")
	if got := f.Entries(f.staging()); len(got) != 0 {
		t.Errorf("staging directories left: %v", got)
	}
}

// The source stays protected while another copy of it runs, or another claim waits to copy it.
func TestCloneSourceReleasedOnlyWhenUnused(t *testing.T) {
	f := newCloneFixture(t)
	ctx := context.Background()
	protect := func() {
		if err := f.CloneConfig.Claims.Protect(ctx, "default", "src", f.src.UID); err != nil {
			t.Fatal(err)
		}
	}
	protect()
	finish := f.Clones.AddRunning("other-uid", cloneOf("src", "default", "other"), f.src)
	if err := f.Clones.ReleaseSource(ctx, "default", "src"); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(f.current("src").Finalizers, clone.FinalizerCloneSource) {
		t.Error("released while another copy of it runs")
	}
	finish()
	pending := cloneOf("src", "default", "pending")
	if err := f.claims.Add(pending); err != nil {
		t.Fatal(err)
	}
	if err := f.Clones.ReleaseSource(ctx, "default", "src"); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(f.current("src").Finalizers, clone.FinalizerCloneSource) {
		t.Error("released while a pending claim clones it")
	}
	if err := f.claims.Delete(pending); err != nil {
		t.Fatal(err)
	}
	if err := f.Clones.ReleaseSource(ctx, "default", "src"); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(f.current("src").Finalizers, clone.FinalizerCloneSource) {
		t.Error("kept when nothing needs it")
	}
	// A source gone since it was read is not taken as protected.
	if err := f.CloneConfig.Claims.Protect(ctx, "default", "src", "another-uid"); err == nil {
		t.Error("Protect of a claim with another UID succeeded")
	}
}

// No claim is placed in the staging directory, where copies in progress are.
func TestStagingNeverPlaced(t *testing.T) {
	f := provtest.New(t, provtest.Options{})
	for _, dir := range []string{volume.StagingDir, volume.StagingDir + "/abc/pvc-x"} {
		claim := provtest.ClaimIn("evil", "spy", map[string]string{"dir": dir})
		_, err := f.ProvisionAs(claim, map[string]string{"pathPattern": "${.PVC.annotations.dir}"}, "pvc-spy", false)
		if err == nil || !strings.Contains(err.Error(), "copies of clones") {
			t.Errorf("claim at %s: %v, want a refusal", dir, err)
		}
	}
}

// Copies of one namespace run one at a time (another namespace's take the other slot): the second
// copy starts only once the first has finished.
func TestCloneOnePerNamespace(t *testing.T) {
	f, first, _ := slowClone(t, 40, 20*time.Millisecond)
	second := cloneOf("src", "default", "second")
	f.create(second)
	if _, _, err := f.Prov.Provision(context.Background(), controller.ProvisionOptions{StorageClass: provtest.Class(nil), PVName: "pvc-second", PVC: second}); !errors.As(err, new(*controller.IgnoredError)) {
		t.Fatalf("Provision of the second clone: %v", err)
	}
	f.wait(first)
	f.wait(second)
	var order []string
	for _, e := range strings.Split(f.Events(), "\n") {
		for _, reason := range []string{clone.ReasonCloneStarted, clone.ReasonCloneFinished} {
			if strings.Contains(e, reason) {
				order = append(order, reason)
			}
		}
	}
	want := []string{clone.ReasonCloneStarted, clone.ReasonCloneFinished, clone.ReasonCloneStarted, clone.ReasonCloneFinished}
	if !slices.Equal(order, want) {
		t.Errorf("clone Events in order %v, want %v: two copies of one namespace ran at once", order, want)
	}
}

// Only a clone that can still run holds its source: a pending claim refused for good (smaller
// than the source) or one of another provisioner's class does not keep the source protected after
// a successful copy, nor through the sweep.
func TestCloneSourceNotHeldByClonesThatCannotRun(t *testing.T) {
	f := newCloneFixture(t)
	ctx := context.Background()
	src := f.current("src")
	src.Status.Capacity = v1.ResourceList{v1.ResourceStorage: resource.MustParse("100Mi")}
	if err := f.claims.Update(src); err != nil {
		t.Fatal(err)
	}
	small := cloneOf("src", "default", "small")
	small.Spec.Resources.Requests[v1.ResourceStorage] = resource.MustParse("10Mi")
	othersClass := "someone-elses"
	foreign := cloneOf("src", "default", "foreign")
	foreign.Spec.StorageClassName = &othersClass
	if err := f.Classes.Add(&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: othersClass}, Provisioner: "someone.else/nfs"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*v1.PersistentVolumeClaim{small, foreign} {
		f.create(c)
	}
	if _, _, err := f.Prov.Provision(ctx, controller.ProvisionOptions{StorageClass: provtest.Class(nil), PVName: "pvc-small", PVC: small}); err == nil {
		t.Fatal("a clone smaller than its source was not refused")
	}
	cl := cloneOf("src", "default", "copy")
	f.create(cl)
	opts := controller.ProvisionOptions{StorageClass: provtest.Class(nil), PVName: "pvc-copy", PVC: cl}
	if _, _, err := f.Prov.Provision(ctx, opts); !errors.As(err, new(*controller.IgnoredError)) {
		t.Fatalf("first Provision: %v", err)
	}
	f.wait(cl)
	if slices.Contains(f.current("src").Finalizers, clone.FinalizerCloneSource) {
		t.Error("after the copy, the source stays protected for claims that can never copy it")
	}
	pv, _, err := f.Prov.Provision(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	cl.Spec.VolumeName = pv.Name // bound
	if err := f.claims.Update(cl); err != nil {
		t.Fatal(err)
	}
	// Protected again (an older version's leftover): the sweep releases it all the same.
	if err := f.CloneConfig.Claims.Protect(ctx, "default", "src", f.src.UID); err != nil {
		t.Fatal(err)
	}
	src = f.current("src")
	src.Status.Capacity = v1.ResourceList{v1.ResourceStorage: resource.MustParse("100Mi")}
	if err := f.claims.Update(src); err != nil {
		t.Fatal(err)
	}
	f.Clones.SweepOnce(ctx)
	if slices.Contains(f.current("src").Finalizers, clone.FinalizerCloneSource) {
		t.Error("the sweep keeps the source protected for claims that can never copy it")
	}
}

// A source whose files read as far more than they use (a huge sparse file) holds a copy slot only
// for what its used bytes justify: the copy ends, says why, and the slot is free for others.
func TestCloneTimeBoundedBySource(t *testing.T) {
	f := newCloneFixture(t)
	defer clone.SetCopyTime(200*time.Millisecond, 0, 8<<20)()
	sparse := filepath.Join(f.Dir, f.srcDir, "sparse.img")
	if err := os.WriteFile(sparse, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(sparse, 1536<<20); err != nil {
		t.Fatal(err)
	}
	f.Opener.Set(slowed{f.Opener.Get(), 50 * time.Millisecond})
	cl := cloneOf("src", "default", "copy")
	cl.Spec.Resources.Requests[v1.ResourceStorage] = resource.MustParse("2Gi")
	f.create(cl)
	opts := controller.ProvisionOptions{StorageClass: provtest.Class(nil), PVName: "pvc-copy", PVC: cl}
	start := time.Now()
	if _, _, err := f.Prov.Provision(context.Background(), opts); !errors.As(err, new(*controller.IgnoredError)) {
		t.Fatalf("first Provision: %v", err)
	}
	f.wait(cl)
	if err := f.Clones.Job(cl.UID).Err(); err == nil || !strings.Contains(err.Error(), "took longer than") {
		t.Fatalf("copy of a 1.5 GiB sparse file read at 20 chunks/s: %v after %s, want it ended for taking longer than its source justifies", err, time.Since(start))
	}
	if events := f.Events(); !strings.Contains(events, clone.ReasonCloneFailed) || !strings.Contains(events, "sparse") {
		t.Errorf("no CloneFailed Event saying why: %s", events)
	}
}
