package tokens

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// KeyStore is what Keys needs from the store (a subset of store.KeyStore).
type KeyStore interface {
	ListSigningKeys(ctx context.Context) ([]*store.SigningKey, error)
	InsertSigningKeyIfNone(ctx context.Context, k *store.SigningKey) (bool, error)
	UpdateSigningKey(ctx context.Context, k *store.SigningKey) error
	RotateSigningKeys(ctx context.Context, ifCurrent string, next *store.SigningKey, at time.Time) (bool, error)
	RevokeSigningKey(ctx context.Context, kid string, at time.Time) (*store.SigningKey, error)
}

// Sealer encrypts private keys at rest; *secrets.Keyring implements it.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(ciphertext, aad []byte) ([]byte, error)
}

const (
	rsaBits = 2048
	// Relying parties rarely check x5c validity, but some do; a long
	// lifetime keeps a key that is never rotated from suddenly failing
	// there.
	certLifetime = 20 * 365 * 24 * time.Hour
)

// Keys holds the parsed signing keys. It is safe for concurrent use; Sign
// and Verify never block on Reload.
type Keys struct {
	ks     KeyStore
	sealer Sealer
	logger *slog.Logger
	set    atomic.Pointer[keySet]
	// reloading serializes reloads: of two that overlap, the one that
	// read the store first must not swap its keys in last.
	reloading sync.Mutex
	// stale is why the last reload could not load what the store holds
	// (a key this process cannot unseal, no current key) when that
	// differs from the keys in use; nil after a reload that could, or
	// that found the same keys. Such a process signs with a key the others
	// have rotated (or with none, its key revoked), or rejects tokens they
	// sign, so Ready reports it.
	stale atomic.Pointer[error]
	// unknownReload is when ParseJWT last reloaded for a token of an
	// unknown key (nanoseconds on the monotonic clock, see
	// mayReloadForUnknownKey).
	unknownReload atomic.Int64
}

// ErrNoSigningKey is Sign's error when the key this process signed with was
// revoked, or left the store, and the key that replaces it could not be
// loaded (see Reload): it must not sign with a key the others no longer
// publish.
var ErrNoSigningKey = errors.New("tokens: the signing key in use was revoked and its successor could not be loaded")

// keySet is an immutable snapshot of the keys, swapped whole on Reload.
type keySet struct {
	// signer is nil once its key was revoked without a loadable successor.
	signer       *signer
	currentSince time.Time
	hasNext      bool
	published    map[string]*rsa.PublicKey // by kid: next, current, previous
	// entries are the encoded JWKS members in their published order, kept
	// so that a reload can drop keys without unsealing any.
	entries []jwksEntry
	jwks    []byte
	// proven holds, by kid, the SHA-256 of the certificate of each key
	// whose private part this process opened and found to be the
	// certificate's: the same certificate under the same kid is genuine
	// without unsealing it again at every reload.
	proven map[string][sha256.Size]byte
}

type jwksEntry struct {
	kid  string
	json []byte
}

// signer is the current key, ready to sign: the encoded JWS header is
// computed once per key, not once per token.
type signer struct {
	kid       string
	priv      *rsa.PrivateKey
	headerB64 string // base64url(header) + "."
}

