package oauth_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestUserTokensAtManagementAPI: every token a user's login yields is
// refused by the Management API: the ID token, the opaque /userinfo
// access token, and an API's access token, even one whose scope claim
// holds a Management API scope name the API defines for itself. A
// password grant for the Management API's audience is refused at the
// token endpoint, and the user behind it reaches nothing there. (Auth0
// issues user tokens with current_user scopes only; Gatehouse serves no
// such route.)
func TestUserTokensAtManagementAPI(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{})
			const api = "https://directory.example/"
			if status, body := e.api(t, "POST", "api/v2/resource-servers", map[string]any{
				"identifier": api, "scopes": []map[string]string{{"value": "read:users"}, {"value": "update:users"}},
			}); status != http.StatusCreated {
				t.Fatalf("create API: %d %v", status, body)
			}
			login := func(audience string) tokenResult {
				t.Helper()
				return e.token(t, url.Values{
					"grant_type": {"http://auth0.com/oauth/grant-type/password-realm"},
					"client_id":  {e.clientID}, "realm": {"contoso-v2"},
					"username": {"alice@contoso.com"}, "password": {"Alice-Passw0rd!"},
					"scope": {"openid profile read:users update:users"}, "audience": {audience},
				})
			}
			plain := e.login(t, "contoso-v2", "alice@contoso.com", "Alice-Passw0rd!", "openid profile")
			toAPI := login(api)
			if plain.status != 200 || toAPI.status != 200 {
				t.Fatalf("logins: %d %s; %d %s", plain.status, plain.raw, toAPI.status, toAPI.raw)
			}
			// The API's token carries Management API scope names, as
			// the API's own.
			_, payload, _ := strings.Cut(toAPI.str("access_token"), ".")
			payload, _, _ = strings.Cut(payload, ".")
			var claims struct{ Scope string }
			if raw, err := base64.RawURLEncoding.DecodeString(payload); err != nil || json.Unmarshal(raw, &claims) != nil || !strings.Contains(claims.Scope, "read:users") {
				t.Fatalf("the API's token: %v %q", err, claims.Scope)
			}
			mgmt := login(e.url + "api/v2/")
			if mgmt.status != http.StatusForbidden || mgmt.str("error") != "access_denied" || mgmt.str("access_token") != "" {
				t.Errorf("password grant for the Management API: %d %s", mgmt.status, mgmt.raw)
			}
			for name, tok := range map[string]string{
				"ID token":                 plain.str("id_token"),
				"opaque access token":      plain.str("access_token"),
				"the API's access token":   toAPI.str("access_token"),
				"the API login's ID token": toAPI.str("id_token"),
			} {
				if tok == "" {
					t.Fatalf("%s: none issued", name)
				}
				for _, path := range []string{"api/v2/users", "api/v2/users/" + url.PathEscape(aliceID)} {
					req, _ := http.NewRequest("GET", e.url+path, nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					resp, err := e.hc.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					raw, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					var body map[string]any
					_ = json.Unmarshal(raw, &body)
					if resp.StatusCode != http.StatusUnauthorized || body["message"] != "Invalid token" {
						t.Errorf("%s at %s: %d %s", name, path, resp.StatusCode, raw)
					}
				}
			}
		})
	}
}
