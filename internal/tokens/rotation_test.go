package tokens

import (
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestRotationAcrossProcesses runs two Keys, each on its own store (its own
// connection pool, as two replicas have) on one database, and rotates on
// both at once, several rounds: each round ends with exactly one new key,
// and both replicas agree on it after a reload.
func TestRotationAcrossProcesses(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		ctx := t.Context()
		dsn := storetest.DSN(t, backend)
		kr := newKeyring(t)
		var replicas [2]*Keys
		for i := range replicas {
			s, err := sqlstore.Open(ctx, dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if replicas[i], err = NewKeys(ctx, s, kr, nil); err != nil {
				t.Fatal(err)
			}
			if err := replicas[i].EnsureNext(ctx); err != nil {
				t.Fatal(err)
			}
		}
		inFlight, err := replicas[0].Sign(map[string]any{"sub": "x", "exp": time.Now().Add(time.Hour).Unix()})
		if err != nil {
			t.Fatal(err)
		}
		for round := range 3 {
			before := len(listKeys(t, replicas[0].ks))
			var wg sync.WaitGroup
			got := make([]*store.SigningKey, len(replicas))
			errs := make([]error, len(replicas))
			for i, k := range replicas {
				wg.Go(func() { got[i], errs[i] = k.Rotate(ctx) })
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if after := len(listKeys(t, replicas[0].ks)); after != before+1 {
				t.Fatalf("round %d: %d keys after two concurrent rotations, want %d", round, after, before+1)
			}
			if got[0].KID != got[1].KID {
				t.Errorf("round %d: replicas report next keys %s and %s", round, got[0].KID, got[1].KID)
			}
			if replicas[0].KID() != replicas[1].KID() {
				t.Errorf("round %d: replicas sign with %s and %s", round, replicas[0].KID(), replicas[1].KID())
			}
		}
		// The token signed before the rotations still verifies on both:
		// its key is a previous key, published until its tokens expire.
		for i, k := range replicas {
			if _, _, err := k.Verify(inFlight); err != nil {
				t.Errorf("replica %d: in-flight token: %v", i, err)
			}
		}
	})
}

func TestPreviousKeyRetention(t *testing.T) {
	f := newFixture(t, storetest.SQLite)
	ctx := t.Context()
	if err := f.keys.EnsureNext(ctx); err != nil {
		t.Fatal(err)
	}
	first := f.keys.KID()
	if _, err := f.keys.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	rows := listKeys(t, f.ks)
	kids := func(now time.Time) []string {
		set, err := buildKeySet(rows, f.kr, now)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Keys []struct{ Kid string } }
		_ = json.Unmarshal(set.jwks, &doc)
		var out []string
		for _, k := range doc.Keys {
			out = append(out, k.Kid)
		}
		return out
	}
	if got := kids(time.Now().Add(MaxTokenLifetime - time.Minute)); !slices.Contains(got, first) {
		t.Errorf("previous key unpublished before its tokens expired: %v", got)
	}
	if got := kids(time.Now().Add(MaxTokenLifetime + time.Minute)); slices.Contains(got, first) || len(got) != 2 {
		t.Errorf("previous key still published after its tokens expired: %v", got)
	}
}
