package oauth_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/server/servertest"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

type tokenCase struct {
	name        string
	contentType string
	body        string
	basic       [2]string // client id and secret for Authorization: Basic
	status      int
	errCode     string
	errDesc     string
}

func post(t *testing.T, env *servertest.Env, c tokenCase) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", env.URL+"oauth/token", strings.NewReader(c.body))
	if c.contentType != "" {
		req.Header.Set("Content-Type", c.contentType)
	}
	if c.basic[0] != "" {
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(c.basic[0])+":"+url.QueryEscape(c.basic[1]))))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("body is not JSON: %q", raw)
	}
	return resp.StatusCode, resp.Header, m
}

func TestClientCredentials(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			env := servertest.Start(t, backend)
			aud := url.QueryEscape(env.URL + "api/v2/")
			id, secret := url.QueryEscape(env.AdminID), url.QueryEscape(env.AdminSecret)
			form := "application/x-www-form-urlencoded"
			cases := []tokenCase{
				{name: "form post", contentType: form, body: "grant_type=client_credentials&client_id=" + id + "&client_secret=" + secret + "&audience=" + aud, status: 200},
				{name: "json", contentType: "application/json", body: `{"grant_type":"client_credentials","client_id":"` + env.AdminID + `","client_secret":"` + env.AdminSecret + `","audience":"` + env.URL + `api/v2/"}`, status: 200},
				{name: "basic", contentType: form, body: "grant_type=client_credentials&audience=" + aud, basic: [2]string{env.AdminID, env.AdminSecret}, status: 200},
				{name: "wrong secret", contentType: form, body: "grant_type=client_credentials&client_id=" + id + "&client_secret=nope&audience=" + aud, status: 401, errCode: "access_denied", errDesc: "Unauthorized"},
				{name: "wrong basic secret", contentType: form, body: "grant_type=client_credentials&audience=" + aud, basic: [2]string{env.AdminID, "nope"}, status: 401, errCode: "access_denied", errDesc: "Unauthorized"},
				{name: "missing secret", contentType: form, body: "grant_type=client_credentials&client_id=" + id + "&audience=" + aud, status: 401, errCode: "access_denied", errDesc: "Unauthorized"},
				{name: "unknown client", contentType: form, body: "grant_type=client_credentials&client_id=ghost&client_secret=x&audience=" + aud, status: 401, errCode: "access_denied", errDesc: "Unauthorized"},
				{name: "missing client_id", contentType: form, body: "grant_type=client_credentials&audience=" + aud, status: 400, errCode: "invalid_request", errDesc: "Missing required parameter: client_id"},
				{name: "missing grant_type", contentType: form, body: "client_id=" + id, status: 400, errCode: "invalid_request", errDesc: "Missing required parameter: grant_type"},
				{name: "unsupported grant", contentType: form, body: "grant_type=urn:example:magic&client_id=" + id, status: 400, errCode: "unsupported_grant_type", errDesc: "Grant type not supported"},
				{name: "missing audience", contentType: form, body: "grant_type=client_credentials&client_id=" + id + "&client_secret=" + secret, status: 400, errCode: "invalid_request", errDesc: "Missing required parameter: audience"},
				{name: "unknown audience", contentType: form, body: "grant_type=client_credentials&client_id=" + id + "&client_secret=" + secret + "&audience=https://elsewhere.example/", status: 403, errCode: "access_denied", errDesc: "Service not enabled within domain: https://elsewhere.example/"},
				{name: "repeated parameter", contentType: form, body: "grant_type=client_credentials&grant_type=password&client_id=" + id, status: 400, errCode: "invalid_request"},
				{name: "malformed json", contentType: "application/json", body: `{"grant_type":`, status: 400, errCode: "invalid_request", errDesc: "Malformed JSON body."},
				{name: "non-string json value", contentType: "application/json", body: `{"grant_type":"client_credentials","client_id":7}`, status: 400, errCode: "invalid_request", errDesc: "Parameter client_id must be a string."},
				{name: "wrong content type", contentType: "text/plain", body: "grant_type=client_credentials", status: 400, errCode: "invalid_request"},
				{name: "no content type", body: "grant_type=client_credentials", status: 400, errCode: "invalid_request"},
				{name: "oversized body", contentType: form, body: "grant_type=client_credentials&pad=" + strings.Repeat("a", 70<<10), status: 413, errCode: "invalid_request"},
				{name: "malformed form", contentType: form, body: "grant_type=%zz", status: 400, errCode: "invalid_request", errDesc: "Malformed form body."},
				{name: "client_id mismatch", contentType: form, body: "grant_type=client_credentials&client_id=other&audience=" + aud, basic: [2]string{env.AdminID, env.AdminSecret}, status: 400, errCode: "invalid_request"},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					status, h, body := post(t, env, c)
					if status != c.status {
						t.Fatalf("status %d, want %d; body %v", status, c.status, body)
					}
					if h.Get("Cache-Control") != "no-store" {
						t.Errorf("Cache-Control %q", h.Get("Cache-Control"))
					}
					if c.errCode == "" {
						if body["token_type"] != "Bearer" || body["access_token"] == "" || body["expires_in"] != float64(86400) {
							t.Errorf("success body %v", body)
						}
						return
					}
					if body["error"] != c.errCode || (c.errDesc != "" && body["error_description"] != c.errDesc) {
						t.Errorf("error body %v, want %s %q", body, c.errCode, c.errDesc)
					}
					if len(body) != 2 {
						t.Errorf("error body has extra fields: %v", body)
					}
				})
			}
		})
	}
}

