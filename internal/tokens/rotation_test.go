package tokens

import (
	"context"
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

// TestKeyChangesReachOtherReplicas: two Keys, each on its own store, on
// one PostgreSQL schema; replica B follows the store's key notifications,
// as a server does, and runs no periodic reload. A rotation through
// replica A makes B sign with the new key, and a revocation through A
// makes B stop publishing and accepting the revoked key, within a bound
// far below the periodic reload's 30 s.
func TestKeyChangesReachOtherReplicas(t *testing.T) {
	ctx := t.Context()
	dsn := storetest.DSN(t, storetest.Postgres)
	kr := newKeyring(t)
	open := func() (*sqlstore.Store, *Keys) {
		s, err := sqlstore.Open(ctx, dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		k, err := NewKeys(ctx, s, kr, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := k.EnsureNext(ctx); err != nil {
			t.Fatal(err)
		}
		return s, k
	}
	_, a := open()
	stB, b := open()
	lctx, stop := context.WithCancel(context.Background())
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		stB.Listen(lctx, sqlstore.Changes{Keys: func() { b.Refresh(lctx) }})
	}()
	t.Cleanup(func() {
		stop()
		<-listening
	})

	old := b.KID()
	signed, err := b.Sign(map[string]any{"sub": "x", "exp": time.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	// eventually polls replica B until ok holds.
	eventually := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: replica B did not follow within 3 s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	next, err := a.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	current := a.KID()
	eventually("rotation", func() bool { return b.KID() == current })
	eventually("next key published", func() bool { return slices.Contains(jwksKIDs(t, b), next.KID) })
	if _, _, err := b.Verify(signed); err != nil {
		t.Fatalf("token of the previous key before its revocation: %v", err)
	}

	if _, err := a.Revoke(ctx, old); err != nil {
		t.Fatal(err)
	}
	eventually("revocation", func() bool {
		_, _, err := b.Verify(signed)
		return err != nil && !slices.Contains(jwksKIDs(t, b), old)
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
