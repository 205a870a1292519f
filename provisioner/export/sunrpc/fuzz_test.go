package sunrpc

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// The seed corpora are in testdata/fuzz; go test runs them, go test -fuzz explores from them.

func FuzzDecodeReply(f *testing.F) {
	f.Fuzz(func(t *testing.T, rec []byte) {
		var xid uint32
		if len(rec) >= 4 {
			xid = binary.BigEndian.Uint32(rec)
		}
		res, err := DecodeReply(rec, xid)
		noPanic(t, err)
		if err == nil && len(res) > len(rec) {
			t.Fatal("results longer than the record")
		}
		_, err = DecodeReply(rec, xid+1)
		if err == nil {
			t.Fatal("accepted a reply with the wrong xid")
		}
	})
}

func FuzzReadRecord(f *testing.F) {
	f.Fuzz(func(t *testing.T, stream []byte) {
		r := bytes.NewReader(stream)
		for i := 0; i < 64; i++ {
			rec, err := ReadRecord(r, 1<<12)
			if err != nil {
				return
			}
			if len(rec) > 1<<12 {
				t.Fatalf("record of %d bytes beyond the limit", len(rec))
			}
		}
	})
}

func noPanic(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), "panic") {
		t.Fatalf("decoder panicked: %v", err)
	}
}
