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
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/secrets"
	"github.com/gatehouse/gatehouse/internal/store"
)

// memKeyStore is an in-memory KeyStore with the atomicity the real store
// promises. It keeps what it was given so tests can inspect it.
type memKeyStore struct {
	mu   sync.Mutex
	keys []*store.SigningKey // newest first
	err  error
}

func (m *memKeyStore) ListSigningKeys(ctx context.Context) ([]*store.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	out := make([]*store.SigningKey, len(m.keys))
	for i, k := range m.keys {
		c := *k
		out[i] = &c
	}
	return out, nil
}

func (m *memKeyStore) InsertSigningKeyIfNone(ctx context.Context, k *store.SigningKey) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return false, m.err
	}
	for _, e := range m.keys {
		if e.State == k.State && e.RevokedAt == nil {
			return false, nil
		}
	}
	c := *k
	m.keys = append([]*store.SigningKey{&c}, m.keys...)
	return true, nil
}

func (m *memKeyStore) UpdateSigningKey(ctx context.Context, k *store.SigningKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.keys {
		if e.KID == k.KID {
			e.State, e.CurrentSince, e.CurrentUntil, e.RevokedAt = k.State, k.CurrentSince, k.CurrentUntil, k.RevokedAt
			return nil
		}
	}
	return store.ErrNotFound
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
	ks   *memKeyStore
	kr   *secrets.Keyring
}

