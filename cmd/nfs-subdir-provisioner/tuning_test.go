package main

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
)

func TestLibraryClientDropsOnlyProvisioningEvents(t *testing.T) {
	real := fake.NewClientset()
	events := libraryClient{real}.CoreV1().Events("")
	sink := &typedcorev1.EventSinkImpl{Interface: events} // what the library's broadcaster writes to
	newEvent := func(name, eventType, reason string) *v1.Event {
		return &v1.Event{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Type: eventType, Reason: reason}
	}
	for _, e := range []*v1.Event{
		newEvent("a", v1.EventTypeNormal, "Provisioning"),
		newEvent("b", v1.EventTypeNormal, "ProvisioningSucceeded"),
		newEvent("c", v1.EventTypeWarning, "ProvisioningFailed"),
		newEvent("d", v1.EventTypeWarning, "Provisioning"), // not the library's Normal one: kept
	} {
		if _, err := sink.Create(e); err != nil {
			t.Fatalf("create %s: %v", e.Name, err)
		}
	}
	list, err := real.CoreV1().Events("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range list.Items {
		got[e.Name] = true
	}
	if got["a"] || !got["b"] || !got["c"] || !got["d"] {
		t.Errorf("events written: %v; want b, c and d (not the Normal Provisioning one)", got)
	}
	// Every other client passes through.
	if _, err := (libraryClient{real}).CoreV1().PersistentVolumes().Create(context.Background(), &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := real.CoreV1().PersistentVolumes().Get(context.Background(), "pv", metav1.GetOptions{}); err != nil {
		t.Errorf("PV created through libraryClient is not in the clientset: %v", err)
	}
}

func TestCacheTransform(t *testing.T) {
	pending := &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{
		Name:          "c",
		Labels:        map[string]string{"app": "x"},
		Annotations:   map[string]string{"k": "v"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
	}}
	out, err := cacheTransform(pending)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*v1.PersistentVolumeClaim)
	if got.ManagedFields != nil || got.Annotations["k"] != "v" || got.Labels["app"] != "x" || got.Name != "c" {
		t.Errorf("pending claim after transform: %+v", got.ObjectMeta)
	}

	class := "gold"
	bound := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name: "b", Namespace: "ns", UID: "u", ResourceVersion: "7",
			Labels:        map[string]string{"app": "x"},
			Annotations:   map[string]string{"k": "v", betaStorageClassAnnotation: "old"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kcm"}},
		},
		Spec:   v1.PersistentVolumeClaimSpec{VolumeName: "pv", StorageClassName: &class, AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteMany}},
		Status: v1.PersistentVolumeClaimStatus{Phase: v1.ClaimBound},
	}
	out, err = cacheTransform(bound)
	if err != nil {
		t.Fatal(err)
	}
	got = out.(*v1.PersistentVolumeClaim)
	want := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "ns", UID: "u", ResourceVersion: "7",
			Annotations: map[string]string{betaStorageClassAnnotation: "old"}},
		Spec:   v1.PersistentVolumeClaimSpec{VolumeName: "pv", StorageClassName: &class},
		Status: v1.PersistentVolumeClaimStatus{Phase: v1.ClaimBound},
	}
	if !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("bound claim after transform:\n%+v\nwant\n%+v", got, want)
	}

	volume := &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv", Labels: map[string]string{"a": "b"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "x"}}}}
	out, _ = cacheTransform(volume)
	if pv := out.(*v1.PersistentVolume); pv.ManagedFields != nil || pv.Labels["a"] != "b" {
		t.Errorf("PV after transform: %+v", pv.ObjectMeta)
	}
	// Tombstones and other objects pass unchanged.
	if out, err := cacheTransform("x"); err != nil || out != "x" {
		t.Errorf("non-object: %v %v", out, err)
	}
}

func TestTuneGC(t *testing.T) {
	for _, tc := range []struct {
		gogc string
		want int // -1: not called
	}{{"", defaultGCPercent}, {"100", -1}, {"off", -1}} {
		got := -1
		tuneGC(func(name string) string {
			if name == "GOGC" {
				return tc.gogc
			}
			return ""
		}, func(p int) int { got = p; return 100 })
		if got != tc.want {
			t.Errorf("GOGC=%q: SetGCPercent(%d), want %d (-1: not called)", tc.gogc, got, tc.want)
		}
	}
}
