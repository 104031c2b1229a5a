package management_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/server/servertest"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

func ccToken(t *testing.T, e *servertest.Env, id, secret, audience, scope string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	if audience != "" {
		form.Set("audience", audience)
	}
	if scope != "" {
		form.Set("scope", scope)
	}
	resp, err := http.PostForm(e.URL+"oauth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func decode(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	return m
}

func TestClientCredentialsForCustomAPI(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := servertest.Start(t, backend)
			tok := e.ManagementToken(t)
			const aud = "https://orders.example/api"
			status, _, raw := e.Do(t, "POST", "api/v2/resource-servers", tok, map[string]any{
				"identifier": aud, "name": "Orders", "token_lifetime": 600, "allow_offline_access": true,
				"scopes": []map[string]string{{"value": "read:orders", "description": "Read"}, {"value": "write:orders"}, {"value": "delete:orders"}},
			})
			rs := decode(t, raw)
			if status != http.StatusCreated || rs["identifier"] != aud || rs["signing_alg"] != "RS256" || rs["token_lifetime"] != 600.0 {
				t.Fatalf("create resource server: %d %s", status, raw)
			}
			for _, tc := range []struct {
				name string
				body any
				want int
			}{
				{"duplicate identifier", map[string]any{"identifier": aud}, http.StatusConflict},
				{"HS256", map[string]any{"identifier": "urn:x", "signing_alg": "HS256"}, http.StatusBadRequest},
				{"lifetime too long", map[string]any{"identifier": "urn:x", "token_lifetime": 2592001}, http.StatusBadRequest},
				{"unknown property", map[string]any{"identifier": "urn:x", "bogus": 1}, http.StatusBadRequest},
				{"no identifier", map[string]any{"name": "x"}, http.StatusBadRequest},
			} {
				if status, _, raw := e.Do(t, "POST", "api/v2/resource-servers", tok, tc.body); status != tc.want {
					t.Errorf("%s: %d %s, want %d", tc.name, status, raw, tc.want)
				}
			}

			status, _, raw = e.Do(t, "POST", "api/v2/clients", tok, map[string]any{"name": "worker", "app_type": "non_interactive", "grant_types": []string{"client_credentials"}})
			if status != http.StatusCreated {
				t.Fatalf("create client: %d %s", status, raw)
			}
			c := decode(t, raw)
			id, secret := c["client_id"].(string), c["client_secret"].(string)

			// No grant yet; unknown audience.
			if status, body := ccToken(t, e, id, secret, aud, ""); status != http.StatusForbidden || body["error"] != "access_denied" ||
				!strings.Contains(body["error_description"].(string), "client-grant") {
				t.Errorf("without grant: %d %v", status, body)
			}
			if status, body := ccToken(t, e, id, secret, "https://nope.example/", ""); status != http.StatusForbidden ||
				body["error_description"] != "Service not enabled within domain: https://nope.example/" {
				t.Errorf("unknown audience: %d %v", status, body)
			}

			if status, _, raw := e.Do(t, "POST", "api/v2/client-grants", tok, map[string]any{"client_id": id, "audience": aud, "scope": []string{"nope"}}); status != http.StatusBadRequest {
				t.Errorf("grant with undefined scope: %d %s", status, raw)
			}
			status, _, raw = e.Do(t, "POST", "api/v2/client-grants", tok, map[string]any{"client_id": id, "audience": aud, "scope": []string{"read:orders", "write:orders"}})
			g := decode(t, raw)
			if status != http.StatusCreated || !strings.HasPrefix(g["id"].(string), "cgr_") {
				t.Fatalf("create grant: %d %s", status, raw)
			}
			if status, _, _ := e.Do(t, "POST", "api/v2/client-grants", tok, map[string]any{"client_id": id, "audience": aud, "scope": []string{}}); status != http.StatusConflict {
				t.Errorf("duplicate grant: %d", status)
			}

			for _, tc := range []struct{ scope, want string }{
				{"", "read:orders write:orders"},
				{"read:orders delete:orders", "read:orders"},
				{"delete:orders", ""},
			} {
				status, body := ccToken(t, e, id, secret, aud, tc.scope)
				if status != http.StatusOK || body["expires_in"] != 600.0 || (body["scope"] != tc.want && !(tc.want == "" && body["scope"] == nil)) {
					t.Errorf("scope %q: %d %v, want scope %q", tc.scope, status, body, tc.want)
				}
			}

			// default_audience applies when audience is omitted.
			if status, _, raw := e.Do(t, "PATCH", "api/v2/tenants/settings", tok, map[string]any{"default_audience": aud}); status != http.StatusOK {
				t.Fatalf("settings: %d %s", status, raw)
			}
			if status, body := ccToken(t, e, id, secret, "", ""); status != http.StatusOK || body["scope"] != "read:orders write:orders" {
				t.Errorf("default_audience: %d %v", status, body)
			}

			status, _, raw = e.Do(t, "GET", "api/v2/client-grants?client_id="+id, tok, nil)
			if status != http.StatusOK || !strings.Contains(string(raw), g["id"].(string)) {
				t.Errorf("list grants: %d %s", status, raw)
			}
			// Deleting the API deletes its grants.
			if status, _, _ := e.Do(t, "DELETE", "api/v2/resource-servers/"+rs["id"].(string), tok, nil); status != http.StatusNoContent {
				t.Errorf("delete resource server: %d", status)
			}
			if status, _, _ := e.Do(t, "GET", "api/v2/client-grants/"+g["id"].(string), tok, nil); status != http.StatusNotFound {
				t.Errorf("grant after API deletion: %d", status)
			}
		})
	}
}

