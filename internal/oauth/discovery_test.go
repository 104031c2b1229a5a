package oauth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestDiscoveryAdvertisesWhatIsServed: the discovery document names every
// endpoint Gatehouse serves, /oauth/revoke included, with client
// authentication methods a public client can use there, and claims_supported
// lists every claim an id_token or /userinfo can carry.
func TestDiscoveryAdvertisesWhatIsServed(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{quietLogs: true})
			refreshClient(t, e, map[string]any{"rotation_type": "non-rotating"})
			ctx := context.Background()
			provider, err := oidc.NewProvider(ctx, e.url)
			if err != nil {
				t.Fatalf("go-oidc discovery: %v", err)
			}
			var doc struct {
				Revocation string   `json:"revocation_endpoint"`
				RevokeAuth []string `json:"revocation_endpoint_auth_methods_supported"`
				TokenAuth  []string `json:"token_endpoint_auth_methods_supported"`
				Claims     []string `json:"claims_supported"`
			}
			if err := provider.Claims(&doc); err != nil {
				t.Fatal(err)
			}
			if doc.Revocation != e.url+"oauth/revoke" {
				t.Fatalf("revocation_endpoint %q, want %q", doc.Revocation, e.url+"oauth/revoke")
			}
			if !slices.Equal(doc.RevokeAuth, doc.TokenAuth) || !slices.Contains(doc.RevokeAuth, "none") {
				t.Errorf("revocation_endpoint_auth_methods_supported %v, token endpoint %v", doc.RevokeAuth, doc.TokenAuth)
			}

			// The advertised endpoint revokes, with the advertised method
			// the harness's public client uses.
			r := e.login(t, "contoso-v2", "alice@contoso.com", "Alice-Passw0rd!", "openid offline_access")
			if r.status != http.StatusOK || r.str("refresh_token") == "" {
				t.Fatalf("login: %d %s", r.status, r.raw)
			}
			resp, err := e.hc.PostForm(doc.Revocation, url.Values{"client_id": {e.clientID}, "token": {r.str("refresh_token")}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("revoke at the advertised endpoint: %d", resp.StatusCode)
			}
			wantBadRefresh(t, "refresh after revocation", e.refresh(t, r.str("refresh_token"), ""))

			// A user whose root attributes survive login (on_first_login)
			// keeps a picture, so every profile claim is issued.
			const judy = "judy@contoso.onmicrosoft.com"
			first := e.login(t, "contoso-v1", judy, "Judy-Passw0rd!", "openid")
			if first.status != http.StatusOK {
				t.Fatalf("first login: %d %s", first.status, first.raw)
			}
			sub := jwtClaims(t, first.str("id_token"))["sub"].(string)
			if status, body := e.api(t, "PATCH", "api/v2/users/"+url.PathEscape(sub), map[string]any{"picture": "https://pics.contoso.example/judy.png"}); status != http.StatusOK {
				t.Fatalf("set picture: %d %v", status, body)
			}
			r = e.login(t, "contoso-v1", judy, "Judy-Passw0rd!", "openid profile email")
			if r.status != http.StatusOK {
				t.Fatalf("login: %d %s", r.status, r.raw)
			}
			issued := jwtClaims(t, r.str("id_token"))
			if issued["picture"] != "https://pics.contoso.example/judy.png" {
				t.Fatalf("id_token without the picture: %v", issued)
			}
			for k := range userinfo(t, e, r.str("access_token")) {
				issued[k] = true
			}
			for k := range issued {
				if !slices.Contains(doc.Claims, k) {
					t.Errorf("issues claim %q, which claims_supported %v does not list", k, doc.Claims)
				}
			}
		})
	}
}

// jwtClaims decodes a JWT's payload without verifying it; go-oidc verifies
// where that matters.
func jwtClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
