package provisioner_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/internal/provtest"
)

// versionLog is an Opener that records the NFS version each Open was asked for.
type versionLog struct {
	export.Opener
	mu   sync.Mutex
	seen []export.Version
}

func (l *versionLog) Open(ctx context.Context, server, share string) (export.FS, error) {
	l.mu.Lock()
	l.seen = append(l.seen, export.VersionFrom(ctx))
	l.mu.Unlock()
	return l.Opener.Open(ctx, server, share)
}

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
		opened       string // versions asked of the opener, comma-separated
		pvOptions    string
	}{
		{name: "mountOptions name it", mountOptions: []string{"nfsvers=4.1", "hard"}, opened: "4.1", pvOptions: "nfsvers=4.1,hard"},
		{name: "vers=4 is 4.1", mountOptions: []string{"vers=4"}, opened: "4.1", pvOptions: "vers=4"},
		{name: "class parameter", params: map[string]string{"nfsVersion": "4.1"}, opened: "4.1", pvOptions: "nfsvers=4.1"},
		{name: "nothing says", opened: "", pvOptions: ""},
		{name: "NFS_VERSION", process: "4.1", opened: "", pvOptions: "nfsvers=4.1"},
		{name: "class over NFS_VERSION", process: "4.1", params: map[string]string{"nfsVersion": "3"}, opened: "3", pvOptions: "nfsvers=3"},
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
			if err := f.Prov.Delete(context.Background(), pv); err != nil {
				t.Fatal(err)
			}
			want := tc.opened
			if tc.pvOptions != "" && want == "" {
				want = string(tc.process) // the PV says it now
			}
			if got := versions(log.take()); got != want {
				t.Errorf("deleting opened the export over %q, want %q (the PV's mount options say it)", got, want)
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
