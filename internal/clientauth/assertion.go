package clientauth

import (
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	jose "github.com/go-jose/go-jose/v4"
)

// AssertionType is RFC 7523's client_assertion_type.
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

const (
	// MaxLifetime is Auth0's: an assertion may be valid for five minutes
	// at most, which also bounds how long its jti must be remembered.
	MaxLifetime = 5 * time.Minute
	// skew allows for clocks a little apart.
	skew = 30 * time.Second
	// maxJTI bounds what the replay store keeps per assertion.
	maxJTI = 256
)

var sigAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.PS256}

// Assertion is a client assertion read but not yet verified: ClientID is
// what it claims, to find the keys to verify it with.
type Assertion struct {
	ClientID string
	jws      *jose.JSONWebSignature
	claims   claims
}

type claims struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Aud json.RawMessage `json:"aud"`
	Exp *json.Number    `json:"exp"`
	Nbf *json.Number    `json:"nbf"`
	Iat *json.Number    `json:"iat"`
	JTI string          `json:"jti"`
}

// Parse reads a compact JWS signed with one of Algs.
func Parse(raw string) (*Assertion, error) {
	jws, err := jose.ParseSignedCompact(raw, sigAlgs)
	if err != nil {
		return nil, errors.New("client assertion: not a compact JWS signed with RS256, RS384 or PS256")
	}
	var c claims
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c); err != nil {
		return nil, errors.New("client assertion: claims are not a JSON object")
	}
	if c.Iss == "" || c.Iss != c.Sub || !isText(c.Iss) {
		return nil, errors.New("client assertion: iss and sub must both be the client id")
	}
	return &Assertion{ClientID: c.Iss, jws: jws, claims: c}, nil
}

// Key is one credential an assertion may be signed with.
type Key struct {
	KID string
	Alg string
	Pub *rsa.PublicKey
}

// Verified is what a verified assertion says: who, and the jti to spend
// until ExpiresAt.
type Verified struct {
	ClientID  string
	JTI       string
	ExpiresAt time.Time
}

// Verify checks the signature against keys (a kid in the header narrows
// them; the algorithm must be the key's), then the claims: aud names one
// of audiences, exp lies ahead and at most MaxLifetime after iat (or now),
// nbf and iat are not in the future, and jti is present.
func (a *Assertion) Verify(keys []Key, audiences []string, now time.Time) (*Verified, error) {
	h := a.jws.Signatures[0].Header
	verified := false
	for _, k := range keys {
		if (h.KeyID != "" && h.KeyID != k.KID) || h.Algorithm != k.Alg {
			continue
		}
		if _, err := a.jws.Verify(k.Pub); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, errors.New("client assertion: no credential of the client verifies it")
	}
	c := a.claims
	if !audienceOK(c.Aud, audiences) {
		return nil, fmt.Errorf("client assertion: aud must be %q", audiences[0])
	}
	exp, err := unix(c.Exp)
	if err != nil || exp.IsZero() {
		return nil, errors.New("client assertion: exp is required")
	}
	if !now.Before(exp.Add(skew)) {
		return nil, errors.New("client assertion: expired")
	}
	start := now
	if iat, err := unix(c.Iat); err != nil {
		return nil, errors.New("client assertion: iat is not a number")
	} else if !iat.IsZero() {
		if iat.After(now.Add(skew)) {
			return nil, errors.New("client assertion: iat is in the future")
		}
		start = iat
	}
	if exp.Sub(start) > MaxLifetime+skew {
		return nil, fmt.Errorf("client assertion: valid for more than %s", MaxLifetime)
	}
	if nbf, err := unix(c.Nbf); err != nil || nbf.After(now.Add(skew)) {
		return nil, errors.New("client assertion: not valid yet")
	}
	if c.JTI == "" || len(c.JTI) > maxJTI || !isText(c.JTI) {
		return nil, fmt.Errorf("client assertion: jti is required, at most %d characters of text", maxJTI)
	}
	return &Verified{ClientID: c.Iss, JTI: c.JTI, ExpiresAt: exp}, nil
}

func audienceOK(raw json.RawMessage, allowed []string) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return slices.Contains(allowed, one)
	}
	var many []string
	if json.Unmarshal(raw, &many) != nil {
		return false
	}
	for _, a := range many {
		if slices.Contains(allowed, a) {
			return true
		}
	}
	return false
}

// isText reports whether s is UTF-8 without NUL. iss and jti are looked up
// and stored: a NUL can name no client, SQLite would store it while
// PostgreSQL cannot even compare it, so it is refused before either.
func isText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// unix reads a NumericDate; absent is the zero time.
func unix(n *json.Number) (time.Time, error) {
	if n == nil {
		return time.Time{}, nil
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, int64(f*float64(time.Second))), nil
}
