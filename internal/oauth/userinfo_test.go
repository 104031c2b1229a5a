package oauth_test

import (
	"database/sql"
	"encoding/json"
	"io"
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

// TestUserinfoErrors: every error answer of /userinfo carries
// Cache-Control: no-store; a server error and a wrong method have the
// Authentication API's JSON error body, a refused token Auth0's plain
// "Unauthorized" with WWW-Authenticate.
func TestUserinfoErrors(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{})
			r := e.login(t, "contoso-v2", "alice@contoso.com", "Alice-Passw0rd!", "openid profile")
			if r.status != 200 {
				t.Fatalf("login: %d %s", r.status, r.raw)
			}
			call := func(method, token string) (*http.Response, map[string]any) {
				t.Helper()
				req, _ := http.NewRequest(method, e.url+"userinfo", nil)
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				resp, err := e.hc.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				raw, _ := io.ReadAll(resp.Body)
				var m map[string]any
				_ = json.Unmarshal(raw, &m)
				return resp, m
			}

			resp, body := call("DELETE", r.str("access_token"))
			if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, POST" || resp.Header.Get("Cache-Control") != "no-store" ||
				!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || body["error"] != "invalid_request" || body["error_description"] == nil {
				t.Errorf("DELETE: %d %v %v", resp.StatusCode, resp.Header, body)
			}

			resp, _ = call("GET", "not-a-token")
			if resp.StatusCode != 401 || resp.Header.Get("Cache-Control") != "no-store" || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("bad token: %d %v", resp.StatusCode, resp.Header)
			}

			// A profile the store cannot have written: userinfo fails
			// after the token checked out.
			db := openDB(t, e.dsn)
			if _, err := db.Exec("UPDATE users SET profile = '{' WHERE user_id = $1", aliceID); err != nil {
				t.Fatal(err)
			}
			resp, body = call("GET", r.str("access_token"))
			if resp.StatusCode != 500 || resp.Header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
				body["error"] != "server_error" || body["error_description"] != "Internal error." {
				t.Errorf("server error: %d %v %v", resp.StatusCode, resp.Header, body)
			}
		})
	}
}

// openDB opens the test server's database behind its back.
func openDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	driver := "pgx"
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		driver, dsn = "sqlite", path
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestUserinfoRequiresOpenID: as in Auth0, /userinfo answers only for an
// access token that was granted openid; the opaque token of a login or a
// refresh without it is refused like an API's JWT without it.
func TestUserinfoRequiresOpenID(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{quietLogs: true})
			refreshClient(t, e, map[string]any{"rotation_type": "non-rotating"})
			login := func(scope string) tokenResult {
				t.Helper()
				r := e.login(t, "contoso-v2", "alice@contoso.com", "Alice-Passw0rd!", scope)
				if r.status != http.StatusOK || strings.Count(r.str("access_token"), ".") == 2 {
					t.Fatalf("login %q: %d %s", scope, r.status, r.raw)
				}
				return r
			}
			withOpenID := login("openid profile email offline_access")
			narrowed := e.refresh(t, withOpenID.str("refresh_token"), "profile email")
			if narrowed.status != http.StatusOK {
				t.Fatalf("refresh: %d %s", narrowed.status, narrowed.raw)
			}
			for name, tok := range map[string]string{
				"no scope":               login("").str("access_token"),
				"profile and email":      login("profile email").str("access_token"),
				"refresh without openid": narrowed.str("access_token"),
			} {
				req, _ := http.NewRequest("GET", e.url+"userinfo", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := e.hc.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
					t.Errorf("%s: userinfo %d %v %s, want 401 invalid_token", name, resp.StatusCode, resp.Header, raw)
				}
			}
			if ui := userinfo(t, e, withOpenID.str("access_token")); ui["sub"] != aliceID || ui["email"] != "alice@contoso.com" {
				t.Errorf("userinfo with openid: %v", ui)
			}
		})
	}
}