// NewKeys loads the signing keys from ks, creating the first one when the
// store has no current key. Two processes starting at once on an empty
// store end with the same single key.
func NewKeys(ctx context.Context, ks KeyStore, sealer Sealer, logger *slog.Logger) (*Keys, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	k := &Keys{ks: ks, sealer: sealer, logger: logger}
	err := k.Reload(ctx)
	if err == nil {
		return k, nil
	}
	if !errors.Is(err, errNoCurrentKey) {
		return nil, err
	}
	sk, err := newSigningKey(sealer, store.KeyCurrent, time.Now())
	if err != nil {
		return nil, err
	}
	inserted, err := ks.InsertSigningKeyIfNone(ctx, sk)
	if err != nil {
		return nil, fmt.Errorf("tokens: store signing key: %w", err)
	}
	if inserted {
		logger.InfoContext(ctx, "created signing key", "kid", sk.KID)
	}
	// Whether ours or a concurrent starter's key won, the store decides.
	if err := k.Reload(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

var errNoCurrentKey = errors.New("tokens: no current signing key in the store")

// Reload re-reads the keys from the store and swaps them in atomically, for
// use after a rotation or periodically when replicas share a database.
//
// When the store cannot be read (the database is down), the keys in use are
// kept as they are: a revocation reaches this process at its next
// successful read of the keys. When the keys were read but cannot all be
// loaded (one sealed under a master key this process lacks, no current
// key), the keys in use are kept less every key the store no longer
// trusts (revoked, retired or gone): a revocation must take effect even
// where its rotation could not. Should that drop the key this process
// signs with, Sign fails with ErrNoSigningKey until a reload succeeds.
func (k *Keys) Reload(ctx context.Context) error {
	k.reloading.Lock()
	defer k.reloading.Unlock()
	rows, err := k.ks.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("tokens: list signing keys: %w", err)
	}
	now := time.Now()
	var proven map[string][sha256.Size]byte
	if old := k.set.Load(); old != nil {
		proven = old.proven
	}
	set, err := buildKeySet(rows, k.sealer, now, proven)
	if err != nil {
		if old := k.set.Load(); old != nil {
			k.set.Store(old.narrowedTo(rows, now))
		}
		if drifted(rows, k.set.Load()) {
			k.stale.Store(&err)
		} else {
			k.stale.Store(nil)
		}
		return err
	}
	k.set.Store(set)
	k.stale.Store(nil)
	return nil
}

// narrowedTo returns set without the keys that rows do not show as
// published at now; it adds none, so it needs no unsealing. It returns set
// itself when it drops nothing, so that the JWKS bytes stay the same.
func (set *keySet) narrowedTo(rows []*store.SigningKey, now time.Time) *keySet {
	keep := make(map[string]bool, len(rows))
	hasNext := false
	for _, row := range rows {
		if publishable(row, now) {
			keep[row.KID] = true
			hasNext = hasNext || row.State == store.KeyNext
		}
	}
	return set.keeping(func(kid string) bool { return keep[kid] }, hasNext)
}

// keeping returns set with only the keys keep accepts, and set itself when
// it drops nothing.
func (set *keySet) keeping(keep func(kid string) bool, hasNext bool) *keySet {
	n := &keySet{hasNext: hasNext, published: make(map[string]*rsa.PublicKey), entries: []jwksEntry{}, proven: make(map[string][sha256.Size]byte)}
	for _, e := range set.entries {
		if keep(e.kid) {
			n.published[e.kid] = set.published[e.kid]
			n.entries = append(n.entries, e)
			if h, ok := set.proven[e.kid]; ok {
				n.proven[e.kid] = h
			}
		}
	}
	if len(n.entries) == len(set.entries) {
		return set
	}
	if set.signer != nil && keep(set.signer.kid) {
		n.signer, n.currentSince = set.signer, set.currentSince
	}
	n.jwks = encodeJWKS(n.entries)
	return n
}

// forget stops publishing, accepting and signing with kid without reading
// the store, for a key the store revoked when the keys cannot be read.
// Left without a key to sign with, the process is not ready until a
// reload loads the current one.
func (k *Keys) forget(kid string) {
	k.reloading.Lock()
	defer k.reloading.Unlock()
	set := k.set.Load()
	if set.signer != nil && set.signer.kid == kid {
		err := fmt.Errorf("tokens: signing key %s revoked before its successor was loaded", kid)
		k.stale.Store(&err)
	}
	k.set.Store(set.keeping(func(id string) bool { return id != kid }, set.hasNext))
}

// drifted reports whether rows differ from set in what signing and
// verifying depend on: another current key, a current or next key set
// lacks, or a revoked one it still holds. Keys that are only sealed anew
// (a master-key rotation this process has no key for) do not count.
func drifted(rows []*store.SigningKey, set *keySet) bool {
	if set == nil || set.signer == nil {
		return true
	}
	current := ""
	for _, row := range rows {
		_, have := set.published[row.KID]
		switch {
		case row.RevokedAt != nil:
			if have {
				return true
			}
		case row.State == store.KeyCurrent:
			current = row.KID
		case row.State == store.KeyNext:
			if !have {
				return true
			}
		}
	}
	return current != set.signer.kid
}

// Ready returns why the keys in use are no longer the store's: the error
// of the last reload when it read other keys than those in use but could
// not load them. A reload the store did not answer leaves it as it was:
// the database's own health is the store's to report.
func (k *Keys) Ready() error {
	if err := k.stale.Load(); err != nil {
		return fmt.Errorf("tokens: signing keys not reloaded: %w", *err)
	}
	return nil
}

// Refresh reloads the keys because another process reported a change,
// logging a failure rather than returning it: the periodic reload of Run
// retries.
func (k *Keys) Refresh(ctx context.Context) {
	if err := k.Reload(ctx); err != nil && ctx.Err() == nil {
		k.logger.ErrorContext(ctx, "reloading signing keys after a change failed: retried within the reload interval", "error", err)
	}
}

// KID is the id of the key that currently signs, "" when there is none
// (ErrNoSigningKey).
func (k *Keys) KID() string {
	if s := k.set.Load().signer; s != nil {
		return s.kid
	}
	return ""
}

// JWKS returns the JSON Web Key Set served at /.well-known/jwks.json. The
// bytes are computed on load and identical between loads of the same keys;
// callers must not modify them.
func (k *Keys) JWKS() []byte { return k.set.Load().jwks }

type jwk struct {
	Alg string   `json:"alg"`
	Kty string   `json:"kty"`
	Use string   `json:"use"`
	N   string   `json:"n"`
	E   string   `json:"e"`
	Kid string   `json:"kid"`
	X5t string   `json:"x5t"`
	X5c []string `json:"x5c"`
}

// publishable reports whether row's key is published and accepted at now.
func publishable(row *store.SigningKey, now time.Time) bool {
	if row.RevokedAt != nil || (row.State != store.KeyNext && row.State != store.KeyCurrent && row.State != store.KeyPrevious) {
		return false
	}
	// A previous key is published until every token it can have signed
	// has expired, also on a replica that signed with it late, and not
	// longer.
	return row.State != store.KeyPrevious || row.CurrentUntil == nil || !now.After(row.CurrentUntil.Add(MaxTokenLifetime+retireGrace))
}

// buildKeySet loads the keys of rows that are published at now; proven,
// the keys in use's (nil at first), spares unsealing the keys it holds.
func buildKeySet(rows []*store.SigningKey, sealer Sealer, now time.Time, proven map[string][sha256.Size]byte) (*keySet, error) {
	set := &keySet{published: make(map[string]*rsa.PublicKey), proven: make(map[string][sha256.Size]byte)}
	var current []jwksEntry
	var others []jwksEntry
	for _, row := range rows {
		if !publishable(row, now) {
			continue
		}
		set.hasNext = set.hasNext || row.State == store.KeyNext
		cert, err := x509.ParseCertificate(row.CertDER)
		if err != nil {
			return nil, fmt.Errorf("tokens: signing key %s: certificate: %w", row.KID, err)
		}
		pub, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("tokens: signing key %s: not an RSA key", row.KID)
		}
		// Only the master key proves that Gatehouse made a key: a public
		// key that someone with write access to the database put there
		// would otherwise be published and trusted, though its private
		// part never opens.
		certSum := sha256.Sum256(row.CertDER)
		var priv *rsa.PrivateKey
		if h, ok := proven[row.KID]; !ok || h != certSum || row.State == store.KeyCurrent {
			if priv, err = openPrivate(row, pub, sealer); err != nil {
				return nil, err
			}
		}
		set.proven[row.KID] = certSum
		set.published[row.KID] = pub
		j, err := json.Marshal(jwkOf(row.KID, pub, row.CertDER))
		if err != nil {
			return nil, fmt.Errorf("tokens: encode jwk %s: %w", row.KID, err)
		}
		e := jwksEntry{kid: row.KID, json: j}
		if row.State != store.KeyCurrent {
			others = append(others, e)
			continue
		}
		if set.signer != nil {
			return nil, fmt.Errorf("tokens: two current signing keys (%s, %s)", set.signer.kid, row.KID)
		}
		s, err := newSigner(row.KID, priv)
		if err != nil {
			return nil, err
		}
		set.signer = s
		if row.CurrentSince != nil {
			set.currentSince = *row.CurrentSince
		}
		current = append(current, e)
	}
	if set.signer == nil {
		return nil, errNoCurrentKey
	}
	// The current key comes first: clients that ignore kid take the first
	// key. The rest keep the store's order (newest first).
	set.entries = append(current, others...)
	set.jwks = encodeJWKS(set.entries)
	return set, nil
}

