package tokens

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/secrets"
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
			_, replicas[i] = openReplica(t, dsn, kr)
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
	_, a := openReplica(t, dsn, kr)
	stB, b := openReplica(t, dsn, kr)
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
		set, err := buildKeySet(rows, f.kr, now, nil)
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

// behindReplica is replica B of two on one database that missed a master
// key rotation: A seals with a new master key and still opens the old one
// (GATEHOUSE_SECRET_KEY_OLD), B holds only the old one. A rotation through
// B, then one through A, which seals its new next key under the new master
// key, leave B unable to load the keys (it cannot prove that next key
// genuine), so B goes on signing with the key before (previous, still
// trusted).
type behindReplica struct {
	a, b *Keys
	// first and second are the keys B signed with, before each rotation,
	// and firstTok and secondTok tokens B signed with them.
	first, second       string
	firstTok, secondTok string
}

func newBehindReplica(t *testing.T, backend string) *behindReplica {
	t.Helper()
	ctx := t.Context()
	dsn := storetest.DSN(t, backend)
	oldMaster, newMaster := make([]byte, 32), make([]byte, 32)
	rand.Read(oldMaster)
	rand.Read(newMaster)
	keyring := func(current []byte, olds ...[]byte) *secrets.Keyring {
		kr, err := secrets.NewKeyring(current, olds...)
		if err != nil {
			t.Fatal(err)
		}
		return kr
	}
	_, b := openReplica(t, dsn, keyring(oldMaster))
	_, a := openReplica(t, dsn, keyring(newMaster, oldMaster))
	r := &behindReplica{a: a, b: b}
	sign := func() (string, string) {
		t.Helper()
		tok, err := r.b.Sign(map[string]any{"sub": "x", "exp": time.Now().Add(time.Hour).Unix()})
		if err != nil {
			t.Fatal(err)
		}
		return r.b.KID(), tok
	}
	r.first, r.firstTok = sign()
	// B seals the next key of its own rotation under the old master key.
	if _, err := r.b.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	r.second, r.secondTok = sign()
	// A seals the next key of this rotation under the new one.
	if _, err := r.a.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.b.Reload(ctx); !errors.Is(err, secrets.ErrWrongKey) {
		t.Fatalf("B's reload of a key sealed under a master key it lacks: %v", err)
	}
	if r.b.Ready() == nil || r.b.KID() != r.second {
		t.Fatalf("B after a rotation it cannot follow: signs with %q (want %q), ready: %v", r.b.KID(), r.second, r.b.Ready())
	}
	return r
}

// hidingStore lists every key but one, as the store would once that row
// is gone.
type hidingStore struct {
	KeyStore
	kid string
}

func (h hidingStore) ListSigningKeys(ctx context.Context) ([]*store.SigningKey, error) {
	rows, err := h.KeyStore.ListSigningKeys(ctx)
	return slices.DeleteFunc(rows, func(r *store.SigningKey) bool { return r.KID == h.kid }), err
}

// TestReloadDropsDistrustedKeysItCannotReplace: a replica that cannot load
// the keys it read still stops publishing and accepting a key that was
// revoked or is gone, at once, and goes on signing with its own key,
// which the others still accept.
func TestReloadDropsDistrustedKeysItCannotReplace(t *testing.T) {
	for _, tc := range []struct {
		name   string
		remove func(t *testing.T, r *behindReplica)
	}{
		{"revoked", func(t *testing.T, r *behindReplica) {
			if _, err := r.a.Revoke(t.Context(), r.first); err != nil {
				t.Fatal(err)
			}
		}},
		{"gone", func(t *testing.T, r *behindReplica) { r.b.ks = hidingStore{r.b.ks, r.first} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, backend string) {
				r := newBehindReplica(t, backend)
				tc.remove(t, r)
				if err := r.b.Reload(t.Context()); !errors.Is(err, secrets.ErrWrongKey) {
					t.Fatalf("B's reload: %v", err)
				}
				if slices.Contains(jwksKIDs(t, r.b), r.first) {
					t.Errorf("B publishes %s: %v", r.first, jwksKIDs(t, r.b))
				}
				if _, _, err := r.b.Verify(r.firstTok); !errors.Is(err, ErrUnknownKey) {
					t.Errorf("B verifies a token of %s: %v", r.first, err)
				}
				if _, _, err := r.b.Verify(r.secondTok); err != nil {
					t.Errorf("B rejects a token of its own key, still trusted: %v", err)
				}
				tok, err := r.b.Sign(map[string]any{"sub": "x"})
				if err != nil {
					t.Fatalf("B no longer signs with its key, still trusted: %v", err)
				}
				if _, kid, err := r.a.Verify(tok); err != nil || kid != r.second {
					t.Errorf("A on B's token: kid %q, %v", kid, err)
				}
			})
		})
	}
}

