package management_test

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/secrets"
	"github.com/gatehouse/gatehouse/internal/server/servertest"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/tokens"
)

var b64 = base64.RawURLEncoding

// gatehouseSigner signs claims with the server's own current key, as
// another replica on the same database and master key would: the tokens
// it makes pass the signature check, so only the claim checks stand
// between them and the API.
func gatehouseSigner(t *testing.T, env *servertest.Env) func(claims map[string]any) string {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), env.Config.Database, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	master, err := secrets.ParseMasterKey(env.Config.SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := secrets.NewKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := tokens.NewKeys(t.Context(), st, kr, nil)
	if err != nil {
		t.Fatal(err)
	}
	return func(claims map[string]any) string {
		t.Helper()
		tok, err := keys.Sign(claims)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
}

// publishedKey returns the kid and public key the server signs with, from
// its JWKS, as an attacker would read them.
func publishedKey(t *testing.T, env *servertest.Env) (string, *rsa.PublicKey, []byte) {
	t.Helper()
	resp, err := http.Get(env.URL + ".well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct{ Kid, N, E string } `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("jwks: %v", err)
	}
	k := set.Keys[0]
	n, _ := b64.DecodeString(k.N)
	e, _ := b64.DecodeString(k.E)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k.Kid, pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func jsonB64(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64.EncodeToString(b)
}

// rs256 signs header and claims with key, whatever the header claims.
func rs256(t *testing.T, key *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	in := jsonB64(t, header) + "." + jsonB64(t, claims)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + b64.EncodeToString(sig)
}

func hs256(t *testing.T, secret []byte, header, claims map[string]any) string {
	t.Helper()
	in := jsonB64(t, header) + "." + jsonB64(t, claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + b64.EncodeToString(m.Sum(nil))
}

func jwkOf(pub *rsa.PublicKey, kid string) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
		"n": b64.EncodeToString(pub.N.Bytes()), "e": b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes())}
}

// TestBearerForgeries presents tokens an attacker can make, and tokens
// Gatehouse's own key signed for something other than a Management API
// call, to a route the genuine token opens; every one is 401 Invalid
// token. The attacker's key server must never be asked for a key.
func TestBearerForgeries(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			env := servertest.Start(t, backend)
			sign := gatehouseSigner(t, env)
			kid, pub, pubPEM := publishedKey(t, env)
			attacker, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			var fetched atomic.Int32
			keyServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fetched.Add(1)
				_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{jwkOf(&attacker.PublicKey, "evil")}})
			}))
			t.Cleanup(keyServer.Close)

			mgmt := env.URL + "api/v2/"
			now := time.Now()
			claims := func(change map[string]any) map[string]any {
				c := map[string]any{
					"iss": env.URL, "aud": mgmt, "sub": env.AdminID + "@clients", "azp": env.AdminID,
					"scope": "read:tenant_settings", "gty": "client-credentials",
					"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "j",
				}
				for k, v := range change {
					if v == nil {
						delete(c, k)
					} else {
						c[k] = v
					}
				}
				return c
			}
			rsHeader := func(extra map[string]any) map[string]any {
				h := map[string]any{"alg": "RS256", "typ": "JWT"}
				for k, v := range extra {
					h[k] = v
				}
				return h
			}
			genuine := sign(claims(nil))
			gh, gp, _ := strings.Cut(genuine, ".")
			gp, _, _ = strings.Cut(gp, ".")
			jwksJSON, _ := json.Marshal(map[string]any{"keys": []any{jwkOf(pub, kid)}})

			cases := []struct{ name, token string }{
				{"alg none", jsonB64(t, map[string]any{"alg": "none", "kid": kid}) + "." + gp + "."},
				{"alg none, no signature part", jsonB64(t, map[string]any{"alg": "none", "kid": kid}) + "." + gp},
				{"alg NONE", jsonB64(t, map[string]any{"alg": "NONE", "kid": kid}) + "." + gp + "."},
				{"genuine header and claims, signature cut", gh + "." + gp + "."},
				{"HS256 keyed with the public key PEM", hs256(t, pubPEM, map[string]any{"alg": "HS256", "kid": kid}, claims(nil))},
				{"HS256 keyed with the modulus", hs256(t, pub.N.Bytes(), map[string]any{"alg": "HS256", "kid": kid}, claims(nil))},
				{"HS256 keyed with the JWKS", hs256(t, jwksJSON, map[string]any{"alg": "HS256", "kid": kid}, claims(nil))},
				{"RS256 by another key under our kid", rs256(t, attacker, rsHeader(map[string]any{"kid": kid}), claims(nil))},
				{"RS256 with its key embedded as jwk", rs256(t, attacker, rsHeader(map[string]any{"jwk": jwkOf(&attacker.PublicKey, "evil")}), claims(nil))},
				{"RS256 with an embedded jwk under our kid", rs256(t, attacker, rsHeader(map[string]any{"kid": kid, "jwk": jwkOf(&attacker.PublicKey, kid)}), claims(nil))},
				{"RS256 with jku", rs256(t, attacker, rsHeader(map[string]any{"kid": "evil", "jku": keyServer.URL}), claims(nil))},
				{"RS256 with jku under our kid", rs256(t, attacker, rsHeader(map[string]any{"kid": kid, "jku": keyServer.URL}), claims(nil))},
				{"RS256 with x5u", rs256(t, attacker, rsHeader(map[string]any{"kid": "evil", "x5u": keyServer.URL}), claims(nil))},
				{"PS256 by our kid", rs256(t, attacker, map[string]any{"alg": "PS256", "kid": kid}, claims(nil))},

				{"expired", sign(claims(map[string]any{"iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Minute).Unix()}))},
				{"not yet valid", sign(claims(map[string]any{"nbf": now.Add(time.Minute).Unix()}))},
				{"issued in the future", sign(claims(map[string]any{"iat": now.Add(time.Minute).Unix()}))},
				{"no exp", sign(claims(map[string]any{"exp": nil}))},
				{"exp a string", sign(claims(map[string]any{"exp": "9999999999"}))},
				{"audience without the trailing slash", sign(claims(map[string]any{"aud": env.URL + "api/v2"}))},
				{"audience userinfo", sign(claims(map[string]any{"aud": env.URL + "userinfo"}))},
				{"audience another API", sign(claims(map[string]any{"aud": []string{"https://orders.example/", env.URL + "userinfo"}}))},
				{"no audience", sign(claims(map[string]any{"aud": nil}))},
				{"another issuer", sign(claims(map[string]any{"iss": "https://tenant.eu.auth0.com/"}))},
				{"issuer without the trailing slash", sign(claims(map[string]any{"iss": strings.TrimSuffix(env.URL, "/")}))},
				{"no issuer", sign(claims(map[string]any{"iss": nil}))},
				{"scope an array", sign(claims(map[string]any{"scope": []string{"read:tenant_settings"}}))},
				{"an unknown application", sign(claims(map[string]any{"sub": "nobody@clients", "azp": "nobody"}))},
				{"no subject", sign(claims(map[string]any{"sub": nil}))},
				// What a user grant would carry, were one ever issued for
				// the Management API: the token endpoint refuses that
				// (TestUserTokensAtManagementAPI), and the API refuses
				// anything but an application's token.
				{"a user's token for the Management API", sign(claims(map[string]any{"sub": "waad|a0000000-0000-4000-8000-000000000001", "gty": "password"}))},
				// An ID token: aud is the application, no scope.
				{"an ID token", sign(claims(map[string]any{"aud": env.AdminID, "sub": "waad|a0000000-0000-4000-8000-000000000001", "scope": nil, "gty": nil, "nonce": "n"}))},
				{"an opaque access token's shape", "gh1." + b64.EncodeToString([]byte("not sealed"))},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					status, h, raw := env.Do(t, "GET", "api/v2/tenants/settings", c.token, nil)
					body := decode(t, raw)
					if status != http.StatusUnauthorized || body["message"] != "Invalid token" || body["error"] != "Unauthorized" || body["statusCode"] != 401.0 {
						t.Fatalf("%d %s", status, raw)
					}
					if attrs, _ := body["attributes"].(map[string]any); attrs["error"] != "Invalid token" {
						t.Errorf("attributes %v", body["attributes"])
					}
					if got := h.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
						t.Errorf("WWW-Authenticate %q", got)
					}
				})
			}
			if n := fetched.Load(); n != 0 {
				t.Errorf("the attacker's key server was asked %d times", n)
			}
			// The controls: the genuine token, and one whose audience list
			// holds the Management API beside another, are good.
			for name, tok := range map[string]string{"genuine": genuine, "audience list": sign(claims(map[string]any{"aud": []string{"urn:other", mgmt}}))} {
				if status, _, raw := env.Do(t, "GET", "api/v2/tenants/settings", tok, nil); status != http.StatusOK {
					t.Errorf("%s: %d %s", name, status, raw)
				}
			}
		})
	}
}