// encodeJWKS is {"keys":[...]} of the entries, as json.Marshal would write
// it; assembling it from the encoded members lets narrowedTo drop keys
// without a way to fail.
func encodeJWKS(entries []jwksEntry) []byte {
	b := []byte(`{"keys":[`)
	for i, e := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e.json...)
	}
	return append(b, "]}"...)
}

// openPrivate unseals row's private key, bound to its kid, and checks that
// it is the key of pub, its certificate's.
func openPrivate(row *store.SigningKey, pub *rsa.PublicKey, sealer Sealer) (*rsa.PrivateKey, error) {
	der, err := sealer.Open(row.PrivateEnc, signingKeyAAD(row.KID))
	if err != nil {
		return nil, fmt.Errorf("tokens: open signing key %s: %w", row.KID, err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	clear(der)
	if err != nil {
		return nil, fmt.Errorf("tokens: parse signing key %s: %w", row.KID, err)
	}
	priv, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("tokens: signing key %s: not an RSA key", row.KID)
	}
	if !priv.PublicKey.Equal(pub) {
		return nil, fmt.Errorf("tokens: signing key %s does not match its certificate", row.KID)
	}
	return priv, nil
}

func newSigner(kid string, priv *rsa.PrivateKey) (*signer, error) {
	// Parsing already precomputes CRT values; without them every signature
	// would redo the key setup.
	priv.Precompute()
	header, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
		Kid string `json:"kid"`
	}{"RS256", "JWT", kid})
	if err != nil {
		return nil, fmt.Errorf("tokens: encode header: %w", err)
	}
	return &signer{kid: kid, priv: priv, headerB64: b64.EncodeToString(header) + "."}, nil
}