// TestReloadStopsSigningWithRevokedKey: once the key a replica signs with
// is revoked and it cannot load the one that replaced it, it signs
// nothing, publishes and accepts the revoked key no longer, and is not
// ready.
func TestReloadStopsSigningWithRevokedKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		r := newBehindReplica(t, backend)
		r.revokeBsKey(t)
		if tok, err := r.b.Sign(map[string]any{"sub": "x"}); !errors.Is(err, ErrNoSigningKey) {
			t.Errorf("B signs with a revoked key: %q, %v", tok, err)
		}
		if r.b.KID() != "" {
			t.Errorf("B reports signing with %q", r.b.KID())
		}
		if got := jwksKIDs(t, r.b); slices.Contains(got, r.second) {
			t.Errorf("B publishes its revoked key %s: %v", r.second, got)
		}
		if _, _, err := r.b.Verify(r.secondTok); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("B verifies a token of its revoked key: %v", err)
		}
		if err := r.b.Ready(); !errors.Is(err, secrets.ErrWrongKey) {
			t.Errorf("B's Ready: %v", err)
		}
	})
}

// openReplica opens a migrated store on dsn and its keys, sealed with
// sealer, with a next key: one replica of several sharing the database.
func openReplica(t *testing.T, dsn string, sealer Sealer) (*sqlstore.Store, *Keys) {
	t.Helper()
	ctx := t.Context()
	s, err := sqlstore.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	k, err := NewKeys(ctx, s, sealer, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.EnsureNext(ctx); err != nil {
		t.Fatal(err)
	}
	return s, k
}

// TestReloadRecoversSigningAfterRevokedKey: a replica that stopped signing
// because its key was revoked while it could not load the successor signs,
// publishes the store's keys and is ready again after the first reload
// that loads them all, with the same JWKS bytes as a replica that never
// fell behind.
func TestReloadRecoversSigningAfterRevokedKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		r := newBehindReplica(t, backend)
		r.revokeBsKey(t)
		if _, err := r.b.Sign(map[string]any{"sub": "x"}); !errors.Is(err, ErrNoSigningKey) || r.b.Ready() == nil {
			t.Fatalf("B before it can load the keys: sign %v, ready %v", err, r.b.Ready())
		}
		// B now opens what A sealed, as after a restart with the new
		// master key.
		r.b.sealer = r.a.sealer
		if err := r.b.Reload(t.Context()); err != nil {
			t.Fatalf("B's reload with the master key: %v", err)
		}
		if err := r.b.Ready(); err != nil {
			t.Errorf("B's Ready after a successful reload: %v", err)
		}
		tok, err := r.b.Sign(map[string]any{"sub": "x"})
		if err != nil {
			t.Fatalf("B's Sign after a successful reload: %v", err)
		}
		if _, kid, err := r.a.Verify(tok); err != nil || kid != r.a.KID() || r.b.KID() != r.a.KID() {
			t.Errorf("B signs with %q (A: %q): %v", kid, r.a.KID(), err)
		}
		if got, want := string(r.b.JWKS()), string(r.a.JWKS()); got != want {
			t.Errorf("B's JWKS %v differs from A's %v", jwksKIDs(t, r.b), jwksKIDs(t, r.a))
		}
	})
}

// revokeBsKey revokes, through A, the key B signs with; B's reload then
// fails, since it cannot open the key that replaced it.
func (r *behindReplica) revokeBsKey(t *testing.T) {
	t.Helper()
	if _, err := r.a.Revoke(t.Context(), r.second); err != nil {
		t.Fatal(err)
	}
	if err := r.b.Reload(t.Context()); !errors.Is(err, secrets.ErrWrongKey) {
		t.Fatalf("B's reload: %v", err)
	}
}

