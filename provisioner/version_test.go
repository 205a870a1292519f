package provisioner_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/internal/provtest"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/volume"
)

// versionLog is an Opener that records the NFS version each Open was asked for.
type versionLog struct {
	export.Opener
	mu   sync.Mutex
	seen []export.Version
}

func (l *versionLog) Open(ctx context.Context, server, share string) (export.FS, error) {
	v := export.VersionFrom(ctx)
	l.mu.Lock()
	l.seen = append(l.seen, v)
	l.mu.Unlock()
	fsys, err := l.Opener.Open(ctx, server, share)
	switch v {
	case "", "3":
		v = "3" // the default
	case "auto":
		v = "4.1" // a server that has it
	}
	return versionedFS{fsys, v}, err
}

// versionedFS is an FS spoken to over a version, as the wire backend's are.
type versionedFS struct {
	export.FS
	v export.Version
}

func (f versionedFS) NFSVersion() export.Version { return f.v }

func (l *versionLog) take() []export.Version {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := slices.Compact(l.seen)
	l.seen = nil
	return s
}

// The version a class names (nfsVersion, or nfsvers= in its mountOptions) is the one its
// directories are made and removed over; a version a setting chose is in the PV's mount options.
func TestProvisionNFSVersion(t *testing.T) {
	for _, tc := range []struct {
		name         string
		process      export.Version
		params       map[string]string
		mountOptions []string
		opened       string // versions asked of the opener to provision, comma-separated
		pvOptions    string
		used         string // the version the directory was made over: the PV's annotation, and what deletes it
	}{
		{name: "mountOptions name it", mountOptions: []string{"nfsvers=4.1", "hard"}, opened: "4.1", pvOptions: "nfsvers=4.1,hard", used: "4.1"},
		{name: "vers=4 is auto", mountOptions: []string{"vers=4"}, opened: "auto", pvOptions: "vers=4", used: "4.1"},
		{name: "nfsvers=4.2 is auto", mountOptions: []string{"hard,nfsvers=4.2"}, opened: "auto", pvOptions: "hard,nfsvers=4.2", used: "4.1"},
		{name: "nfsVersion 3 over nfsvers=4", params: map[string]string{"nfsVersion": "3"}, mountOptions: []string{"nfsvers=4"}, opened: "3", pvOptions: "nfsvers=4", used: "3"},
		{name: "class parameter", params: map[string]string{"nfsVersion": "4.1"}, opened: "4.1", pvOptions: "nfsvers=4.1", used: "4.1"},
		{name: "nothing says", opened: "", pvOptions: "", used: "3"},
		{name: "NFS_VERSION", process: "3", opened: "", pvOptions: "nfsvers=3", used: "3"},
		{name: "class over NFS_VERSION", process: "4.1", params: map[string]string{"nfsVersion": "3"}, opened: "3", pvOptions: "nfsvers=3", used: "3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := provtest.New(t, provtest.Options{Version: tc.process})
			log := &versionLog{Opener: f.Exports}
			f.Opener.Set(log)
			sc := provtest.Class(tc.params)
			sc.MountOptions = tc.mountOptions
			pv := f.MustProvision(provtest.Claim(nil), sc)
			if got := versions(log.take()); got != tc.opened {
				t.Errorf("provisioning opened the export over %q, want %q", got, tc.opened)
			}
			if got := strings.Join(pv.Spec.MountOptions, ","); got != tc.pvOptions {
				t.Errorf("PV mount options %q, want %q", got, tc.pvOptions)
			}
			if got := pv.Annotations[volume.AnnNFSVersion]; got != tc.used {
				t.Errorf("PV annotation %s=%q, want %q", volume.AnnNFSVersion, got, tc.used)
			}
			if err := f.Prov.Delete(context.Background(), pv); err != nil {
				t.Fatal(err)
			}
			if got := versions(log.take()); got != tc.used {
				t.Errorf("deleting opened the export over %q, want %q (the version it was made over)", got, tc.used)
			}
		})
	}
}

func TestProvisionNFSVersionConflict(t *testing.T) {
	f := provtest.New(t, provtest.Options{})
	sc := provtest.Class(map[string]string{"nfsVersion": "4.1"})
	sc.MountOptions = []string{"nfsvers=3"}
	_, _, err := f.Provision(provtest.Claim(nil), sc)
	if err == nil || !strings.Contains(err.Error(), "nfsVersion") || !strings.Contains(err.Error(), "mountOptions") {
		t.Fatalf("nfsVersion 4.1 with mountOptions nfsvers=3: %v; want an error naming both", err)
	}
}

func versions(vs []export.Version) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ",")
}