// newSigningKey generates an RSA key with its self-signed certificate, the
// private part sealed, ready to store in the given state.
func newSigningKey(sealer Sealer, state store.KeyState, now time.Time) (*store.SigningKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return nil, fmt.Errorf("tokens: generate signing key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("tokens: certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "gatehouse"},
		NotBefore:             now.Add(-time.Hour).UTC(),
		NotAfter:              now.Add(certLifetime).UTC(),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, fmt.Errorf("tokens: create certificate: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("tokens: encode signing key: %w", err)
	}
	kid := Thumbprint(&priv.PublicKey)
	sealed, err := sealer.Seal(der, signingKeyAAD(kid))
	clear(der)
	if err != nil {
		return nil, fmt.Errorf("tokens: seal signing key: %w", err)
	}
	k := &store.SigningKey{KID: kid, PrivateEnc: sealed, CertDER: certDER, State: state, CreatedAt: now}
	if state == store.KeyCurrent {
		k.CurrentSince = &now
	}
	return k, nil
}

func signingKeyAAD(kid string) []byte { return []byte("signing_key:" + kid) }

var b64 = base64.RawURLEncoding

// Thumbprint is the RFC 7638 JWK thumbprint: stable for a key, and
// computable by any relying party from the JWKS alone.
func Thumbprint(pub *rsa.PublicKey) string {
	// Members in lexicographic order, no whitespace, as RFC 7638 requires;
	// base64url output needs no JSON escaping.
	canon := `{"e":"` + b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes()) +
		`","kty":"RSA","n":"` + b64.EncodeToString(pub.N.Bytes()) + `"}`
	sum := sha256.Sum256([]byte(canon))
	return b64.EncodeToString(sum[:])
}

func jwkOf(kid string, pub *rsa.PublicKey, certDER []byte) jwk {
	// x5t is SHA-1 by definition (RFC 7517 §4.8); it names the
	// certificate, it does not protect anything.
	x5t := sha1.Sum(certDER)
	return jwk{
		Alg: "RS256",
		Kty: "RSA",
		Use: "sig",
		N:   b64.EncodeToString(pub.N.Bytes()),
		E:   b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		Kid: kid,
		X5t: b64.EncodeToString(x5t[:]),
		X5c: []string{base64.StdEncoding.EncodeToString(certDER)},
	}
}