// TestPreviousKeyOutlivesTokensOfALateReplica: replica B missed A's
// rotation (no notification reached it: SQLite, or a lost one on
// PostgreSQL) and signs with the replaced key until its next reload, a
// token of the longest lifetime. The replaced key stays published, in
// A's JWKS and for A's verification, as long as ParseJWT accepts that
// token: past its exp by ReplicaSkew.
func TestPreviousKeyOutlivesTokensOfALateReplica(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		ctx := t.Context()
		dsn := storetest.DSN(t, backend)
		kr := newKeyring(t)
		aStore, a := openReplica(t, dsn, kr)
		_, b := openReplica(t, dsn, kr)
		replaced := b.KID()
		if _, err := a.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		// B signs a little later than the rotation, well within the
		// reload interval; exp is in whole seconds, so a second must pass.
		time.Sleep(1100 * time.Millisecond)
		if b.KID() != replaced {
			t.Fatalf("replica B reloaded on its own: signs with %s", b.KID())
		}
		exp := time.Now().Add(MaxTokenLifetime).Unix()
		tok, err := b.Sign(map[string]any{"iss": "https://gh.example/", "aud": "api", "sub": "x", "exp": exp})
		if err != nil {
			t.Fatal(err)
		}
		lastAccepted := time.Unix(exp, 0).Add(ReplicaSkew - time.Millisecond)
		set, err := buildKeySet(listKeys(t, aStore), kr, lastAccepted, nil)
		if err != nil {
			t.Fatal(err)
		}
		late := &Keys{}
		late.set.Store(set)
		if _, err := late.ParseJWT(t.Context(), tok, "https://gh.example/", "api", lastAccepted, ReplicaSkew); err != nil {
			t.Errorf("token B signed after the rotation, checked before it expires: %v", err)
		}
		if !bytes.Contains(set.jwks, []byte(`"kid":"`+replaced+`"`)) {
			t.Errorf("replaced key %s left the JWKS before the tokens B signed with it expired", replaced)
		}
	})
}

// blindAfterRevokeStore is a store whose keys can no longer be read once
// a revocation committed: the database went away in between.
type blindAfterRevokeStore struct {
	KeyStore
	blind atomic.Bool
}

func (s *blindAfterRevokeStore) RevokeSigningKey(ctx context.Context, kid string, at time.Time) (*store.SigningKey, error) {
	row, err := s.KeyStore.RevokeSigningKey(ctx, kid, at)
	if err == nil {
		s.blind.Store(true)
	}
	return row, err
}

func (s *blindAfterRevokeStore) ListSigningKeys(ctx context.Context) ([]*store.SigningKey, error) {
	if s.blind.Load() {
		return nil, errors.New("connection refused")
	}
	return s.KeyStore.ListSigningKeys(ctx)
}

// TestRevokeTakesEffectWhenTheReloadFails: a revocation the store
// committed stops this process from publishing and accepting the key even
// when the reload after it cannot read the keys, and is not reported as
// failed; the current key goes on signing.
func TestRevokeTakesEffectWhenTheReloadFails(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		ctx := t.Context()
		f := newFixture(t, backend)
		ks := &blindAfterRevokeStore{KeyStore: f.ks}
		f.keys.ks = ks
		if err := f.keys.EnsureNext(ctx); err != nil {
			t.Fatal(err)
		}
		old := f.keys.KID()
		tok := mustSign(t, f.keys, map[string]any{"sub": "x"})
		if _, err := f.keys.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := f.keys.Revoke(ctx, old); err != nil {
			t.Errorf("revoke: %v", err)
		}
		if _, _, err := f.keys.Verify(tok); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("token of the revoked key: %v, want ErrUnknownKey", err)
		}
		if slices.Contains(jwksKIDs(t, f.keys), old) {
			t.Errorf("revoked key %s still in the JWKS %v", old, jwksKIDs(t, f.keys))
		}
		if f.keys.KID() == "" || f.keys.KID() == old {
			t.Errorf("signs with %q after revoking %s", f.keys.KID(), old)
		}
		if _, _, err := f.keys.Verify(mustSign(t, f.keys, map[string]any{"sub": "x"})); err != nil {
			t.Errorf("token of the current key: %v", err)
		}
	})
}