// TestClientCredentialsScopes: requested scopes narrow what is granted;
// unknown ones are dropped; the token carries the Auth0 claims.
func TestClientCredentialsScopes(t *testing.T) {
	env := servertest.Start(t, storetest.SQLite)
	status, _, body := post(t, env, tokenCase{
		contentType: "application/x-www-form-urlencoded",
		body: url.Values{"grant_type": {"client_credentials"}, "client_id": {env.AdminID}, "client_secret": {env.AdminSecret},
			"audience": {env.URL + "api/v2/"}, "scope": {"read:clients read:clients bogus:scope read:tenant_settings"}}.Encode(),
	})
	if status != 200 || body["scope"] != "read:clients read:tenant_settings" {
		t.Fatalf("%d %v", status, body)
	}
	parts := strings.Split(body["access_token"].(string), ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"iss": env.URL, "sub": env.AdminID + "@clients", "aud": env.URL + "api/v2/", "azp": env.AdminID, "gty": "client-credentials", "scope": "read:clients read:tenant_settings"}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	for _, k := range []string{"iat", "exp", "jti"} {
		if claims[k] == nil {
			t.Errorf("claim %s missing", k)
		}
	}
	if claims["exp"].(float64)-claims["iat"].(float64) != 86400 {
		t.Errorf("lifetime %v", claims["exp"].(float64)-claims["iat"].(float64))
	}

	if status, _, body := post(t, env, tokenCase{contentType: "application/x-www-form-urlencoded",
		body: url.Values{"grant_type": {"client_credentials"}, "client_id": {env.AdminID}, "client_secret": {env.AdminSecret},
			"audience": {"https://elsewhere.example/"}}.Encode()}); status != 403 {
		t.Fatalf("unknown audience: %d %v", status, body)
	}
	token := env.ManagementToken(t, "read:logs")
	_, _, raw := env.Do(t, "GET", "api/v2/logs?per_page=100", token, nil)
	if strings.Contains(string(raw), env.AdminSecret) {
		t.Error("the tenant log holds the client secret")
	}
	var events []map[string]any
	if err := json.Unmarshal(raw, &events); err != nil {
		t.Fatalf("logs: %s", raw)
	}
	var granted, refused map[string]any
	for _, ev := range events {
		switch {
		case ev["type"] == "seccft" && ev["scope"] == "read:clients read:tenant_settings":
			granted = ev
		case ev["type"] == "feccft":
			refused = ev
		}
	}
	if granted == nil || granted["client_id"] != env.AdminID || granted["audience"] != env.URL+"api/v2/" ||
		granted["description"] != "Successful exchange of Access Token for a Client Credentials Grant" {
		t.Errorf("seccft event %v", granted)
	}
	details, _ := refused["details"].(map[string]any)
	if refused == nil || refused["audience"] != "https://elsewhere.example/" || details["error"] != "access_denied" ||
		details["error_description"] != "Service not enabled within domain: https://elsewhere.example/" {
		t.Errorf("feccft event %v", refused)
	}
}

func TestDiscovery(t *testing.T) {
	env := servertest.Start(t, storetest.SQLite)
	status, h, raw := env.Do(t, "GET", ".well-known/openid-configuration", "", nil)
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Fatalf("%d %s", status, raw)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["issuer"] != env.URL || doc["token_endpoint"] != env.URL+"oauth/token" || doc["jwks_uri"] != env.URL+".well-known/jwks.json" {
		t.Errorf("discovery %v", doc)
	}
	// Nothing that is not served may be advertised.
	for _, k := range []string{"authorization_endpoint", "device_authorization_endpoint", "registration_endpoint", "mfa_challenge_endpoint"} {
		if _, ok := doc[k]; ok {
			t.Errorf("advertises %s, which Gatehouse does not serve", k)
		}
	}
	status, _, raw = env.Do(t, "GET", ".well-known/jwks.json", "", nil)
	var jwks struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(raw, &jwks); err != nil || status != 200 || len(jwks.Keys) == 0 {
		t.Fatalf("jwks %d %s", status, raw)
	}
	for _, f := range []string{"kty", "use", "alg", "kid", "n", "e", "x5c", "x5t"} {
		if jwks.Keys[0][f] == nil {
			t.Errorf("JWK lacks %s", f)
		}
	}
	if _, ok := jwks.Keys[0]["d"]; ok {
		t.Fatal("JWKS publishes a private key")
	}
}
