package class

import (
	"errors"
	"strings"
	"testing"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

func u32(v uint32) *uint32 { return &v }

func modePtr(m export.Mode) *export.Mode { return &m }

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		params  map[string]string
		want    Options
		wantErr string // substring; the parameter's name must be in it
	}{
		{name: "no parameters archive by default", params: nil, want: Options{OnDelete: OnDeleteArchive}},
		{name: "archiveOnDelete false deletes", params: map[string]string{"archiveOnDelete": "false"}, want: Options{OnDelete: OnDeleteDelete}},
		{name: "archiveOnDelete true archives", params: map[string]string{"archiveOnDelete": "true"}, want: Options{OnDelete: OnDeleteArchive}},
		{name: "archiveOnDelete FALSE", params: map[string]string{"archiveOnDelete": "FALSE"}, want: Options{OnDelete: OnDeleteDelete}},
		{name: "onDelete retain", params: map[string]string{"onDelete": "retain"}, want: Options{OnDelete: OnDeleteRetain}},
		{name: "onDelete delete", params: map[string]string{"onDelete": "delete"}, want: Options{OnDelete: OnDeleteDelete}},
		{name: "onDelete Archive mixed case", params: map[string]string{"onDelete": "Archive"}, want: Options{OnDelete: OnDeleteArchive}},
		{name: "onDelete agrees with archiveOnDelete", params: map[string]string{"onDelete": "delete", "archiveOnDelete": "false"}, want: Options{OnDelete: OnDeleteDelete}},
		{name: "retain with archiveOnDelete false agrees", params: map[string]string{"onDelete": "retain", "archiveOnDelete": "false"}, want: Options{OnDelete: OnDeleteRetain}},
		{name: "server and share", params: map[string]string{"server": "nfs-2.example", "share": "/srv/b/"},
			want: Options{OnDelete: OnDeleteArchive, Server: "nfs-2.example", Share: "/srv/b"}},
		{name: "owner and mode", params: map[string]string{"mode": "0750", "uid": "1000", "gid": "2000"},
			want: Options{OnDelete: OnDeleteArchive, Owner: OwnerOverride{Mode: modePtr(0o750), UID: u32(1000), GID: u32(2000)}}},
		{name: "mode with setgid", params: map[string]string{"mode": "2775"},
			want: Options{OnDelete: OnDeleteArchive, Owner: OwnerOverride{Mode: modePtr(0o2775)}}},
		{name: "pathPattern", params: map[string]string{"pathPattern": "${.PVC.namespace}/${.PVC.annotations.nfs.io/dir}"},
			want: Options{OnDelete: OnDeleteArchive, PathPattern: "${.PVC.namespace}/${.PVC.annotations.nfs.io/dir}"}},

		{name: "unknown key", params: map[string]string{"archiveondelete": "false"}, wantErr: `"archiveondelete": unknown parameter; valid parameters are archiveOnDelete`},
		{name: "archiveOnDelete not bool", params: map[string]string{"archiveOnDelete": "yes please"}, wantErr: `"archiveOnDelete"`},
		{name: "onDelete unknown", params: map[string]string{"onDelete": "shred"}, wantErr: `"onDelete": "shred" is not "archive", "delete" or "retain"`},
		{name: "onDelete conflicts", params: map[string]string{"onDelete": "delete", "archiveOnDelete": "true"}, wantErr: `"onDelete": "delete" conflicts with archiveOnDelete`},
		{name: "archive conflicts with false", params: map[string]string{"onDelete": "archive", "archiveOnDelete": "false"}, wantErr: "conflicts"},
		{name: "mode not octal", params: map[string]string{"mode": "0789"}, wantErr: `"mode"`},
		{name: "mode too big", params: map[string]string{"mode": "17777"}, wantErr: `"mode"`},
		{name: "mode negative", params: map[string]string{"mode": "-1"}, wantErr: `"mode"`},
		{name: "mode empty", params: map[string]string{"mode": ""}, wantErr: `"mode"`},
		{name: "uid negative", params: map[string]string{"uid": "-1"}, wantErr: `"uid"`},
		{name: "uid name", params: map[string]string{"uid": "nobody"}, wantErr: `"uid"`},
		{name: "uid 2^32-1", params: map[string]string{"uid": "4294967295"}, wantErr: `"uid"`},
		{name: "gid too big", params: map[string]string{"gid": "4294967296"}, wantErr: `"gid"`},
		{name: "share relative", params: map[string]string{"share": "srv/nfs"}, wantErr: `"share"`},
		{name: "share dotdot", params: map[string]string{"share": "/srv/../etc"}, wantErr: `"share"`},
		{name: "server empty", params: map[string]string{"server": " "}, wantErr: `"server"`},
		{name: "server with slash", params: map[string]string{"server": "nfs:/srv"}, wantErr: `"server"`},
		{name: "pathPattern absolute", params: map[string]string{"pathPattern": "/etc"}, wantErr: `"pathPattern"`},
		{name: "pathPattern dotdot", params: map[string]string{"pathPattern": "${.PVC.namespace}/../x"}, wantErr: `"pathPattern"`},
		{name: "pathPattern unknown var", params: map[string]string{"pathPattern": "${.PVC.uid}"}, wantErr: `unknown reference ${.PVC.uid}`},
		{name: "pathPattern unclosed", params: map[string]string{"pathPattern": "${.PVC.name"}, wantErr: "unclosed"},
		{name: "pathPattern empty label key", params: map[string]string{"pathPattern": "${.PVC.labels.}"}, wantErr: "names no key"},
		{name: "pathPattern template syntax", params: map[string]string{"pathPattern": "{{ .PVC.name }}/${.PVC.name}"}, want: Options{OnDelete: OnDeleteArchive, PathPattern: "{{ .PVC.name }}/${.PVC.name}"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.params)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				var pe *ParamError
				if !errors.As(err, &pe) {
					t.Errorf("error %v is not a *ParamError", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !equalOptions(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func samePtr[T comparable](x, y *T) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }

func equalOptions(a, b Options) bool {
	return a.OnDelete == b.OnDelete && a.PathPattern == b.PathPattern && a.Server == b.Server && a.Share == b.Share &&
		samePtr(a.Owner.Mode, b.Owner.Mode) && samePtr(a.Owner.UID, b.Owner.UID) && samePtr(a.Owner.GID, b.Owner.GID)
}

func TestParseClaimOwnerNamesAnnotation(t *testing.T) {
	_, err := ParseClaimOwner(map[string]string{AnnDirectoryUID: "root"})
	if err == nil || !strings.Contains(err.Error(), `PVC annotation "k8s-sigs.io/nfs-directory-uid"`) {
		t.Fatalf("got %v", err)
	}
	o, err := ParseClaimOwner(map[string]string{AnnDirectoryMode: "700", AnnDirectoryGID: "5"})
	if err != nil || *o.Mode != 0o700 || *o.GID != 5 || o.UID != nil {
		t.Fatalf("got %+v, %v", o, err)
	}
}

func TestResolveOwnerPrecedence(t *testing.T) {
	claim := OwnerOverride{UID: u32(1)}
	class := OwnerOverride{UID: u32(2), GID: u32(20)}
	env := OwnerOverride{UID: u32(3), GID: u32(30), Mode: modePtr(0o700)}
	got := ResolveOwner(claim, class, env)
	if got.UID != 1 || got.GID != 20 || got.Mode != 0o700 {
		t.Errorf("claim>class>env: got %+v", got)
	}
	if got := ResolveOwner(OwnerOverride{}, OwnerOverride{}, OwnerOverride{}); got != DefaultOwner {
		t.Errorf("nothing set: got %+v, want %+v", got, DefaultOwner)
	}
	if DefaultOwner.Mode != 0o777 || DefaultOwner.UID != 0 || DefaultOwner.GID != 0 {
		t.Errorf("DefaultOwner changed: %+v", DefaultOwner)
	}
}