// TestRevokeOfOwnSignerWhenTheReloadFails: replica B missed A's rotation
// and still signs with the replaced key when it is asked to revoke that
// key, and then cannot read the keys. B stops signing with it and is not
// ready until a reload loads the current key.
func TestRevokeOfOwnSignerWhenTheReloadFails(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		ctx := t.Context()
		dsn := storetest.DSN(t, backend)
		kr := newKeyring(t)
		_, a := openReplica(t, dsn, kr)
		_, b := openReplica(t, dsn, kr)
		ks := &blindAfterRevokeStore{KeyStore: b.ks}
		b.ks = ks
		replaced := b.KID()
		if _, err := a.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Revoke(ctx, replaced); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		if _, err := b.Sign(map[string]any{"sub": "x"}); !errors.Is(err, ErrNoSigningKey) {
			t.Errorf("B signs after revoking its own key: %v, want ErrNoSigningKey", err)
		}
		if b.Ready() == nil {
			t.Error("B is ready without a key to sign with")
		}
		ks.blind.Store(false)
		if err := b.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if b.KID() != a.KID() || b.Ready() != nil {
			t.Errorf("B after a reload: signs with %q (A: %q), ready: %v", b.KID(), a.KID(), b.Ready())
		}
	})
}

// TestParseJWTReloadsForAnUnknownKey: a replica that missed two rotations
// (its notification lost) meets a token of the key another replica signs
// with now, which it has never loaded: it reloads once and accepts the
// token, rather than refuse valid tokens until its periodic reload. A
// second unknown key within unknownKeyReloadEvery does not reload again.
func TestParseJWTReloadsForAnUnknownKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		ctx := t.Context()
		dsn := storetest.DSN(t, backend)
		kr := newKeyring(t)
		_, a := openReplica(t, dsn, kr)
		_, b := openReplica(t, dsn, kr)
		const issuer, audience = "https://gh.example/", "api"
		rotatedTwice := func() string {
			t.Helper()
			for range 2 {
				if _, err := a.Rotate(ctx); err != nil {
					t.Fatal(err)
				}
			}
			tok, err := a.Sign(map[string]any{"iss": issuer, "aud": audience, "sub": "x", "exp": time.Now().Add(time.Hour).Unix()})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := b.Verify(tok); !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("B already knows A's new key: %v", err)
			}
			return tok
		}
		if _, err := b.ParseJWT(ctx, rotatedTwice(), issuer, audience, time.Now(), ReplicaSkew); err != nil {
			t.Errorf("B refuses a token of A's current key: %v", err)
		}
		if _, err := b.ParseJWT(ctx, rotatedTwice(), issuer, audience, time.Now(), ReplicaSkew); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("B reloaded again within %v: %v", unknownKeyReloadEvery, err)
		}
	})
}

// deadlineOfList records the deadline of the context ListSigningKeys is
// called with.
type deadlineOfList struct {
	KeyStore
	deadline time.Time
}

func (s *deadlineOfList) ListSigningKeys(ctx context.Context) ([]*store.SigningKey, error) {
	s.deadline, _ = ctx.Deadline()
	return s.KeyStore.ListSigningKeys(ctx)
}

// TestParseJWTReloadOfACancelledRequest: the reload a token of an unknown
// key starts is the only one of its interval, so a request cancelled
// meanwhile (its client hung up) must not leave it undone: B, behind A by
// two rotations, loads A's key even then, and accepts A's token within
// the interval. Freed from the request, the reload still has a deadline:
// a database that does not answer must not hold it past its interval.
func TestParseJWTReloadOfACancelledRequest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		ctx := t.Context()
		dsn := storetest.DSN(t, backend)
		kr := newKeyring(t)
		_, a := openReplica(t, dsn, kr)
		_, b := openReplica(t, dsn, kr)
		for range 2 {
			if _, err := a.Rotate(ctx); err != nil {
				t.Fatal(err)
			}
		}
		const issuer, audience = "https://gh.example/", "api"
		tok, err := a.Sign(map[string]any{"iss": issuer, "aud": audience, "sub": "x", "exp": time.Now().Add(time.Hour).Unix()})
		if err != nil {
			t.Fatal(err)
		}
		list := &deadlineOfList{KeyStore: b.ks}
		b.ks = list
		hungUp, cancel := context.WithCancel(ctx)
		cancel()
		_, _ = b.ParseJWT(hungUp, tok, issuer, audience, time.Now(), ReplicaSkew)
		if returned := time.Now(); list.deadline.IsZero() || list.deadline.After(returned.Add(unknownKeyReloadEvery)) {
			t.Errorf("the reload's deadline is %v, want within %v of %v", list.deadline, unknownKeyReloadEvery, returned)
		}
		if _, err := b.ParseJWT(ctx, tok, issuer, audience, time.Now(), ReplicaSkew); err != nil {
			t.Errorf("B refuses A's token after a cancelled request's reload: %v", err)
		}
	})
}
