package tokens

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	testIssuer   = "https://gatehouse.example/"
	testAudience = "https://gatehouse.example/api/v2/"
)

// accessClaims is the shape of a client-credentials access token.
type accessClaims struct {
	Iss   string   `json:"iss"`
	Sub   string   `json:"sub"`
	Aud   []string `json:"aud"`
	Azp   string   `json:"azp"`
	Scope string   `json:"scope"`
	Gty   string   `json:"gty"`
	Iat   int64    `json:"iat"`
	Exp   int64    `json:"exp"`
	Jti   string   `json:"jti"`
}

func validClaims(now time.Time) accessClaims {
	return accessClaims{
		Iss:   testIssuer,
		Sub:   "m2m-client@clients",
		Aud:   []string{testAudience, "https://other.example/"},
		Azp:   "m2m-client",
		Scope: "read:clients update:tenant_settings",
		Gty:   "client-credentials",
		Iat:   now.Unix(),
		Exp:   now.Add(time.Hour).Unix(),
		Jti:   "0f1e2d3c4b5a",
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	k := shared(t)
	now := time.Now()
	for name, claims := range map[string]any{
		"struct": validClaims(now),
		"map":    map[string]any{"iss": testIssuer, "aud": testAudience, "exp": now.Add(time.Minute).Unix(), "custom": []int{1, 2}},
	} {
		t.Run(name, func(t *testing.T) {
			tok, err := k.Sign(claims)
			if err != nil {
				t.Fatal(err)
			}
			if strings.ContainsAny(tok, "=+/ \n") || strings.Count(tok, ".") != 2 {
				t.Fatalf("not a compact JWS with unpadded base64url: %s", tok)
			}
			h, _, _ := strings.Cut(tok, ".")
			hb, _ := base64.RawURLEncoding.DecodeString(h)
			if want := `{"alg":"RS256","typ":"JWT","kid":"` + k.KID() + `"}`; string(hb) != want {
				t.Errorf("header %s, want %s", hb, want)
			}
			payload, kid, err := k.Verify(tok)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(claims)
			if string(payload) != string(want) || kid != k.KID() {
				t.Errorf("Verify = %s, %q", payload, kid)
			}
		})
	}
	if _, err := k.Sign(map[string]any{"bad": func() {}}); err == nil {
		t.Error("unencodable claims signed")
	}
}

func TestParseJWTClaims(t *testing.T) {
	k := shared(t)
	now := time.Unix(1_750_000_000, 0)
	tok, _ := k.Sign(validClaims(now))
	c, err := k.ParseJWT(t.Context(), tok, testIssuer, testAudience, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != testIssuer || c.Subject != "m2m-client@clients" || c.Azp != "m2m-client" ||
		c.Scope != "read:clients update:tenant_settings" || c.Gty != "client-credentials" || c.ID != "0f1e2d3c4b5a" ||
		len(c.Audience) != 2 || !c.IssuedAt.Equal(now) || !c.ExpiresAt.Equal(now.Add(time.Hour)) || !c.NotBefore.IsZero() {
		t.Errorf("claims %+v", c)
	}
	if c.Raw["exp"] != json.Number("1750003600") {
		t.Errorf("raw exp %#v", c.Raw["exp"])
	}

	// aud as a single string, fractional NumericDate.
	tok, _ = k.Sign(map[string]any{"iss": testIssuer, "aud": testAudience, "exp": 1_750_000_000.5})
	c, err = k.ParseJWT(t.Context(), tok, testIssuer, testAudience, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Audience) != 1 || !c.ExpiresAt.Equal(now.Add(500*time.Millisecond)) {
		t.Errorf("claims %+v", c)
	}
}

// Tokens must verify with libraries that share no code with ours, the way
// relying parties will check them.
func TestIndependentVerifiers(t *testing.T) {
	k := shared(t)
	now := time.Now()
	tok, err := k.Sign(validClaims(now))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("go-jose", func(t *testing.T) {
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(k.JWKS(), &set); err != nil {
			t.Fatal(err)
		}
		parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			t.Fatal(err)
		}
		var std jwt.Claims
		var extra struct {
			Scope string `json:"scope"`
		}
		if err := parsed.Claims(set, &std, &extra); err != nil {
			t.Fatal(err)
		}
		if err := std.Validate(jwt.Expected{Issuer: testIssuer, AnyAudience: jwt.Audience{testAudience}, Time: now}); err != nil {
			t.Fatal(err)
		}
		if extra.Scope != "read:clients update:tenant_settings" {
			t.Errorf("scope %q", extra.Scope)
		}
	})

	t.Run("go-oidc remote JWKS", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(k.JWKS())
		}))
		defer srv.Close()
		ctx := context.Background()
		v := oidc.NewVerifier(testIssuer, oidc.NewRemoteKeySet(ctx, srv.URL), &oidc.Config{ClientID: testAudience})
		idt, err := v.Verify(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		if idt.Subject != "m2m-client@clients" {
			t.Errorf("sub %q", idt.Subject)
		}
		// And it rejects what it should, so the check above means something.
		if _, err := oidc.NewVerifier(testIssuer, oidc.NewRemoteKeySet(ctx, srv.URL), &oidc.Config{ClientID: "someone-else"}).Verify(ctx, tok); err == nil {
			t.Error("go-oidc accepted a foreign audience")
		}
	})

	t.Run("go-oidc static keys", func(t *testing.T) {
		var set jose.JSONWebKeySet
		json.Unmarshal(k.JWKS(), &set)
		var pubs []crypto.PublicKey
		for _, key := range set.Keys {
			pubs = append(pubs, key.Key)
		}
		v := oidc.NewVerifier(testIssuer, &oidc.StaticKeySet{PublicKeys: pubs}, &oidc.Config{ClientID: testAudience})
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	})
}

