package oauth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/server/servertest"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/tokens"
)

func publicPEM(t *testing.T, k *rsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// assertion signs claims as a private_key_jwt client would.
func assertion(t *testing.T, k *rsa.PrivateKey, alg jose.SignatureAlgorithm, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: k}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestPrivateKeyJWT: a machine-to-machine client registers a public key,
// switches to private_key_jwt, and from then on authenticates with signed
// assertions only, each good once; every malformed, foreign, stale or
// replayed assertion is 401 and changes nothing.
func TestPrivateKeyJWT(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			env := servertest.Start(t, backend)
			admin := env.ManagementToken(t)
			api := func(method, path string, body any) (int, map[string]any, string) {
				t.Helper()
				status, _, raw := env.Do(t, method, path, admin, body)
				var m map[string]any
				_ = json.Unmarshal(raw, &m)
				return status, m, string(raw)
			}
			const aud = "https://jobs.example/api"
			if status, _, raw := api("POST", "api/v2/resource-servers", map[string]any{"identifier": aud}); status != http.StatusCreated {
				t.Fatalf("resource server: %d %s", status, raw)
			}
			_, c, _ := api("POST", "api/v2/clients", map[string]any{"name": "batch", "app_type": "non_interactive", "grant_types": []string{"client_credentials"}})
			id, secret := c["client_id"].(string), c["client_secret"].(string)
			if status, _, raw := api("POST", "api/v2/client-grants", map[string]any{"client_id": id, "audience": aud, "scope": []string{}}); status != http.StatusCreated {
				t.Fatalf("grant: %d %s", status, raw)
			}

			key, _ := rsa.GenerateKey(rand.Reader, 2048)
			status, cred, raw := api("POST", "api/v2/clients/"+id+"/credentials", map[string]any{"credential_type": "public_key", "name": "ci", "pem": publicPEM(t, key)})
			if status != http.StatusCreated || cred["kid"] != tokens.Thumbprint(&key.PublicKey) || cred["alg"] != "RS256" || cred["pem"] != nil || !strings.HasPrefix(cred["id"].(string), "cred_") {
				t.Fatalf("create credential: %d %s", status, raw)
			}
			credID, kid := cred["id"].(string), cred["kid"].(string)

			grant := func(extra url.Values) (int, map[string]any) {
				t.Helper()
				form := url.Values{"grant_type": {"client_credentials"}, "audience": {aud}}
				for k, v := range extra {
					form[k] = v
				}
				status, _, body := post(t, env, tokenCase{contentType: "application/x-www-form-urlencoded", body: form.Encode()})
				return status, body
			}
			claims := func(mod func(map[string]any)) map[string]any {
				now := time.Now()
				m := map[string]any{"iss": id, "sub": id, "aud": env.URL, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": rand.Text()}
				if mod != nil {
					mod(m)
				}
				return m
			}
			withAssertion := func(a string) url.Values {
				return url.Values{"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
			}
			wantDenied := func(what string, status int, body map[string]any) {
				t.Helper()
				if status != http.StatusUnauthorized || body["error"] != "access_denied" {
					t.Errorf("%s: %d %v, want 401 access_denied", what, status, body)
				}
			}

			// Not yet enabled: the key is stored, the secret still rules.
			st, body := grant(withAssertion(assertion(t, key, jose.RS256, kid, claims(nil))))
			wantDenied("assertion before private_key_jwt is enabled", st, body)
			if st, body := grant(url.Values{"client_id": {id}, "client_secret": {secret}}); st != http.StatusOK {
				t.Fatalf("secret before the switch: %d %v", st, body)
			}

			status, c, raw = api("PATCH", "api/v2/clients/"+id, map[string]any{"client_authentication_methods": map[string]any{"private_key_jwt": map[string]any{"credentials": []map[string]string{{"id": credID}}}}})
			if status != http.StatusOK || c["token_endpoint_auth_method"] != nil || !strings.Contains(raw, `"client_authentication_methods":{"private_key_jwt":{"credentials":[{"id":"`+credID+`"}]}}`) {
				t.Fatalf("enable private_key_jwt: %d %s", status, raw)
			}
			st, body = grant(url.Values{"client_id": {id}, "client_secret": {secret}})
			wantDenied("secret after the switch", st, body)

			good := assertion(t, key, jose.RS256, kid, claims(nil))
			if st, body := grant(withAssertion(good)); st != http.StatusOK || body["access_token"] == nil {
				t.Fatalf("assertion: %d %v", st, body)
			}
			st, body = grant(withAssertion(good))
			wantDenied("replayed assertion", st, body)
			tokenEndpoint := assertion(t, key, jose.RS256, "", claims(func(m map[string]any) { m["aud"] = []string{env.URL + "oauth/token"} }))
			if st, body := grant(withAssertion(tokenEndpoint)); st != http.StatusOK {
				t.Errorf("assertion for the token endpoint, without kid: %d %v", st, body)
			}

			stranger, _ := rsa.GenerateKey(rand.Reader, 2048)
			for name, a := range map[string]string{
				"another key":       assertion(t, stranger, jose.RS256, "", claims(nil)),
				"another algorithm": assertion(t, key, jose.PS256, "", claims(nil)),
				"another kid":       assertion(t, key, jose.RS256, "other", claims(nil)),
				"another audience":  assertion(t, key, jose.RS256, kid, claims(func(m map[string]any) { m["aud"] = "https://elsewhere.example/" })),
				"expired": assertion(t, key, jose.RS256, kid, claims(func(m map[string]any) {
					m["iat"], m["exp"] = time.Now().Add(-3*time.Minute).Unix(), time.Now().Add(-2*time.Minute).Unix()
				})),
				"valid for ten minutes": assertion(t, key, jose.RS256, kid, claims(func(m map[string]any) { m["exp"] = time.Now().Add(10 * time.Minute).Unix() })),
				"without exp":           assertion(t, key, jose.RS256, kid, claims(func(m map[string]any) { delete(m, "exp") })),
				"without jti":           assertion(t, key, jose.RS256, kid, claims(func(m map[string]any) { delete(m, "jti") })),
				"sub is not iss":        assertion(t, key, jose.RS256, kid, claims(func(m map[string]any) { m["sub"] = "someone" })),
				"not a JWT":             "not.a.jwt",
			} {
				st, body := grant(withAssertion(a))
				wantDenied(name, st, body)
			}
			if st, body := grant(url.Values{"client_assertion_type": {"urn:example:saml"}, "client_assertion": {good}}); st != http.StatusBadRequest || body["error"] != "invalid_request" {
				t.Errorf("wrong client_assertion_type: %d %v", st, body)
			}
			both := withAssertion(assertion(t, key, jose.RS256, kid, claims(nil)))
			both.Set("client_secret", secret)
			st, body = grant(both)
			wantDenied("assertion with a secret", st, body)

			// A credential past its expiry no longer verifies.
			short, _ := rsa.GenerateKey(rand.Reader, 2048)
			_, sc, _ := api("POST", "api/v2/clients/"+id+"/credentials", map[string]any{"credential_type": "public_key", "pem": publicPEM(t, short),
				"expires_at": time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)})
			if status, _, raw := api("PATCH", "api/v2/clients/"+id, map[string]any{"client_authentication_methods": map[string]any{"private_key_jwt": map[string]any{"credentials": []map[string]string{{"id": credID}, {"id": sc["id"].(string)}}}}}); status != http.StatusOK {
				t.Fatalf("enable the short-lived credential: %d %s", status, raw)
			}
			if st, body := grant(withAssertion(assertion(t, short, jose.RS256, "", claims(nil)))); st != http.StatusOK {
				t.Fatalf("short-lived credential in time: %d %v", st, body)
			}
			time.Sleep(1600 * time.Millisecond)
			st, body = grant(withAssertion(assertion(t, short, jose.RS256, "", claims(nil))))
			wantDenied("expired credential", st, body)

			// Back to the secret, which needs both properties changed.
			if status, _, raw := api("PATCH", "api/v2/clients/"+id, map[string]any{"token_endpoint_auth_method": "client_secret_post"}); status != http.StatusBadRequest {
				t.Errorf("token_endpoint_auth_method alone while private_key_jwt is on: %d %s", status, raw)
			}
			if status, _, raw := api("DELETE", "api/v2/clients/"+id+"/credentials/"+credID, nil); status != http.StatusBadRequest || !strings.Contains(raw, "credential_in_use") {
				t.Errorf("delete an enabled credential: %d %s", status, raw)
			}
			if status, c, raw := api("PATCH", "api/v2/clients/"+id, map[string]any{"client_authentication_methods": nil, "token_endpoint_auth_method": "client_secret_post"}); status != http.StatusOK || c["client_authentication_methods"] != nil {
				t.Fatalf("back to the secret: %d %s", status, raw)
			}
			if st, body := grant(url.Values{"client_id": {id}, "client_secret": {secret}}); st != http.StatusOK {
				t.Errorf("secret after switching back: %d %v", st, body)
			}
			if status, _, raw := api("DELETE", "api/v2/clients/"+id+"/credentials/"+credID, nil); status != http.StatusNoContent {
				t.Errorf("delete: %d %s", status, raw)
			}

			status, _, disc := env.Do(t, "GET", ".well-known/openid-configuration", "", nil)
			if status != http.StatusOK || !strings.Contains(string(disc), `"private_key_jwt"`) || !strings.Contains(string(disc), `"token_endpoint_auth_signing_alg_values_supported":["RS256","RS384","PS256"]`) {
				t.Errorf("discovery: %s", disc)
			}
			if strings.Contains(env.Logs.String(), good) {
				t.Error("the server log holds a client assertion")
			}
		})
	}
}

