package tokens

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/secrets"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// recordingStore passes through to a real store and keeps a copy of every
// key it was asked to write, to check what leaves this package.
type recordingStore struct {
	KeyStore
	mu      sync.Mutex
	written []store.SigningKey
}

func (r *recordingStore) InsertSigningKeyIfNone(ctx context.Context, k *store.SigningKey) (bool, error) {
	r.mu.Lock()
	r.written = append(r.written, *k)
	r.mu.Unlock()
	return r.KeyStore.InsertSigningKeyIfNone(ctx, k)
}

// failingStore fails every call with err.
type failingStore struct {
	KeyStore
	err error
}

func (f failingStore) ListSigningKeys(context.Context) ([]*store.SigningKey, error) {
	return nil, f.err
}

func newKeyring(t testing.TB) *secrets.Keyring {
	t.Helper()
	kr, err := randomKeyring()
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func randomKeyring() (*secrets.Keyring, error) {
	master := make([]byte, 32)
	rand.Read(master)
	return secrets.NewKeyring(master)
}

type fixture struct {
	keys *Keys
	ks   KeyStore
	kr   *secrets.Keyring
}

func newFixture(t *testing.T, backend string) *fixture {
	t.Helper()
	f := &fixture{ks: storetest.Open(t, backend), kr: newKeyring(t)}
	var err error
	if f.keys, err = NewKeys(t.Context(), f.ks, f.kr, nil); err != nil {
		t.Fatal(err)
	}
	return f
}

func forEachBackend(t *testing.T, test func(t *testing.T, backend string)) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) { test(t, b) })
	}
}

func listKeys(t *testing.T, ks KeyStore) []*store.SigningKey {
	t.Helper()
	keys, err := ks.ListSigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// sharedKeys is one key on SQLite for the tests and benchmarks that only
// sign and verify; RSA key generation is the slow part of these tests.
var (
	sharedDir  string
	sharedKeys = sync.OnceValues(func() (*Keys, error) {
		ctx := context.Background()
		var err error
		if sharedDir, err = os.MkdirTemp("", "gatehouse-tokens-test"); err != nil {
			return nil, err
		}
		s, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(sharedDir, "gatehouse.db"), nil)
		if err != nil {
			return nil, err
		}
		if err := s.Migrate(ctx); err != nil {
			return nil, err
		}
		kr, err := randomKeyring()
		if err != nil {
			return nil, err
		}
		return NewKeys(ctx, s, kr, nil)
	})
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}

func shared(t testing.TB) *Keys {
	t.Helper()
	k, err := sharedKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestCreateOnFirstStart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		f := newFixture(t, backend)
		keys := listKeys(t, f.ks)
		if len(keys) != 1 {
			t.Fatalf("%d keys stored, want 1", len(keys))
		}
		sk := keys[0]
		if sk.State != store.KeyCurrent || sk.CurrentSince == nil || sk.RevokedAt != nil || sk.CreatedAt.IsZero() {
			t.Errorf("stored key: %+v", sk)
		}
		if sk.KID != f.keys.KID() {
			t.Errorf("kid %q, signer %q", sk.KID, f.keys.KID())
		}
		cert, err := x509.ParseCertificate(sk.CertDER)
		if err != nil {
			t.Fatal(err)
		}
		if cert.Subject.CommonName != "gatehouse" || cert.Issuer.CommonName != "gatehouse" {
			t.Errorf("certificate: subject %q, issuer %q", cert.Subject, cert.Issuer)
		}
		if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
			t.Errorf("certificate is not self-signed by the key: %v", err)
		}
		pub := cert.PublicKey.(*rsa.PublicKey)
		if pub.N.BitLen() != 2048 {
			t.Errorf("key size %d", pub.N.BitLen())
		}
		// kid is the RFC 7638 thumbprint, as an independent implementation
		// computes it.
		tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if want := base64.RawURLEncoding.EncodeToString(tp); sk.KID != want {
			t.Errorf("kid %q, RFC 7638 thumbprint %q", sk.KID, want)
		}
	})
}