func b64json(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// signWith makes an RS256 token with any key and header, to forge tokens
// our Keys must refuse.
func signWith(t *testing.T, priv *rsa.PrivateKey, header, claims any) string {
	t.Helper()
	in := b64json(t, header) + "." + b64json(t, claims)
	d := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signedPayload signs payload as it is with k's current key, for payloads
// Sign would never produce.
func signedPayload(t *testing.T, k *Keys, payload []byte) string {
	t.Helper()
	s := k.set.Load().signer
	// headerB64 ends with the dot before the payload.
	in := string(s.headerB64) + base64.RawURLEncoding.EncodeToString(payload)
	d := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(nil, s.priv, crypto.SHA256, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestRejections(t *testing.T) {
	k := shared(t)
	kid := k.KID()
	now := time.Now()
	good, _ := k.Sign(validClaims(now))
	h, p, s := splitToken(good)

	var set jose.JSONWebKeySet
	json.Unmarshal(k.JWKS(), &set)
	pubDER, _ := x509.MarshalPKIXPublicKey(set.Keys[0].Key)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hs256 := func(secret []byte) string {
		in := b64json(t, map[string]string{"alg": "HS256", "typ": "JWT", "kid": kid}) + "." + p
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(in))
		return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	stranger, _ := rsa.GenerateKey(rand.Reader, 2048)
	withClaims := func(mut func(*accessClaims)) string {
		c := validClaims(now)
		mut(&c)
		tok, err := k.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tamperedClaims := validClaims(now)
	tamperedClaims.Scope += " delete:users"

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"alg none", b64json(t, map[string]string{"alg": "none", "typ": "JWT"}) + "." + p + ".", ErrInvalid},
		{"alg none with kid", b64json(t, map[string]string{"alg": "none", "kid": kid}) + "." + p + "." + s, ErrInvalid},
		{"HS256 keyed with the public key PEM", hs256(pubPEM), ErrInvalid},
		{"HS256 keyed with the public key DER", hs256(pubDER), ErrInvalid},
		{"RS512 header", b64json(t, map[string]string{"alg": "RS512", "kid": kid}) + "." + p + "." + s, ErrInvalid},
		{"unknown kid", signWith(t, stranger, map[string]string{"alg": "RS256", "kid": "not-ours"}, validClaims(now)), ErrUnknownKey},
		{"no kid", signWith(t, stranger, map[string]string{"alg": "RS256"}, validClaims(now)), ErrUnknownKey},
		{"our kid, another key", signWith(t, stranger, map[string]string{"alg": "RS256", "kid": kid}, validClaims(now)), ErrInvalid},
		{"tampered payload", h + "." + b64json(t, tamperedClaims) + "." + s, ErrInvalid},
		{"tampered header", b64json(t, map[string]string{"alg": "RS256", "typ": "at+jwt", "kid": kid}) + "." + p + "." + s, ErrInvalid},
		{"truncated signature", h + "." + p + "." + s[:len(s)-4], ErrInvalid},
		{"padded signature", h + "." + p + "." + s + "=", ErrInvalid},
		{"crit header", signWith(t, stranger, map[string]any{"alg": "RS256", "kid": kid, "crit": []string{"exp"}}, validClaims(now)), ErrInvalid},
		{"two parts", h + "." + p, ErrInvalid},
		{"four parts", good + ".x", ErrInvalid},
		{"empty", "", ErrInvalid},
		{"header not base64", "!!." + p + "." + s, ErrInvalid},
		{"header not JSON", base64.RawURLEncoding.EncodeToString([]byte("nope")) + "." + p + "." + s, ErrInvalid},
		{"oversized", strings.Repeat("a", maxTokenLen+1), ErrInvalid},
		{"expired", withClaims(func(c *accessClaims) { c.Exp = now.Add(-time.Minute).Unix() }), ErrExpired},
		{"expired just now", withClaims(func(c *accessClaims) { c.Exp = now.Unix() }), ErrExpired},
		{"wrong issuer", withClaims(func(c *accessClaims) { c.Iss = "https://evil.example/" }), ErrInvalid},
		{"issuer without trailing slash", withClaims(func(c *accessClaims) { c.Iss = strings.TrimSuffix(testIssuer, "/") }), ErrInvalid},
		{"wrong audience", withClaims(func(c *accessClaims) { c.Aud = []string{"https://other.example/"} }), ErrInvalid},
		{"no audience", withClaims(func(c *accessClaims) { c.Aud = nil }), ErrInvalid},
		{"issued in the future", withClaims(func(c *accessClaims) { c.Iat = now.Add(time.Hour).Unix() }), ErrInvalid},
		{"nbf in the future", mustSign(t, k, map[string]any{"iss": testIssuer, "aud": testAudience, "exp": now.Add(time.Hour).Unix(), "nbf": now.Add(10 * time.Minute).Unix()}), ErrInvalid},
		{"no exp", mustSign(t, k, map[string]any{"iss": testIssuer, "aud": testAudience}), ErrInvalid},
		{"exp as string", mustSign(t, k, map[string]any{"iss": testIssuer, "aud": testAudience, "exp": "9999999999"}), ErrInvalid},
		{"exp negative", mustSign(t, k, map[string]any{"iss": testIssuer, "aud": testAudience, "exp": -1}), ErrInvalid},
		{"aud not strings", mustSign(t, k, map[string]any{"iss": testIssuer, "aud": []any{1}, "exp": now.Add(time.Hour).Unix()}), ErrInvalid},
		{"iss not a string", mustSign(t, k, map[string]any{"iss": 1, "aud": testAudience, "exp": now.Add(time.Hour).Unix()}), ErrInvalid},
		{"payload not an object", mustSign(t, k, []string{"iss"}), ErrInvalid},
		{"payload null", signedPayload(t, k, []byte("null")), ErrInvalid},
		{"payload with a stray brace after it", signedPayload(t, k, append(mustJSON(t, validClaims(now)), '}')), ErrInvalid},
		{"payload with a second object", signedPayload(t, k, append(mustJSON(t, validClaims(now)), "{}"...)), ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := k.ParseJWT(t.Context(), tt.token, testIssuer, testAudience, now, 0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v does not match ErrInvalid", err)
			}
			var te *TokenError
			if !errors.As(err, &te) || !strings.HasPrefix(err.Error(), "tokens: ") {
				t.Errorf("error %q is not a *TokenError with prefix", err)
			}
			if len(tt.token) > 20 && strings.Contains(err.Error(), tt.token[len(tt.token)-20:]) {
				t.Error("error message quotes the token")
			}
		})
	}
	if _, err := k.ParseJWT(t.Context(), signedPayload(t, k, mustJSON(t, validClaims(now))), testIssuer, testAudience, now, 0); err != nil {
		t.Fatalf("signedPayload's token of valid claims is rejected: %v", err)
	}
	if _, err := k.ParseJWT(t.Context(), good, testIssuer, testAudience, now, 0); err != nil {
		t.Fatalf("the untouched token is rejected: %v", err)
	}
}

func TestSkew(t *testing.T) {
	k := shared(t)
	now := time.Now()
	tok := mustSign(t, k, map[string]any{"iss": testIssuer, "aud": testAudience,
		"exp": now.Add(-30 * time.Second).Unix(), "nbf": now.Add(30 * time.Second).Unix(), "iat": now.Add(30 * time.Second).Unix()})
	if _, err := k.ParseJWT(t.Context(), tok, testIssuer, testAudience, now, time.Minute); err != nil {
		t.Errorf("within a minute's skew: %v", err)
	}
	if _, err := k.ParseJWT(t.Context(), tok, testIssuer, testAudience, now, 10*time.Second); !errors.Is(err, ErrInvalid) {
		t.Errorf("beyond the skew: %v", err)
	}
}

func mustSign(t *testing.T, k *Keys, claims any) string {
	t.Helper()
	tok, err := k.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func splitToken(tok string) (h, p, s string) {
	parts := strings.Split(tok, ".")
	return parts[0], parts[1], parts[2]
}