func jwksKids(t *testing.T, e *servertest.Env) []string {
	t.Helper()
	_, _, raw := e.Do(t, "GET", ".well-known/jwks.json", "", nil)
	var set struct {
		Keys []struct{ Kid string } `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

func kidOf(t *testing.T, jwt string) string {
	t.Helper()
	h, _, _ := strings.Cut(jwt, ".")
	b, err := base64RawURL(h)
	if err != nil {
		t.Fatal(err)
	}
	var hdr struct{ Kid string }
	_ = json.Unmarshal(b, &hdr)
	return hdr.Kid
}

func TestSigningKeys(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := servertest.Start(t, backend)
			old := e.ManagementToken(t)
			status, _, raw := e.Do(t, "GET", "api/v2/keys/signing", old, nil)
			var keys []map[string]any
			_ = json.Unmarshal(raw, &keys)
			if status != http.StatusOK || len(keys) != 2 {
				t.Fatalf("list keys: %d %s", status, raw)
			}
			var cur, next map[string]any
			for _, k := range keys {
				if k["current"] == true {
					cur = k
				}
				if k["next"] == true {
					next = k
				}
				for _, f := range []string{"kid", "cert", "pkcs7", "fingerprint", "thumbprint"} {
					if s, _ := k[f].(string); s == "" {
						t.Errorf("key without %s: %v", f, k)
					}
				}
				if !strings.HasPrefix(k["cert"].(string), "-----BEGIN CERTIFICATE-----\r\n") || !strings.HasPrefix(k["pkcs7"].(string), "-----BEGIN PKCS7-----") {
					t.Errorf("cert/pkcs7 format: %v", k)
				}
			}
			if cur == nil || next == nil || cur["current_since"] == nil || kidOf(t, old) != cur["kid"] {
				t.Fatalf("want a current and a next key: %s", raw)
			}
			// The next key is published before it signs anything.
			if kids := jwksKids(t, e); !contains(kids, next["kid"].(string)) {
				t.Errorf("next key not in JWKS: %v", kids)
			}
			for _, tc := range []struct {
				kid  string
				want int
			}{{cur["kid"].(string), http.StatusBadRequest}, {next["kid"].(string), http.StatusBadRequest}, {"nope", http.StatusNotFound}} {
				if status, _, raw := e.Do(t, "PUT", "api/v2/keys/signing/"+tc.kid+"/revoke", old, nil); status != tc.want {
					t.Errorf("revoke %s: %d %s, want %d", tc.kid, status, raw, tc.want)
				}
			}
			if status, _, _ := e.Do(t, "GET", "api/v2/keys/signing/nope", old, nil); status != http.StatusNotFound {
				t.Errorf("get unknown kid: %d", status)
			}

			// Rotate while a token is in flight: it keeps working, new
			// tokens carry the new kid.
			status, _, raw = e.Do(t, "POST", "api/v2/keys/signing/rotate", old, nil)
			rot := decode(t, raw)
			if status != http.StatusCreated || rot["kid"] == nil || rot["kid"] == next["kid"] {
				t.Fatalf("rotate: %d %s", status, raw)
			}
			if status, _, _ := e.Do(t, "GET", "api/v2/keys/signing", old, nil); status != http.StatusOK {
				t.Errorf("old token after rotation: %d", status)
			}
			fresh := e.ManagementToken(t)
			if kidOf(t, fresh) != next["kid"] {
				t.Errorf("new token kid %s, want %s", kidOf(t, fresh), next["kid"])
			}
			kids := jwksKids(t, e)
			for _, k := range []string{cur["kid"].(string), next["kid"].(string), rot["kid"].(string)} {
				if !contains(kids, k) {
					t.Errorf("JWKS after rotation lacks %s: %v", k, kids)
				}
			}
			// Revoking the previous key removes it at once: from the JWKS,
			// and tokens it signed stop working.
			if status, _, raw := e.Do(t, "PUT", "api/v2/keys/signing/"+cur["kid"].(string)+"/revoke", fresh, nil); status != http.StatusOK {
				t.Fatalf("revoke previous: %d %s", status, raw)
			}
			if contains(jwksKids(t, e), cur["kid"].(string)) {
				t.Error("revoked key still in JWKS")
			}
			if status, _, _ := e.Do(t, "GET", "api/v2/keys/signing", old, nil); status != http.StatusUnauthorized {
				t.Errorf("token of revoked key: %d", status)
			}
			_, _, raw = e.Do(t, "GET", "api/v2/keys/signing/"+cur["kid"].(string), fresh, nil)
			if k := decode(t, raw); k["revoked"] != true || k["revoked_at"] == nil || k["current_until"] == nil {
				t.Errorf("revoked key: %s", raw)
			}
		})
	}
}

func contains(s []string, v string) bool { return slices.Contains(s, v) }

func base64RawURL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
