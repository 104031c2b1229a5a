package oauth_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestUserinfoAcceptsAPITokens: an API's JWT access token works at
// /userinfo when openid was granted (its audience then includes
// {issuer}userinfo), and not otherwise.
func TestUserinfoAcceptsAPITokens(t *testing.T) {
	e := newEnv(t, storetest.SQLite, envOptions{})
	api := "https://api.contoso.example/"
	if status, body := e.api(t, "POST", "api/v2/resource-servers", map[string]any{"identifier": api, "name": "Contoso API",
		"scopes": []map[string]any{{"value": "read:things", "description": "Read things"}}}); status != 201 {
		t.Fatalf("create API: %d %v", status, body)
	}
	login := func(scope string) string {
		t.Helper()
		r := e.token(t, url.Values{
			"grant_type": {"http://auth0.com/oauth/grant-type/password-realm"}, "client_id": {e.clientID},
			"realm": {"contoso-v2"}, "username": {"alice@contoso.com"}, "password": {"Alice-Passw0rd!"},
			"scope": {scope}, "audience": {api},
		})
		if r.status != 200 || strings.Count(r.str("access_token"), ".") != 2 {
			t.Fatalf("login with an audience: %d %s", r.status, r.raw)
		}
		return r.str("access_token")
	}
	if ui := userinfo(t, e, login("openid email read:things")); ui["sub"] != aliceID || ui["email"] != "alice@contoso.com" {
		t.Errorf("userinfo with an API token: %v", ui)
	}
	for name, tok := range map[string]string{
		"API token without openid": login("read:things"),
		"management token":         e.mgmt,
		"garbage":                  "a.b.c",
	} {
		req, _ := http.NewRequest("GET", e.url+"userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := e.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: userinfo answered %d, want 401", name, resp.StatusCode)
		}
	}
}
