package health

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

type flakyOpener struct {
	err   error
	opens int
}

func (o *flakyOpener) Open(context.Context, string, string) (export.FS, error) {
	o.opens++
	if o.err != nil {
		return nil, o.err
	}
	return rootFS{}, nil
}

type rootFS struct{ export.FS }

func (rootFS) Stat(context.Context, string) (export.Info, error) {
	return export.Info{IsDir: true}, nil
}

func get(t *testing.T, mux *http.ServeMux, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestReadyFollowsTheExport(t *testing.T) {
	o := &flakyOpener{err: errors.New("connection refused")}
	c := &Checker{Opener: o, Server: "nfs.example", Share: "/srv", CacheFor: time.Nanosecond}
	mux := http.NewServeMux()
	c.Register(mux)

	if code, _ := get(t, mux, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d while the server is down; liveness must not depend on NFS", code)
	}
	code, body := get(t, mux, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "nfs.example:/srv") || !strings.Contains(body, "connection refused") {
		t.Errorf("/readyz down = %d %q", code, body)
	}
	o.err = nil
	if code, _ := get(t, mux, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz up = %d", code)
	}
}

func TestReadyCachesResult(t *testing.T) {
	o := &flakyOpener{}
	c := &Checker{Opener: o, Server: "nfs.example", Share: "/srv", CacheFor: time.Hour}
	for i := 0; i < 5; i++ {
		if err := c.Check(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if o.opens != 1 {
		t.Errorf("%d checks reached the server, want 1", o.opens)
	}
}
