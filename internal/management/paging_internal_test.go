package management

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/store"
)

// TestCheckpointListOptions: whatever the offset a from token names, the
// store is asked for take records from it, not for the listing up to it
// (a crafted from=o1:999999999 loaded a whole listing per request).
func TestCheckpointListOptions(t *testing.T) {
	for _, c := range []checkpoint{{0, 50}, {6, 3}, {7, 3}, {999999999, 2}} {
		if got, want := c.listOptions(), (store.ListOptions{Offset: c.offset, PerPage: c.take}); got != want {
			t.Errorf("%+v: %+v, want %+v", c, got, want)
		}
	}
}
