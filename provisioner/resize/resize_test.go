package resize

import (
	"context"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/volume"
)

const resizeProvisioner = "nfs.example/provisioner"

func resizeFixture(t *testing.T, pvProvisioner string, pvSize string, boundTo types.UID) (*Controller, *fake.Clientset, *record.FakeRecorder) {
	t.Helper()
	claim := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "data", UID: "claim-uid"},
		Spec: v1.PersistentVolumeClaimSpec{VolumeName: "pv-1",
			Resources: v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("200Mi")}}},
		Status: v1.PersistentVolumeClaimStatus{Phase: v1.ClaimBound, Capacity: v1.ResourceList{v1.ResourceStorage: resource.MustParse("100Mi")}},
	}
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-1", Annotations: map[string]string{volume.AnnProvisionedBy: pvProvisioner}},
		Spec: v1.PersistentVolumeSpec{Capacity: v1.ResourceList{v1.ResourceStorage: resource.MustParse(pvSize)},
			ClaimRef:               &v1.ObjectReference{Namespace: "ns", Name: "data", UID: boundTo},
			PersistentVolumeSource: v1.PersistentVolumeSource{NFS: &v1.NFSVolumeSource{Server: "s", Path: "/p"}}},
	}
	client := fake.NewClientset(claim, pv)
	factory := informers.NewSharedInformerFactory(client, 0)
	claimInformer := factory.Core().V1().PersistentVolumeClaims().Informer()
	pvInformer := factory.Core().V1().PersistentVolumes().Informer()
	claimInformer.GetIndexer().Add(claim)
	pvInformer.GetIndexer().Add(pv)
	recorder := record.NewFakeRecorder(10)
	r, err := New(client, claimInformer, pvInformer, resizeProvisioner, recorder, workqueue.DefaultTypedControllerRateLimiter[string]())
	if err != nil {
		t.Fatal(err)
	}
	return r, client, recorder
}

func TestResizeCompletes(t *testing.T) {
	// A PV already at the new size: a restart after step 2.
	for _, pvSize := range []string{"100Mi", "200Mi"} {
		r, client, recorder := resizeFixture(t, resizeProvisioner, pvSize, "claim-uid")
		ctx := context.Background()
		if err := r.sync(ctx, "ns/data"); err != nil {
			t.Fatal(err)
		}
		pv, _ := client.CoreV1().PersistentVolumes().Get(ctx, "pv-1", metav1.GetOptions{})
		if c := pv.Spec.Capacity[v1.ResourceStorage]; c.String() != "200Mi" {
			t.Errorf("PV capacity %s, want 200Mi", c.String())
		}
		claim, _ := client.CoreV1().PersistentVolumeClaims("ns").Get(ctx, "data", metav1.GetOptions{})
		if c := claim.Status.Capacity[v1.ResourceStorage]; c.String() != "200Mi" {
			t.Errorf("claim capacity %s, want 200Mi", c.String())
		}
		if a := claim.Status.AllocatedResources[v1.ResourceStorage]; a.String() != "200Mi" {
			t.Errorf("allocatedResources %s, want 200Mi", a.String())
		}
		if len(claim.Status.AllocatedResourceStatuses) != 0 || len(claim.Status.Conditions) != 0 {
			t.Errorf("resize status left: %v, conditions %v", claim.Status.AllocatedResourceStatuses, claim.Status.Conditions)
		}
		var events []string
		for len(recorder.Events) > 0 {
			events = append(events, <-recorder.Events)
		}
		if all := strings.Join(events, "\n"); !strings.Contains(all, ReasonResizing) || !strings.Contains(all, ReasonResizeSuccessful) || !strings.Contains(all, "not a quota") {
			t.Errorf("events %v", events)
		}
		// Done: a second sync (a retry, a restart) changes nothing.
		client.ClearActions()
		if err := r.sync(ctx, "ns/data"); err != nil {
			t.Fatal(err)
		}
		for _, a := range client.Actions() {
			if a.GetVerb() != "get" {
				t.Errorf("a finished resize was acted on again: %v", a)
			}
		}
	}
}

// A claim whose PV another provisioner made, or whose PV is bound to
// another claim, is left alone.
func TestResizeIgnoresOthersVolumes(t *testing.T) {
	for _, tc := range []struct {
		provisioner string
		boundTo     types.UID
	}{{"someone.else/provisioner", "claim-uid"}, {resizeProvisioner, "another-claim"}} {
		r, client, _ := resizeFixture(t, tc.provisioner, "100Mi", tc.boundTo)
		client.ClearActions()
		if err := r.sync(context.Background(), "ns/data"); err != nil {
			t.Fatal(err)
		}
		for _, a := range client.Actions() {
			if a.GetVerb() != "get" {
				t.Errorf("%+v: acted on a volume that is not this claim's of ours: %v", tc, a)
			}
		}
	}
}
