package entra

import (
	"crypto"
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
	"math/big"
	"net/http"
	"sync"
	"time"
)

// signingKey is one RSA key with everything derived from it computed once:
// the JWT headers are pre-encoded so issuing a token costs one JSON encoding
// and one RSA signature.
type signingKey struct {
	priv     *rsa.PrivateKey
	kid      string // base64url SHA-1 of the certificate, as Entra's kid == x5t
	certDER  []byte
	headerV1 string // v1 tokens carry both kid and x5t (reference §2.1, §2.4)
	headerV2 string // v2 tokens carry only kid
	retireAt time.Time
}

func newSigningKey(priv *rsa.PrivateKey, now time.Time) (*signingKey, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	// Entra's signing certificates are self-signed for this subject.
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "accounts.accesscontrol.windows.net"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(5, 0, 0),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	sum := sha1.Sum(der)
	kid := base64.RawURLEncoding.EncodeToString(sum[:])
	// Header members in Entra's order; kid is base64url, so it needs no
	// JSON escaping.
	h1 := `{"typ":"JWT","alg":"RS256","x5t":"` + kid + `","kid":"` + kid + `"}`
	h2 := `{"typ":"JWT","alg":"RS256","kid":"` + kid + `"}`
	return &signingKey{
		priv:     priv,
		kid:      kid,
		certDER:  der,
		headerV1: base64.RawURLEncoding.EncodeToString([]byte(h1)),
		headerV2: base64.RawURLEncoding.EncodeToString([]byte(h2)),
	}, nil
}

// sign produces a compact RS256 JWS of the claims.
func (k *signingKey) sign(claims any, v2 bool) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	h := k.headerV1
	if v2 {
		h = k.headerV2
	}
	buf := make([]byte, 0, len(h)+1+base64.RawURLEncoding.EncodedLen(len(payload))+1+base64.RawURLEncoding.EncodedLen(k.priv.Size()))
	buf = append(buf, h...)
	buf = append(buf, '.')
	buf = base64.RawURLEncoding.AppendEncode(buf, payload)
	digest := sha256.Sum256(buf)
	sig, err := rsa.SignPKCS1v15(nil, k.priv, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	buf = append(buf, '.')
	buf = base64.RawURLEncoding.AppendEncode(buf, sig)
	return string(buf), nil
}

// unsecuredHeader is the header of Entra's unsigned v1 id_tokens, members
// in Entra's order.
var unsecuredHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT","alg":"none"}`))

// unsecured produces an unsecured JWT of the claims (RFC 7519 §6): alg
// none and an empty signature part.
func unsecured(claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	return unsecuredHeader + "." + base64.RawURLEncoding.EncodeToString(payload) + ".", nil
}

// keySet holds the published keys and which one signs. Rollover follows
// signing-key-rollover.md (reference §2.5): a new key is published before
// it signs, and the previous one stays published for a grace period so
// tokens it signed still verify.
type keySet struct {
	mu     sync.RWMutex
	bits   int
	grace  time.Duration
	keys   []*signingKey // published, in publication order
	active *signingKey
	docs   map[string][]byte // rendered JWKS by issuer template; nil when stale
}

func (ks *keySet) signer() *signingKey {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.active
}

func (ks *keySet) publish(priv *rsa.PrivateKey, now time.Time) (*signingKey, error) {
	if priv == nil {
		var err error
		if priv, err = rsa.GenerateKey(rand.Reader, ks.bits); err != nil {
			return nil, fmt.Errorf("generate key: %w", err)
		}
	}
	k, err := newSigningKey(priv, now)
	if err != nil {
		return nil, err
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.keys = append(ks.keys, k)
	if ks.active == nil {
		ks.active = k
	}
	ks.docs = nil
	return k, nil
}

var errUnknownKey = errors.New("no published key has that kid")

func (ks *keySet) activate(kid string, now time.Time) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	for _, k := range ks.keys {
		if k.kid != kid {
			continue
		}
		if ks.active != k {
			ks.active.retireAt = now.Add(ks.grace)
			k.retireAt = time.Time{}
			ks.active = k
			ks.docs = nil
		}
		return nil
	}
	return errUnknownKey
}

// published drops keys whose grace period is over and returns the rest.
func (ks *keySet) published(now time.Time) []*signingKey {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	kept := ks.keys[:0]
	for _, k := range ks.keys {
		if k != ks.active && !k.retireAt.IsZero() && !now.Before(k.retireAt) {
			ks.docs = nil
			continue
		}
		kept = append(kept, k)
	}
	ks.keys = kept
	return append([]*signingKey(nil), kept...)
}

func (ks *keySet) publicKey(kid string, now time.Time) *rsa.PublicKey {
	for _, k := range ks.published(now) {
		if k.kid == kid {
			return &k.priv.PublicKey
		}
	}
	return nil
}

type jwk struct {
	Kty    string   `json:"kty"`
	Use    string   `json:"use"`
	Kid    string   `json:"kid"`
	X5t    string   `json:"x5t"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X5c    []string `json:"x5c"`
	Issuer string   `json:"issuer,omitempty"`
}

// document renders the JWKS; v2 documents carry a per-key issuer template
// (reference §2.4 "Keys document"). Rendered documents are cached until the
// key set or the issuer changes.
func (ks *keySet) document(issuer string, now time.Time) []byte {
	keys := ks.published(now)
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if b, ok := ks.docs[issuer]; ok {
		return b
	}
	out := struct {
		Keys []jwk `json:"keys"`
	}{Keys: make([]jwk, 0, len(keys))}
	for _, k := range keys {
		pub := k.priv.PublicKey
		out.Keys = append(out.Keys, jwk{
			Kty:    "RSA",
			Use:    "sig",
			Kid:    k.kid,
			X5t:    k.kid,
			N:      base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			E:      base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
			X5c:    []string{base64.StdEncoding.EncodeToString(k.certDER)},
			Issuer: issuer,
		})
	}
	b, _ := json.Marshal(out)
	if ks.docs == nil {
		ks.docs = map[string][]byte{}
	}
	ks.docs[issuer] = b
	return b
}

// serveKeys answers /{tenant}/discovery/keys, /{tenant}/discovery/v2.0/keys
// and the tenant-less /discovery/... forms.
func (s *Server) serveKeys(v2 bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if tenant := r.PathValue("tenant"); tenant != "" {
			if _, _, ok := s.resolveTenant(tenant); !ok {
				s.writeSTSError(w, r, errTenantNotFound(tenant, true))
				return
			}
		}
		issuer := ""
		if v2 {
			issuer = s.base() + "/{tenantid}/v2.0"
		}
		w.Header().Set("Cache-Control", "max-age=86400, private")
		w.Header().Set("Access-Control-Allow-Origin", "*")
		writeRaw(w, http.StatusOK, "application/json; charset=utf-8", s.keys.document(issuer, s.now()))
	}
}