// TestClientCredentialValidation: what the credentials API refuses, and
// that a refused private key is never echoed.
func TestClientCredentialValidation(t *testing.T) {
	env := servertest.Start(t, storetest.SQLite)
	admin := env.ManagementToken(t)
	_, _, raw := env.Do(t, "POST", "api/v2/clients", admin, map[string]any{"name": "batch", "app_type": "non_interactive"})
	var c map[string]any
	_ = json.Unmarshal(raw, &c)
	id := c["client_id"].(string)
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	for name, tc := range map[string]struct {
		body map[string]any
		want string
	}{
		"private key":         {map[string]any{"credential_type": "public_key", "pem": privPEM}, "expected a PUBLIC KEY"},
		"weak key":            {map[string]any{"credential_type": "public_key", "pem": publicPEM(t, weak)}, "at least 2048"},
		"unknown alg":         {map[string]any{"credential_type": "public_key", "pem": publicPEM(t, key), "alg": "HS256"}, `No enum match for: \"HS256\"`},
		"mTLS type":           {map[string]any{"credential_type": "x509_cert", "pem": publicPEM(t, key)}, "on property credential_type"},
		"no pem":              {map[string]any{"credential_type": "public_key"}, "Missing required property: pem"},
		"past expiry":         {map[string]any{"credential_type": "public_key", "pem": publicPEM(t, key), "expires_at": "2020-01-01T00:00:00Z"}, "in the future"},
		"expiry from no cert": {map[string]any{"credential_type": "public_key", "pem": publicPEM(t, key), "parse_expiry_from_cert": true}, "needs an X.509 certificate"},
		"unknown property":    {map[string]any{"credential_type": "public_key", "pem": publicPEM(t, key), "value": "x"}, "Additional properties not allowed"},
	} {
		status, _, raw := env.Do(t, "POST", "api/v2/clients/"+id+"/credentials", admin, tc.body)
		if status != http.StatusBadRequest || !strings.Contains(string(raw), tc.want) {
			t.Errorf("%s: %d %s", name, status, raw)
		}
		if strings.Contains(string(raw), "PRIVATE KEY") || strings.Contains(string(raw), privPEM[40:80]) {
			t.Errorf("%s: the answer echoes the private key", name)
		}
	}
	if status, _, raw := env.Do(t, "GET", "api/v2/clients/"+id+"/credentials", admin, nil); status != http.StatusOK || strings.TrimSpace(string(raw)) != "[]" {
		t.Errorf("credentials after refusals: %d %s", status, raw)
	}
	for name, body := range map[string]map[string]any{
		"unknown credential": {"client_authentication_methods": map[string]any{"private_key_jwt": map[string]any{"credentials": []map[string]string{{"id": "cred_nope"}}}}},
		"another method":     {"client_authentication_methods": map[string]any{"tls_client_auth": map[string]any{}}},
	} {
		if status, _, raw := env.Do(t, "PATCH", "api/v2/clients/"+id, admin, body); status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, status, raw)
		}
	}
	narrow := env.ManagementToken(t, "update:clients")
	status, _, raw := env.Do(t, "PATCH", "api/v2/clients/"+id, narrow, map[string]any{"client_authentication_methods": nil, "token_endpoint_auth_method": "client_secret_post"})
	if status != http.StatusForbidden || !strings.Contains(string(raw), "update:client_credentials") {
		t.Errorf("without update:client_credentials: %d %s", status, raw)
	}
	if status, _, raw := env.Do(t, "POST", "api/v2/clients", admin, map[string]any{"name": "x", "client_authentication_methods": map[string]any{}}); status != http.StatusBadRequest {
		t.Errorf("malformed methods on create: %d %s", status, raw)
	}

	// Credentials defined inline when the client is created, as at Auth0.
	inline := map[string]any{"name": "job", "app_type": "non_interactive", "client_authentication_methods": map[string]any{
		"private_key_jwt": map[string]any{"credentials": []map[string]any{{"credential_type": "public_key", "name": "k", "pem": publicPEM(t, key)}}}}}
	if status, _, raw := env.Do(t, "POST", "api/v2/clients", env.ManagementToken(t, "create:clients"), inline); status != http.StatusForbidden || !strings.Contains(string(raw), "create:client_credentials") {
		t.Errorf("inline without create:client_credentials: %d %s", status, raw)
	}
	bad := map[string]any{"name": "job", "client_authentication_methods": map[string]any{
		"private_key_jwt": map[string]any{"credentials": []map[string]any{{"credential_type": "public_key", "pem": privPEM}}}}}
	if status, _, raw := env.Do(t, "POST", "api/v2/clients", admin, bad); status != http.StatusBadRequest || !strings.Contains(string(raw), "credentials[0].pem") {
		t.Errorf("inline private key: %d %s", status, raw)
	}
	status, _, raw = env.Do(t, "POST", "api/v2/clients", admin, inline)
	var created map[string]any
	_ = json.Unmarshal(raw, &created)
	methods, _ := created["client_authentication_methods"].(map[string]any)
	pk, _ := methods["private_key_jwt"].(map[string]any)
	ids, _ := pk["credentials"].([]any)
	if status != http.StatusCreated || len(ids) != 1 || created["token_endpoint_auth_method"] != nil {
		t.Fatalf("inline on create: %d %s", status, raw)
	}
	_, _, raw = env.Do(t, "GET", "api/v2/clients/"+created["client_id"].(string)+"/credentials", admin, nil)
	if !strings.Contains(string(raw), ids[0].(map[string]any)["id"].(string)) || !strings.Contains(string(raw), tokens.Thumbprint(&key.PublicKey)) {
		t.Errorf("inline credential not stored: %s", raw)
	}
}

