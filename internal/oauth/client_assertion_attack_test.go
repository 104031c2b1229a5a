package oauth_test

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/server/servertest"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// unsignedJWT builds a compact JWT by hand: alg none, or HS256 keyed with
// the bytes of a public key's PEM, the classic confusion of a verifier
// that takes the key it holds for whatever the header names.
func unsignedJWT(header, claims map[string]any, hmacKey []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	if hmacKey == nil {
		return input + "."
	}
	m := hmac.New(sha256.New, hmacKey)
	m.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// TestClientAssertionAttacks: assertions an attacker can forge or replay
// without the client's private key, on both backends. Each is 401
// access_denied, never a token nor a server error; one assertion sent many
// times at once yields exactly one token; an assertion and the secret of a
// private_key_jwt client are refused at the revocation endpoint too.
func TestClientAssertionAttacks(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			env := servertest.Start(t, backend)
			admin := env.ManagementToken(t)
			api := func(method, path string, body any) map[string]any {
				t.Helper()
				return env.MustDo(t, method, path, admin, body)
			}
			aud := env.URL + "api/v2/"
			newClient := func(name string, key *rsa.PrivateKey) (id, secret, credID string) {
				c := api("POST", "api/v2/clients", map[string]any{"name": name, "app_type": "non_interactive", "grant_types": []string{"client_credentials"}})
				id, secret = c["client_id"].(string), c["client_secret"].(string)
				api("POST", "api/v2/client-grants", map[string]any{"client_id": id, "audience": aud, "scope": []string{"read:clients"}})
				cred := api("POST", "api/v2/clients/"+id+"/credentials", map[string]any{"credential_type": "public_key", "pem": publicPEM(t, key)})
				credID = cred["id"].(string)
				api("PATCH", "api/v2/clients/"+id, map[string]any{"client_authentication_methods": map[string]any{"private_key_jwt": map[string]any{"credentials": []map[string]string{{"id": credID}}}}})
				return id, secret, credID
			}
			key, _ := rsa.GenerateKey(rand.Reader, 2048)
			otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
			id, secret, _ := newClient("victim", key)
			_, _, otherCred := newClient("other", otherKey)

			claims := func(mod func(map[string]any)) map[string]any {
				now := time.Now()
				m := map[string]any{"iss": id, "sub": id, "aud": env.URL, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": rand.Text()}
				if mod != nil {
					mod(m)
				}
				return m
			}
			form := func(a string) string {
				return url.Values{"grant_type": {"client_credentials"}, "audience": {aud},
					"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}.Encode()
			}
			grant := func(a string) (int, map[string]any) {
				t.Helper()
				status, _, body := post(t, env, tokenCase{contentType: "application/x-www-form-urlencoded", body: form(a)})
				return status, body
			}
			pemBytes := []byte(publicPEM(t, key))
			for name, a := range map[string]string{
				"alg none":                 unsignedJWT(map[string]any{"alg": "none", "typ": "JWT"}, claims(nil), nil),
				"HS256 keyed with the PEM": unsignedJWT(map[string]any{"alg": "HS256", "typ": "JWT"}, claims(nil), pemBytes),
				"signed by another client's credential, as the victim": assertion(t, otherKey, jose.RS256, "", claims(nil)),
				"iat an hour ago":       assertion(t, key, jose.RS256, "", claims(func(m map[string]any) { m["iat"] = time.Now().Add(-time.Hour).Unix() })),
				"nbf ahead":             assertion(t, key, jose.RS256, "", claims(func(m map[string]any) { m["nbf"] = time.Now().Add(time.Hour).Unix() })),
				"iat ahead":             assertion(t, key, jose.RS256, "", claims(func(m map[string]any) { m["iat"] = time.Now().Add(time.Hour).Unix() })),
				"exp beyond any time":   assertion(t, key, jose.RS256, "", claims(func(m map[string]any) { m["exp"] = 1e300 })),
				"exp as a string":       assertion(t, key, jose.RS256, "", claims(func(m map[string]any) { m["exp"] = "9999999999" })),
				"aud an issuer prefix":  assertion(t, key, jose.RS256, "", claims(func(m map[string]any) { m["aud"] = strings.TrimSuffix(env.URL, "/") })),
				"no aud":                assertion(t, key, jose.RS256, "", claims(func(m map[string]any) { delete(m, "aud") })),
				"jti of 257 bytes":      assertion(t, key, jose.RS256, "", claims(func(m map[string]any) { m["jti"] = strings.Repeat("j", 257) })),
				"iss of another client": assertion(t, key, jose.RS256, "", claims(func(m map[string]any) { m["iss"], m["sub"] = "nobody", "nobody" })),
			} {
				if status, body := grant(a); status != http.StatusUnauthorized || body["error"] != "access_denied" {
					t.Errorf("%s: %d %v, want 401 access_denied", name, status, body)
				}
			}
			// A client cannot name another client's credential.
			if status, _, raw := env.Do(t, "PATCH", "api/v2/clients/"+id, admin, map[string]any{"client_authentication_methods": map[string]any{"private_key_jwt": map[string]any{"credentials": []map[string]string{{"id": otherCred}}}}}); status != http.StatusBadRequest {
				t.Errorf("naming another client's credential: %d %s", status, raw)
			}

			// One assertion, sent eight times at once: one token.
			one := assertion(t, key, jose.RS256, "", claims(nil))
			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				statuses = map[int]int{}
			)
			for range 8 {
				wg.Go(func() {
					req, _ := http.NewRequest("POST", env.URL+"oauth/token", strings.NewReader(form(one)))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					mu.Lock()
					statuses[resp.StatusCode]++
					mu.Unlock()
				})
			}
			wg.Wait()
			if statuses[http.StatusOK] != 1 || statuses[http.StatusUnauthorized] != 7 {
				t.Errorf("one assertion sent 8 times at once: statuses %v, want one 200 and seven 401", statuses)
			}

			// The revocation endpoint authenticates the same way.
			revoke := func(v url.Values) int {
				t.Helper()
				resp, err := http.PostForm(env.URL+"oauth/revoke", v)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			withAssertion := url.Values{"token": {"x.y"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion(t, key, jose.RS256, "", claims(nil))}}
			if s := revoke(withAssertion); s != http.StatusOK {
				t.Errorf("revoke with an assertion: %d", s)
			}
			if s := revoke(withAssertion); s != http.StatusUnauthorized {
				t.Errorf("revoke with the same assertion again: %d, want 401", s)
			}
			if s := revoke(url.Values{"token": {"x.y"}, "client_id": {id}, "client_secret": {secret}}); s != http.StatusUnauthorized {
				t.Errorf("revoke with the secret of a private_key_jwt client: %d, want 401", s)
			}
			if strings.Contains(env.Logs.String(), `"level":"ERROR"`) {
				t.Errorf("a refused assertion was logged as a server error:\n%s", env.Logs.String())
			}
		})
	}
}

