package tokens

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Errors a caller branches on. Every rejection of a token matches
// ErrInvalid; ErrExpired and ErrUnknownKey also match it.
var (
	ErrInvalid = errors.New("invalid token")
	// ErrExpired: the token's exp has passed.
	ErrExpired = fmt.Errorf("%w: expired", ErrInvalid)
	// ErrUnknownKey: the token names a kid that is not published (never
	// was, or revoked). ParseJWT reloads the keys once before it returns
	// it, at most once per unknownKeyReloadEvery.
	ErrUnknownKey = fmt.Errorf("%w: unknown signing key", ErrInvalid)
)

// TokenError says why a token was rejected. Its message is safe to log and
// never contains the token.
type TokenError struct {
	Kind   error // ErrInvalid, ErrExpired or ErrUnknownKey
	Reason string
}

func (e *TokenError) Error() string { return "tokens: " + e.Kind.Error() + ": " + e.Reason }
func (e *TokenError) Unwrap() error { return e.Kind }

func invalid(format string, args ...any) error {
	return &TokenError{Kind: ErrInvalid, Reason: fmt.Sprintf(format, args...)}
}

// maxTokenLen bounds the work an attacker can cause before the signature
// check; Auth0-style tokens stay far below it even with many scopes.
const maxTokenLen = 64 << 10

// Sign returns claims (a struct or a map, encoded with encoding/json) as a
// compact RS256 JWS signed with the current key. It fails with
// ErrNoSigningKey while that key is revoked and its successor cannot be
// loaded.
func (k *Keys) Sign(claims any) (string, error) {
	s := k.set.Load().signer
	if s == nil {
		return "", ErrNoSigningKey
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("tokens: encode claims: %w", err)
	}
	sigLen := s.priv.Size()
	headerLen := len(s.headerB64)
	payloadLen := b64.EncodedLen(len(payload))
	buf := make([]byte, headerLen+payloadLen+1+b64.EncodedLen(sigLen))
	copy(buf, s.headerB64)
	b64.Encode(buf[headerLen:], payload)
	signed := headerLen + payloadLen
	digest := sha256.Sum256(buf[:signed])
	// rand is ignored for PKCS #1 v1.5, which is deterministic.
	sig, err := rsa.SignPKCS1v15(nil, s.priv, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("tokens: sign: %w", err)
	}
	buf[signed] = '.'
	b64.Encode(buf[signed+1:], sig)
	return string(buf), nil
}

// unknownKeyReloadEvery bounds ParseJWT's reloads for unknown keys.
const unknownKeyReloadEvery = 5 * time.Second

// monotonicEpoch anchors the unknown-key limiter to the monotonic clock:
// a wall clock stepped back would otherwise pause the reloads until it
// caught up.
var monotonicEpoch = time.Now()

// mayReloadForUnknownKey reports whether ParseJWT may reload now, and if
// so, counts this reload.
func (k *Keys) mayReloadForUnknownKey() bool {
	// Offset by one interval so that the zero value of unknownReload is
	// already an interval ago.
	now := int64(time.Since(monotonicEpoch) + unknownKeyReloadEvery)
	last := k.unknownReload.Load()
	return now-last >= int64(unknownKeyReloadEvery) && k.unknownReload.CompareAndSwap(last, now)
}

type header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
}

// Verify checks a compact JWS signed by one of the published keys and
// returns its payload and kid. It checks nothing in the payload; see
// ParseJWT.
func (k *Keys) Verify(token string) (payload []byte, kid string, err error) {
	if len(token) > maxTokenLen {
		return nil, "", invalid("longer than %d bytes", maxTokenLen)
	}
	h64, rest, ok1 := strings.Cut(token, ".")
	p64, s64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s64, ".") {
		return nil, "", invalid("not a compact JWS")
	}
	hb, err := b64.Strict().DecodeString(h64)
	if err != nil {
		return nil, "", invalid("header is not base64url")
	}
	var h header
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, "", invalid("header is not JSON")
	}
	if h.Alg != "RS256" {
		return nil, "", invalid("alg %q is not RS256", h.Alg)
	}
	// RFC 7515 §4.1.11: extensions marked critical must be understood;
	// we understand none.
	if h.Crit != nil {
		return nil, "", invalid("unsupported crit header")
	}
	pub, ok := k.set.Load().published[h.Kid]
	if !ok {
		return nil, "", &TokenError{Kind: ErrUnknownKey, Reason: fmt.Sprintf("kid %q", h.Kid)}
	}
	sig, err := b64.Strict().DecodeString(s64)
	if err != nil {
		return nil, "", invalid("signature is not base64url")
	}
	digest := sha256.Sum256([]byte(token[:len(h64)+1+len(p64)]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		return nil, "", invalid("bad signature")
	}
	payload, err = b64.Strict().DecodeString(p64)
	if err != nil {
		return nil, "", invalid("payload is not base64url")
	}
	return payload, h.Kid, nil
}