// The private key must leave this package only sealed: neither what was
// handed to the store nor the database files hold it in clear.
func TestPrivateKeyNeverStoredInClear(t *testing.T) {
	dsn := storetest.DSN(t, storetest.SQLite)
	s, err := sqlstore.Open(t.Context(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	rec := &recordingStore{KeyStore: s}
	kr := newKeyring(t)
	keys, err := NewKeys(t.Context(), rec, kr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if len(rec.written) != 1 {
		t.Fatalf("%d keys written", len(rec.written))
	}
	sk := rec.written[0]
	der, err := kr.Open(sk.PrivateEnc, []byte("signing_key:"+sk.KID))
	if err != nil {
		t.Fatalf("sealed private key does not open with its kid as aad: %v", err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	priv := parsed.(*rsa.PrivateKey)

	written := [][]byte{sk.PrivateEnc, sk.CertDER, []byte(sk.KID)}
	dir := filepath.Dir(strings.TrimPrefix(dsn, "sqlite:"))
	files, _ := os.ReadDir(dir)
	for _, fi := range files {
		b, err := os.ReadFile(filepath.Join(dir, fi.Name()))
		if err != nil {
			t.Fatal(err)
		}
		written = append(written, b)
	}
	secretParts := map[string][]byte{
		"PKCS#8": der, "PKCS#1": x509.MarshalPKCS1PrivateKey(priv),
		"D": priv.D.Bytes(), "P": priv.Primes[0].Bytes(), "Q": priv.Primes[1].Bytes(),
	}
	for name, secret := range secretParts {
		for _, w := range written {
			if bytes.Contains(w, secret[:32]) {
				t.Errorf("%s of the private key found in clear", name)
			}
		}
		if bytes.Contains(keys.JWKS(), []byte(base64.RawURLEncoding.EncodeToString(secret)[:32])) {
			t.Errorf("%s of the private key found in the JWKS", name)
		}
	}
	if _, err := kr.Open(sk.PrivateEnc, []byte("signing_key:other")); err == nil {
		t.Error("sealed private key opens under another kid")
	}
}

func TestReloadFromStoreIsStable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		f := newFixture(t, backend)
		again, err := NewKeys(t.Context(), f.ks, f.kr, nil)
		if err != nil {
			t.Fatal(err)
		}
		if again.KID() != f.keys.KID() {
			t.Errorf("kid changed across restarts: %q → %q", f.keys.KID(), again.KID())
		}
		if !bytes.Equal(again.JWKS(), f.keys.JWKS()) {
			t.Errorf("JWKS not byte-stable:\n%s\n%s", f.keys.JWKS(), again.JWKS())
		}
		if n := len(listKeys(t, f.ks)); n != 1 {
			t.Errorf("%d keys after restart", n)
		}
		tok, err := f.keys.Sign(map[string]any{"sub": "x"})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := again.Verify(tok); err != nil {
			t.Errorf("restarted instance rejects a token of the first: %v", err)
		}
	})
}

func TestJWKSShape(t *testing.T) {
	f := newFixture(t, storetest.SQLite)
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(f.keys.JWKS(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys) != 1 {
		t.Fatalf("%d keys", len(doc.Keys))
	}
	j := doc.Keys[0]
	want := []string{"alg", "e", "kid", "kty", "n", "use", "x5c", "x5t"}
	got := make([]string, 0, len(j))
	for name := range j {
		got = append(got, name)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("members %v, want %v", got, want)
	}
	if j["alg"] != "RS256" || j["kty"] != "RSA" || j["use"] != "sig" || j["e"] != "AQAB" || j["kid"] != f.keys.KID() {
		t.Errorf("jwk %v", j)
	}
	certDER := listKeys(t, f.ks)[0].CertDER
	x5c := j["x5c"].([]any)
	if len(x5c) != 1 || x5c[0] != base64.StdEncoding.EncodeToString(certDER) {
		t.Error("x5c is not the standard base64 of the certificate")
	}
	sum := sha1.Sum(certDER)
	if j["x5t"] != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Error("x5t is not the base64url SHA-1 of the certificate")
	}
	cert, _ := x509.ParseCertificate(certDER)
	if n := new(big.Int).SetBytes(mustB64(t, j["n"].(string))); n.Cmp(cert.PublicKey.(*rsa.PublicKey).N) != 0 {
		t.Error("n does not match the certificate")
	}
	// An independent parser accepts it, certificate chain included.
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(f.keys.JWKS(), &set); err != nil {
		t.Fatalf("go-jose rejects the JWKS: %v", err)
	}
	if len(set.Key(f.keys.KID())) != 1 || len(set.Keys[0].Certificates) != 1 {
		t.Errorf("go-jose view: %+v", set)
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jwksKIDs(t *testing.T, k *Keys) []string {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(k.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, key := range set.Keys {
		kids = append(kids, key.KeyID)
	}
	return kids
}

// Rotation itself belongs to another change; this drives the store the way
// it will, to pin what Reload publishes and accepts in each state.
func TestReloadFollowsKeyStates(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		ctx := t.Context()
		f := newFixture(t, backend)
		a := listKeys(t, f.ks)[0]
		oldTok, _ := f.keys.Sign(map[string]any{"sub": "a"})

		next, err := newSigningKey(f.kr, store.KeyNext, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := f.ks.InsertSigningKeyIfNone(ctx, next); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if err := f.keys.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if got := jwksKIDs(t, f.keys); !slices.Equal(got, []string{a.KID, next.KID}) {
			t.Errorf("with a next key, JWKS kids %v", got)
		}
		if f.keys.KID() != a.KID {
			t.Error("next key signs before it is current")
		}

		now := time.Now()
		a.State, a.CurrentUntil = store.KeyPrevious, &now
		next.State, next.CurrentSince = store.KeyCurrent, &now
		if err := errors.Join(f.ks.UpdateSigningKey(ctx, a), f.ks.UpdateSigningKey(ctx, next)); err != nil {
			t.Fatal(err)
		}
		if err := f.keys.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if f.keys.KID() != next.KID {
			t.Error("promoted key does not sign")
		}
		if got := jwksKIDs(t, f.keys); !slices.Equal(got, []string{next.KID, a.KID}) {
			t.Errorf("after promotion, JWKS kids %v (current must come first)", got)
		}
		if _, kid, err := f.keys.Verify(oldTok); err != nil || kid != a.KID {
			t.Errorf("token of the previous key: kid %q, %v", kid, err)
		}

		a.State, a.RevokedAt = store.KeyRevoked, &now
		if err := f.ks.UpdateSigningKey(ctx, a); err != nil {
			t.Fatal(err)
		}
		if err := f.keys.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if got := jwksKIDs(t, f.keys); !slices.Equal(got, []string{next.KID}) {
			t.Errorf("after revocation, JWKS kids %v", got)
		}
		if _, _, err := f.keys.Verify(oldTok); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("token of a revoked key: %v", err)
		}
	})
}

func TestConcurrentNewKeysCreateOneKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		ks, kr := storetest.Open(t, backend), newKeyring(t)
		const n = 4
		kids := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				k, err := NewKeys(t.Context(), ks, kr, nil)
				errs[i] = err
				if err == nil {
					kids[i] = k.KID()
				}
			})
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if kids[i] != kids[0] {
				t.Errorf("instances disagree on the key: %v", kids)
			}
		}
		if n := len(listKeys(t, ks)); n != 1 {
			t.Errorf("%d keys stored, want 1", n)
		}
	})
}

func TestWrongMasterKeyFailsAndChangesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		f := newFixture(t, backend)
		before := listKeys(t, f.ks)
		_, err := NewKeys(t.Context(), f.ks, newKeyring(t), nil)
		if !errors.Is(err, secrets.ErrWrongKey) {
			t.Fatalf("err = %v, want secrets.ErrWrongKey", err)
		}
		after := listKeys(t, f.ks)
		if len(after) != 1 || after[0].KID != before[0].KID || !bytes.Equal(after[0].PrivateEnc, before[0].PrivateEnc) {
			t.Error("starting with the wrong master key changed the store")
		}
	})
}

func TestStoreErrors(t *testing.T) {
	boom := errors.New("boom")
	s := storetest.Open(t, storetest.SQLite)
	if _, err := NewKeys(t.Context(), failingStore{s, boom}, newKeyring(t), nil); !errors.Is(err, boom) {
		t.Errorf("NewKeys: %v", err)
	}
	kr := newKeyring(t)
	k, err := NewKeys(t.Context(), s, kr, nil)
	if err != nil {
		t.Fatal(err)
	}
	kid := k.KID()
	k.ks = failingStore{s, boom}
	if err := k.Reload(t.Context()); !errors.Is(err, boom) {
		t.Errorf("Reload: %v", err)
	}
	if k.KID() != kid {
		t.Error("failed Reload dropped the keys in use")
	}
}
