package sunrpc

import (
	"context"
	"testing"
	"time"
)

func TestBackoffDoublesToASecondAndStopsWithItsContext(t *testing.T) {
	b := NewBackoff(time.Microsecond)
	for range 22 { // 2^21 µs > 1 s
		if !b.Wait(context.Background()) {
			t.Fatal("Wait gave up with its context alive")
		}
	}
	if b.next != time.Second {
		t.Errorf("next wait %s, want the cap of 1s", b.next)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if b.Wait(ctx) {
		t.Error("Wait waited out a second with its context ended")
	}
}