// Claims are the verified claims of one of our JWTs. Times are zero when
// the claim is absent.
type Claims struct {
	Issuer    string
	Subject   string
	Audience  []string
	ExpiresAt time.Time
	NotBefore time.Time
	IssuedAt  time.Time
	ID        string
	Scope     string
	Azp       string
	Gty       string
	// Raw holds every claim as decoded by encoding/json, numbers as
	// json.Number.
	Raw map[string]any
}

// ReplicaSkew is the clock leeway for checking the tokens Gatehouse itself
// signed: one replica's token is often used at once on another, and iat is
// in whole seconds, so clocks even milliseconds apart would refuse a token
// issued the same second.
const ReplicaSkew = 5 * time.Second

// ParseJWT verifies a token signed by one of our keys and checks it is
// meant for us: iss equals issuer, aud is or contains audience, exp is
// present and not passed, nbf and iat (when present) are not in the
// future. skew is the clock leeway granted to each time check.
//
// A token naming a key this process does not know makes it reload the
// keys once and verify again, at most once per unknownKeyReloadEvery: a
// key another replica started signing with reaches this one by a
// notification, or by the reload every ReloadEvery when that was lost,
// and until then its valid tokens would be refused. The bound keeps
// tokens with made-up kids from turning into a database read each. The
// reload outlives the request's cancellation: it spends the only reload
// of its interval, and a caller that hung up (or any made-up token sent
// and dropped every few seconds) must not spend it on nothing. It is
// given that interval, past which another request may start one.
func (k *Keys) ParseJWT(ctx context.Context, token, issuer, audience string, now time.Time, skew time.Duration) (*Claims, error) {
	payload, _, err := k.Verify(token)
	if errors.Is(err, ErrUnknownKey) && k.mayReloadForUnknownKey() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unknownKeyReloadEvery)
		rerr := k.Reload(rctx)
		cancel()
		if rerr != nil {
			k.logger.ErrorContext(ctx, "reloading signing keys for a token of an unknown key failed", "error", rerr)
		}
		payload, _, err = k.Verify(token)
	}
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var raw map[string]any
	// More reports false before a stray } or ], so only a second Decode
	// meeting EOF proves the payload is one object.
	var rest json.RawMessage
	if err := dec.Decode(&raw); err != nil || raw == nil || !errors.Is(dec.Decode(&rest), io.EOF) {
		return nil, invalid("payload is not a JSON object")
	}
	c := &Claims{Raw: raw}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"iss", &c.Issuer}, {"sub", &c.Subject}, {"jti", &c.ID}, {"scope", &c.Scope}, {"azp", &c.Azp}, {"gty", &c.Gty}} {
		if *f.dst, err = stringClaim(raw, f.name); err != nil {
			return nil, err
		}
	}
	if c.Audience, err = audienceClaim(raw); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"exp", &c.ExpiresAt}, {"nbf", &c.NotBefore}, {"iat", &c.IssuedAt}} {
		if *f.dst, err = timeClaim(raw, f.name); err != nil {
			return nil, err
		}
	}

	if c.Issuer != issuer {
		return nil, invalid("issuer %q is not %q", c.Issuer, issuer)
	}
	if !slices.Contains(c.Audience, audience) {
		return nil, invalid("audience %q does not include %q", c.Audience, audience)
	}
	if c.ExpiresAt.IsZero() {
		return nil, invalid("no exp claim")
	}
	if !now.Before(c.ExpiresAt.Add(skew)) {
		return nil, &TokenError{Kind: ErrExpired, Reason: "exp " + c.ExpiresAt.UTC().Format(time.RFC3339)}
	}
	if !c.NotBefore.IsZero() && now.Add(skew).Before(c.NotBefore) {
		return nil, invalid("not valid before %s", c.NotBefore.UTC().Format(time.RFC3339))
	}
	if !c.IssuedAt.IsZero() && now.Add(skew).Before(c.IssuedAt) {
		return nil, invalid("issued in the future (%s)", c.IssuedAt.UTC().Format(time.RFC3339))
	}
	return c, nil
}

func stringClaim(raw map[string]any, name string) (string, error) {
	v, ok := raw[name]
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", invalid("%s is not a string", name)
	}
	return s, nil
}

func audienceClaim(raw map[string]any) ([]string, error) {
	switch v := raw["aud"].(type) {
	case nil:
		return nil, nil
	case string:
		return []string{v}, nil
	case []any:
		aud := make([]string, len(v))
		for i, a := range v {
			s, ok := a.(string)
			if !ok {
				return nil, invalid("aud is not a string array")
			}
			aud[i] = s
		}
		return aud, nil
	default:
		return nil, invalid("aud is neither a string nor an array")
	}
}

func timeClaim(raw map[string]any, name string) (time.Time, error) {
	v, ok := raw[name]
	if !ok {
		return time.Time{}, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, invalid("%s is not a number", name)
	}
	f, err := n.Float64()
	// Bounded so the conversion to time.Time cannot overflow.
	if err != nil || f < 0 || f > 1<<40 || math.IsNaN(f) {
		return time.Time{}, invalid("%s is not a valid NumericDate", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}