// TestAssertionClaimsAreText: an assertion whose iss or jti holds a NUL
// names no client and cannot be recorded as used. It is refused like any
// other bad assertion, on both backends, rather than reaching PostgreSQL,
// which cannot compare such text and failed the request with a 500 (for
// iss, before any signature was checked).
func TestAssertionClaimsAreText(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			env := servertest.Start(t, backend)
			admin := env.ManagementToken(t)
			api := func(method, path string, body any) map[string]any {
				t.Helper()
				return env.MustDo(t, method, path, admin, body)
			}
			c := api("POST", "api/v2/clients", map[string]any{"name": "batch", "app_type": "non_interactive", "grant_types": []string{"client_credentials"}})
			id := c["client_id"].(string)
			api("POST", "api/v2/client-grants", map[string]any{"client_id": id, "audience": env.URL + "api/v2/", "scope": []string{"read:clients"}})
			key, _ := rsa.GenerateKey(rand.Reader, 2048)
			cred := api("POST", "api/v2/clients/"+id+"/credentials", map[string]any{"credential_type": "public_key", "pem": publicPEM(t, key)})
			api("PATCH", "api/v2/clients/"+id, map[string]any{"client_authentication_methods": map[string]any{"private_key_jwt": map[string]any{"credentials": []map[string]string{{"id": cred["id"].(string)}}}}})
			grant := func(claims map[string]any) (int, map[string]any) {
				t.Helper()
				form := url.Values{"grant_type": {"client_credentials"}, "audience": {env.URL + "api/v2/"},
					"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion(t, key, jose.RS256, "", claims)}}
				status, _, body := post(t, env, tokenCase{contentType: "application/x-www-form-urlencoded", body: form.Encode()})
				return status, body
			}
			claims := func(iss, jti string) map[string]any {
				return map[string]any{"iss": iss, "sub": iss, "aud": env.URL, "exp": time.Now().Add(time.Minute).Unix(), "jti": jti}
			}
			for name, cl := range map[string]map[string]any{
				"NUL in iss": claims("a\x00b", rand.Text()),
				"NUL in jti": claims(id, "j\x00"+rand.Text()),
			} {
				if status, body := grant(cl); status != http.StatusUnauthorized || body["error"] != "access_denied" {
					t.Errorf("%s: %d %v", name, status, body)
				}
			}
			if status, body := grant(claims(id, rand.Text())); status != http.StatusOK {
				t.Errorf("a good assertion: %d %v", status, body)
			}
			if strings.Contains(env.Logs.String(), `"level":"ERROR"`) {
				t.Error("a malformed assertion was logged as a server error")
			}
		})
	}
}