// TestPublicClientSecretRefused: Auth0 gives public (none) clients a
// secret too, which they may not use as proof: sent in the body or in
// Basic, it is 401 at the revocation endpoint, while the client_id alone
// is accepted; a client_secret_basic client's secret in the body is 401.
func TestPublicClientSecretRefused(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			env := servertest.Start(t, backend)
			admin := env.ManagementToken(t)
			native := env.MustDo(t, "POST", "api/v2/clients", admin, map[string]any{"name": "app", "app_type": "native"})
			basicOnly := env.MustDo(t, "POST", "api/v2/clients", admin, map[string]any{"name": "web", "app_type": "regular_web", "token_endpoint_auth_method": "client_secret_basic"})
			if native["token_endpoint_auth_method"] != "none" || native["client_secret"] == nil {
				t.Fatalf("native client: %v", native)
			}
			revoke := func(v url.Values, basic [2]string) int {
				t.Helper()
				req, _ := http.NewRequest("POST", env.URL+"oauth/revoke", strings.NewReader(v.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if basic[0] != "" {
					req.SetBasicAuth(basic[0], basic[1])
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			id, secret := native["client_id"].(string), native["client_secret"].(string)
			if s := revoke(url.Values{"token": {"x.y"}, "client_id": {id}}, [2]string{}); s != http.StatusOK {
				t.Errorf("public client, client_id alone: %d", s)
			}
			if s := revoke(url.Values{"token": {"x.y"}, "client_id": {id}, "client_secret": {secret}}, [2]string{}); s != http.StatusUnauthorized {
				t.Errorf("public client, its secret in the body: %d, want 401", s)
			}
			if s := revoke(url.Values{"token": {"x.y"}}, [2]string{id, secret}); s != http.StatusUnauthorized {
				t.Errorf("public client, its secret in Basic: %d, want 401", s)
			}
			if s := revoke(url.Values{"token": {"x.y"}}, [2]string{id, ""}); s != http.StatusUnauthorized {
				t.Errorf("public client, Basic with an empty secret: %d, want 401", s)
			}
			bid, bsecret := basicOnly["client_id"].(string), basicOnly["client_secret"].(string)
			if s := revoke(url.Values{"token": {"x.y"}, "client_id": {bid}, "client_secret": {bsecret}}, [2]string{}); s != http.StatusUnauthorized {
				t.Errorf("client_secret_basic client, secret in the body: %d, want 401", s)
			}
			if s := revoke(url.Values{"token": {"x.y"}}, [2]string{bid, bsecret}); s != http.StatusOK {
				t.Errorf("client_secret_basic client, Basic: %d", s)
			}
		})
	}
}