func buildFixture() (*fixture, error) {
	kr, err := randomKeyring()
	if err != nil {
		return nil, err
	}
	f := &fixture{ks: &memKeyStore{}, kr: kr}
	f.keys, err = NewKeys(context.Background(), f.ks, f.kr, nil)
	return f, err
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f, err := buildFixture()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// sharedFixture is one key for the tests that only read; RSA key
// generation is the slow part of this package's tests.
var sharedFixture = sync.OnceValues(buildFixture)

func shared(t testing.TB) *fixture {
	t.Helper()
	f, err := sharedFixture()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestCreateOnFirstStart(t *testing.T) {
	f := newFixture(t)
	if len(f.ks.keys) != 1 {
		t.Fatalf("%d keys stored, want 1", len(f.ks.keys))
	}
	sk := f.ks.keys[0]
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
}

func TestPrivateKeyNeverStoredInClear(t *testing.T) {
	f := newFixture(t)
	sk := f.ks.keys[0]
	der, err := f.kr.Open(sk.PrivateEnc, []byte("signing_key:"+sk.KID))
	if err != nil {
		t.Fatalf("sealed private key does not open with its kid as aad: %v", err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	priv := parsed.(*rsa.PrivateKey)
	fields := map[string][]byte{"PKCS#8": der, "PKCS#1": x509.MarshalPKCS1PrivateKey(priv), "D": priv.D.Bytes(), "P": priv.Primes[0].Bytes(), "Q": priv.Primes[1].Bytes()}
	for name, secret := range fields {
		for _, stored := range [][]byte{sk.PrivateEnc, sk.CertDER, []byte(sk.KID)} {
			if bytes.Contains(stored, secret[:32]) {
				t.Errorf("%s of the private key found in what was stored", name)
			}
		}
		if bytes.Contains(f.keys.JWKS(), []byte(base64.RawURLEncoding.EncodeToString(secret)[:32])) {
			t.Errorf("%s of the private key found in the JWKS", name)
		}
	}
	if _, err := f.kr.Open(sk.PrivateEnc, []byte("signing_key:other")); err == nil {
		t.Error("sealed private key opens under another kid")
	}
}

func TestReloadFromStoreIsStable(t *testing.T) {
	f := newFixture(t)
	again, err := NewKeys(context.Background(), f.ks, f.kr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.KID() != f.keys.KID() {
		t.Errorf("kid changed across restarts: %q → %q", f.keys.KID(), again.KID())
	}
	if !bytes.Equal(again.JWKS(), f.keys.JWKS()) {
		t.Errorf("JWKS not byte-stable:\n%s\n%s", f.keys.JWKS(), again.JWKS())
	}
	if len(f.ks.keys) != 1 {
		t.Errorf("%d keys after restart", len(f.ks.keys))
	}
	tok, err := f.keys.Sign(map[string]any{"sub": "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := again.Verify(tok); err != nil {
		t.Errorf("restarted instance rejects a token of the first: %v", err)
	}
}

func TestJWKSShape(t *testing.T) {
	f := shared(t)
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(f.keys.JWKS(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys) != 1 {
		t.Fatalf("%d keys", len(doc.Keys))
	}
	k := doc.Keys[0]
	want := []string{"alg", "e", "kid", "kty", "n", "use", "x5c", "x5t"}
	got := make([]string, 0, len(k))
	for name := range k {
		got = append(got, name)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("members %v, want %v", got, want)
	}
	if k["alg"] != "RS256" || k["kty"] != "RSA" || k["use"] != "sig" || k["e"] != "AQAB" || k["kid"] != f.keys.KID() {
		t.Errorf("jwk %v", k)
	}
	certDER := f.ks.keys[0].CertDER
	x5c := k["x5c"].([]any)
	if len(x5c) != 1 || x5c[0] != base64.StdEncoding.EncodeToString(certDER) {
		t.Error("x5c is not the standard base64 of the certificate")
	}
	sum := sha1.Sum(certDER)
	if k["x5t"] != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Error("x5t is not the base64url SHA-1 of the certificate")
	}
	cert, _ := x509.ParseCertificate(certDER)
	if n := new(big.Int).SetBytes(mustB64(t, k["n"].(string))); n.Cmp(cert.PublicKey.(*rsa.PublicKey).N) != 0 {
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
	ctx := context.Background()
	f := newFixture(t)
	a := f.keys.KID()
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
	if got := jwksKIDs(t, f.keys); !slices.Equal(got, []string{a, next.KID}) {
		t.Errorf("with a next key, JWKS kids %v", got)
	}
	if f.keys.KID() != a {
		t.Error("next key signs before it is current")
	}

	now := time.Now()
	f.ks.UpdateSigningKey(ctx, &store.SigningKey{KID: a, State: store.KeyPrevious, CurrentUntil: &now})
	f.ks.UpdateSigningKey(ctx, &store.SigningKey{KID: next.KID, State: store.KeyCurrent, CurrentSince: &now})
	if err := f.keys.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if f.keys.KID() != next.KID {
		t.Error("promoted key does not sign")
	}
	if got := jwksKIDs(t, f.keys); !slices.Equal(got, []string{next.KID, a}) {
		t.Errorf("after promotion, JWKS kids %v (current must come first)", got)
	}
	if _, kid, err := f.keys.Verify(oldTok); err != nil || kid != a {
		t.Errorf("token of the previous key: kid %q, %v", kid, err)
	}

	f.ks.UpdateSigningKey(ctx, &store.SigningKey{KID: a, State: store.KeyRevoked, CurrentUntil: &now, RevokedAt: &now})
	if err := f.keys.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := jwksKIDs(t, f.keys); !slices.Equal(got, []string{next.KID}) {
		t.Errorf("after revocation, JWKS kids %v", got)
	}
	if _, _, err := f.keys.Verify(oldTok); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("token of a revoked key: %v", err)
	}
}

func TestConcurrentNewKeysCreateOneKey(t *testing.T) {
	ks, kr := &memKeyStore{}, newKeyring(t)
	const n = 4
	kids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k, err := NewKeys(context.Background(), ks, kr, nil)
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
	if len(ks.keys) != 1 {
		t.Errorf("%d keys stored, want 1", len(ks.keys))
	}
}

func TestWrongMasterKeyFailsAndChangesNothing(t *testing.T) {
	f := newFixture(t)
	before := *f.ks.keys[0]
	_, err := NewKeys(context.Background(), f.ks, newKeyring(t), nil)
	if !errors.Is(err, secrets.ErrWrongKey) {
		t.Fatalf("err = %v, want secrets.ErrWrongKey", err)
	}
	if len(f.ks.keys) != 1 || f.ks.keys[0].KID != before.KID || !bytes.Equal(f.ks.keys[0].PrivateEnc, before.PrivateEnc) {
		t.Error("starting with the wrong master key changed the store")
	}
}

func TestStoreErrors(t *testing.T) {
	boom := errors.New("boom")
	if _, err := NewKeys(context.Background(), &memKeyStore{err: boom}, newKeyring(t), nil); !errors.Is(err, boom) {
		t.Errorf("NewKeys: %v", err)
	}
	f := newFixture(t)
	kid := f.keys.KID()
	f.ks.err = boom
	if err := f.keys.Reload(context.Background()); !errors.Is(err, boom) {
		t.Errorf("Reload: %v", err)
	}
	if f.keys.KID() != kid {
		t.Error("failed Reload dropped the keys in use")
	}
}