// TestBearerHeaderForms: the token is read from one Authorization header
// only. A token in the query string or in a second header is not read,
// and two Authorization headers are refused: a proxy in front may have
// checked the other one.
func TestBearerHeaderForms(t *testing.T) {
	env := servertest.Start(t, storetest.SQLite)
	good := env.ManagementToken(t)
	do := func(t *testing.T, path string, header []string) (int, http.Header, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("GET", env.URL+path, nil)
		req.Header["Authorization"] = header
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, resp.Header, body
	}
	for _, c := range []struct {
		name, path string
		header     []string
		status     int
		message    string
		challenge  string
	}{
		{"query string", "api/v2/tenants/settings?access_token=" + good, nil, 401, "Missing authentication", "Bearer"},
		{"empty header", "api/v2/tenants/settings", []string{""}, 401, "Missing authentication", "Bearer"},
		{"two headers, good first", "api/v2/tenants/settings", []string{"Bearer " + good, "Bearer x"}, 400, "Bad HTTP authentication header format", `Bearer error="invalid_request"`},
		{"two headers, good second", "api/v2/tenants/settings", []string{"Bearer x", "Bearer " + good}, 400, "Bad HTTP authentication header format", `Bearer error="invalid_request"`},
		{"two good headers", "api/v2/tenants/settings", []string{"Bearer " + good, "Bearer " + good}, 400, "Bad HTTP authentication header format", `Bearer error="invalid_request"`},
		{"scheme only", "api/v2/tenants/settings", []string{"Bearer"}, 400, "Bad HTTP authentication header format", `Bearer error="invalid_request"`},
		{"basic", "api/v2/tenants/settings", []string{"Basic " + base64.StdEncoding.EncodeToString([]byte(env.AdminID+":"+env.AdminSecret))}, 400, "Bad HTTP authentication header format", `Bearer error="invalid_request"`},
		{"lower-case scheme", "api/v2/tenants/settings", []string{"bearer " + good}, 200, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, h, body := do(t, c.path, c.header)
			if status != c.status {
				t.Fatalf("%d %v", status, body)
			}
			if c.message == "" {
				return
			}
			if body["message"] != c.message || body["statusCode"] != float64(c.status) || body["error"] != http.StatusText(c.status) {
				t.Errorf("body %v", body)
			}
			if got := h.Get("WWW-Authenticate"); got != c.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, c.challenge)
			}
		})
	}
}
