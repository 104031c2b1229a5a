package tokens

import (
	"crypto/rsa"
	"crypto/x509"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// execRaw runs q on the database behind dsn beneath the store, as someone
// who can write to the database but does not hold the master key.
func execRaw(t *testing.T, dsn, q string, args ...any) {
	t.Helper()
	db := storetest.RawDB(t, dsn)
	res, err := db.ExecContext(t.Context(), q, args...)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("%s: %d rows, %v", q, n, err)
	}
}

// TestReloadRefusesKeysTheMasterKeyDidNotSeal: someone who can write to
// the database but lacks the master key cannot get a public key of theirs
// published and trusted. Every published key must prove itself with a
// private part that opens under the master key, bound to its kid, and
// matches its certificate; otherwise a forged key would sign Management
// API tokens that Gatehouse accepts (read:client_keys gives back every
// client secret in clear) and id_tokens that relying parties accept.
func TestReloadRefusesKeysTheMasterKeyDidNotSeal(t *testing.T) {
	// setCert gives the key of the given state the forged key's certificate.
	setCert := func(state store.KeyState) func(*testing.T, string, *sqlstore.Store, *store.SigningKey) {
		return func(t *testing.T, dsn string, s *sqlstore.Store, forged *store.SigningKey) {
			rows := listKeys(t, s)
			i := slices.IndexFunc(rows, func(r *store.SigningKey) bool { return r.State == state && r.RevokedAt == nil })
			if i < 0 {
				t.Fatalf("no %s key", state)
			}
			execRaw(t, dsn, "UPDATE signing_keys SET cert_der = $1 WHERE kid = $2", forged.CertDER, rows[i].KID)
			forged.KID = rows[i].KID
		}
	}
	// insert stores the forged key as the next key, its private part as
	// private makes it from its own and the genuine current key's.
	insert := func(private func(own, current []byte) []byte) func(*testing.T, string, *sqlstore.Store, *store.SigningKey) {
		return func(t *testing.T, _ string, s *sqlstore.Store, forged *store.SigningKey) {
			rows := listKeys(t, s)
			i := slices.IndexFunc(rows, func(r *store.SigningKey) bool { return r.State == store.KeyCurrent })
			forged.PrivateEnc = private(forged.PrivateEnc, rows[i].PrivateEnc)
			if ok, err := s.InsertSigningKeyIfNone(t.Context(), forged); err != nil || !ok {
				t.Fatalf("insert the forged key: %v, %v", ok, err)
			}
		}
	}
	for _, tc := range []struct {
		name string
		// next and rotate prepare the store: a next key, a rotation (the
		// first key is then previous).
		next, rotate bool
		tamper       func(t *testing.T, dsn string, s *sqlstore.Store, forged *store.SigningKey)
	}{
		{"new next key sealed under another master key", false, false, insert(func(own, _ []byte) []byte { return own })},
		{"new next key with the current key's sealed private part", false, false, insert(func(_, cur []byte) []byte { return cur })},
		{"new next key with a private part that is no blob", false, false, insert(func(_, _ []byte) []byte { return []byte{1} })},
		{"next key's certificate replaced", true, false, setCert(store.KeyNext)},
		{"previous key's certificate replaced", true, true, setCert(store.KeyPrevious)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, backend string) {
				ctx := t.Context()
				dsn := storetest.DSN(t, backend)
				s, err := sqlstore.Open(ctx, dsn, nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				if err := s.Migrate(ctx); err != nil {
					t.Fatal(err)
				}
				k, err := NewKeys(ctx, s, newKeyring(t), nil)
				if err != nil {
					t.Fatal(err)
				}
				if tc.next {
					if err := k.EnsureNext(ctx); err != nil {
						t.Fatal(err)
					}
				}
				if tc.rotate {
					if _, err := k.Rotate(ctx); err != nil {
						t.Fatal(err)
					}
				}
				forged, priv := forgedKey(t)
				tc.tamper(t, dsn, s, forged)

				if err := k.Reload(ctx); err == nil {
					t.Error("a reload of the store with a forged key succeeded")
				}
				if strings.Contains(string(k.JWKS()), b64.EncodeToString(priv.N.Bytes())) {
					t.Errorf("the forged key is published as %s", forged.KID)
				}
				tok := signWith(t, priv, map[string]string{"alg": "RS256", "typ": "JWT", "kid": forged.KID},
					map[string]any{"iss": "https://gh.example/", "aud": "api", "sub": "x", "exp": time.Now().Add(time.Hour).Unix()})
				if _, _, err := k.Verify(tok); err == nil {
					t.Error("a token signed by the forged key verifies")
				}
				// A token of a kid it does not know makes ParseJWT reload.
				k.unknownReload.Store(0)
				if _, err := k.ParseJWT(ctx, tok, "https://gh.example/", "api", time.Now(), ReplicaSkew); err == nil {
					t.Error("ParseJWT accepts a token signed by the forged key")
				}
				// The keys the master key sealed still sign and verify.
				good, err := k.Sign(map[string]any{"sub": "x", "exp": time.Now().Add(time.Hour).Unix()})
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := k.Verify(good); err != nil {
					t.Errorf("the genuine current key no longer verifies: %v", err)
				}
			})
		})
	}
}

// forgedKey is a next key made as Gatehouse makes one, but sealed under a
// master key Gatehouse does not hold; priv signs for it.
func forgedKey(t *testing.T) (*store.SigningKey, *rsa.PrivateKey) {
	t.Helper()
	kr := newKeyring(t)
	sk, err := newSigningKey(kr, store.KeyNext, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	der, err := kr.Open(sk.PrivateEnc, signingKeyAAD(sk.KID))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	return sk, priv.(*rsa.PrivateKey)
}
