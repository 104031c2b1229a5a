package oauth_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestRefreshTokenAttacks presents refresh tokens in the ways a thief, a
// confused app or a changing configuration would, and checks each answer
// and that nothing changed that should not have.
func TestRefreshTokenAttacks(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{quietLogs: true})
			const api = "https://api.contoso.example/"
			if status, body := e.api(t, "POST", "api/v2/resource-servers", map[string]any{"identifier": api, "name": "Contoso API",
				"allow_offline_access": true, "scopes": []map[string]string{{"value": "read:a"}, {"value": "write:a"}}}); status != http.StatusCreated {
				t.Fatalf("create API: %d %v", status, body)
			}
			refreshClient(t, e, rotating(0))
			mustRefresh := func(t *testing.T, what, tok, scope string) tokenResult {
				t.Helper()
				r := e.refresh(t, tok, scope)
				if r.status != http.StatusOK || r.str("refresh_token") == "" {
					t.Fatalf("%s: %d %s", what, r.status, r.raw)
				}
				return r
			}

			t.Run("scope never widens through a chain of refreshes", func(t *testing.T) {
				rt := e.refreshLogin(t, "openid offline_access read:a", api)
				r := mustRefresh(t, "narrowed", rt, "offline_access")
				if got := jwtClaims(t, r.str("access_token"))["scope"]; got != "offline_access" {
					t.Errorf("narrowed access token scope %q", got)
				}
				// The family keeps what the login granted: the narrowing was
				// for that one access token.
				r = mustRefresh(t, "back to the granted scope", r.str("refresh_token"), "openid offline_access read:a")
				for _, wider := range []string{"write:a", "openid offline_access read:a write:a", "profile"} {
					if w := e.refresh(t, r.str("refresh_token"), wider); w.status != http.StatusForbidden || w.str("error") != "invalid_scope" {
						t.Errorf("scope %q: %d %s, want 403 invalid_scope", wider, w.status, w.raw)
					}
				}
				r = mustRefresh(t, "after refused widenings", r.str("refresh_token"), "")
				if got := jwtClaims(t, r.str("access_token"))["scope"]; got != "openid offline_access read:a" {
					t.Errorf("access token scope after the chain %q", got)
				}
			})

			t.Run("the refresh_token grant removed from the client", func(t *testing.T) {
				rt := e.refreshLogin(t, "openid offline_access", "")
				if status, _ := e.api(t, "PATCH", "api/v2/clients/"+e.clientID, map[string]any{
					"grant_types": []string{"password", "http://auth0.com/oauth/grant-type/password-realm"}}); status != http.StatusOK {
					t.Fatalf("patch client: %d", status)
				}
				if r := e.refresh(t, rt, ""); r.status != http.StatusForbidden || r.str("error") != "unauthorized_client" {
					t.Errorf("refresh without the grant: %d %s", r.status, r.raw)
				}
				refreshClient(t, e, rotating(0))
				mustRefresh(t, "grant restored", rt, "")
			})

			t.Run("another client learns and changes nothing", func(t *testing.T) {
				status, other := e.api(t, "POST", "api/v2/clients", map[string]any{"name": "Other", "app_type": "native",
					"token_endpoint_auth_method": "none", "grant_types": []string{"refresh_token"}})
				if status != http.StatusCreated {
					t.Fatalf("create client: %d", status)
				}
				otherID := other["client_id"].(string)
				rt1 := e.refreshLogin(t, "openid offline_access", "")
				rt2 := mustRefresh(t, "rotate", rt1, "").str("refresh_token")
				for name, tok := range map[string]string{"live": rt2, "rotated": rt1} {
					wantBadRefresh(t, "foreign client, "+name+" token",
						e.token(t, url.Values{"grant_type": {"refresh_token"}, "client_id": {otherID}, "refresh_token": {tok}}))
					resp, err := http.PostForm(e.url+"oauth/revoke", url.Values{"client_id": {otherID}, "token": {tok}})
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Errorf("foreign revocation of the %s token: %d", name, resp.StatusCode)
					}
				}
				mustRefresh(t, "own client after the foreign attempts", rt2, "")
			})

			t.Run("a database failure reading the API is not an invalid token", func(t *testing.T) {
				rt := e.refreshLogin(t, "openid offline_access read:a", api)
				db := openDB(t, e.dsn)
				if _, err := db.Exec("ALTER TABLE resource_servers RENAME TO resource_servers_away"); err != nil {
					t.Fatal(err)
				}
				// Any Management API write empties the cache of APIs.
				refreshClient(t, e, rotating(0))
				r := e.refresh(t, rt, "")
				if _, err := db.Exec("ALTER TABLE resource_servers_away RENAME TO resource_servers"); err != nil {
					t.Fatal(err)
				}
				// An app told invalid_grant drops its token and signs the
				// user out: that is for a token that is bad, not for an
				// outage of ours.
				if r.status != http.StatusInternalServerError || r.str("error") != "server_error" {
					t.Errorf("refresh while the API cannot be read: %d %s, want 500 server_error", r.status, r.raw)
				}
				refreshClient(t, e, rotating(0))
				mustRefresh(t, "once the API can be read again", rt, "")
			})

			t.Run("reuse of the second-to-last token in an otherwise wrong request", func(t *testing.T) {
				refreshClient(t, e, rotating(30))
				defer refreshClient(t, e, rotating(0))
				block := func(t *testing.T, blocked bool) {
					t.Helper()
					if status, _ := e.api(t, "PATCH", "api/v2/users/"+url.PathEscape(aliceID), map[string]any{"blocked": blocked}); status != http.StatusOK {
						t.Fatalf("block %v: %d", blocked, status)
					}
				}
				for _, c := range []struct {
					name, scope string
					blocked     bool
				}{
					{"wider scope", "openid offline_access read:everything", false},
					{"blocked user", "", true},
				} {
					t.Run(c.name, func(t *testing.T) {
						rt1 := e.refreshLogin(t, "openid offline_access", "")
						rt2 := mustRefresh(t, "first rotation", rt1, "").str("refresh_token")
						rt3 := mustRefresh(t, "second rotation", rt2, "").str("refresh_token")
						if c.blocked {
							block(t, true)
							defer block(t, false)
						}
						// rt1 is no longer the previous token: reuse, even
						// within the leeway and whatever else is wrong with
						// the request.
						wantBadRefresh(t, "second-to-last token", e.refresh(t, rt1, c.scope))
						if ev := lastEvent(t, e, ""); ev["type"] != "ferrt" {
							t.Errorf("event of the reuse: %v, want ferrt", ev)
						}
						if c.blocked {
							block(t, false)
						}
						wantBadRefresh(t, "latest token after the reuse", e.refresh(t, rt3, ""))
					})
				}
			})

			t.Run("a revoked family stays revoked within the leeway", func(t *testing.T) {
				refreshClient(t, e, rotating(30))
				defer refreshClient(t, e, rotating(0))
				rt1 := e.refreshLogin(t, "openid offline_access", "")
				rt2 := mustRefresh(t, "rotate", rt1, "").str("refresh_token")
				resp, err := http.PostForm(e.url+"oauth/revoke", url.Values{"client_id": {e.clientID}, "token": {rt2}})
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				wantBadRefresh(t, "previous token within the leeway after revocation", e.refresh(t, rt1, ""))
				wantBadRefresh(t, "revoked token", e.refresh(t, rt2, ""))
			})

			t.Run("concurrent refreshes without leeway leave no live token", func(t *testing.T) {
				for trial := range 10 {
					rt := e.refreshLogin(t, "openid offline_access", "")
					var wg sync.WaitGroup
					results := make([]tokenResult, 6)
					for i := range results {
						wg.Go(func() { results[i] = e.refresh(t, rt, "") })
					}
					wg.Wait()
					wins := 0
					for _, r := range results {
						switch {
						case r.status == http.StatusOK:
							wins++
							wantBadRefresh(t, "winner's token after the others' reuse", e.refresh(t, r.str("refresh_token"), ""))
						case r.status != http.StatusForbidden || r.str("error") != "invalid_grant":
							t.Errorf("trial %d: %d %s", trial, r.status, r.raw)
						}
					}
					if wins > 1 {
						t.Fatalf("trial %d: %d concurrent refreshes of one token succeeded without leeway", trial, wins)
					}
				}
			})

			t.Run("lifetimes across exchanges", func(t *testing.T) {
				list := func(t *testing.T) []map[string]any {
					t.Helper()
					status, body := e.api(t, "GET", "api/v2/users/"+url.PathEscape(aliceID)+"/refresh-tokens", nil)
					toks, _ := body["tokens"].([]any)
					if status != http.StatusOK {
						t.Fatalf("list: %d %v", status, body)
					}
					var out []map[string]any
					for _, tok := range toks {
						out = append(out, tok.(map[string]any))
					}
					return out
				}
				for _, rotation := range []string{"rotating", "non-rotating"} {
					t.Run(rotation, func(t *testing.T) {
						e.api(t, "DELETE", "api/v2/users/"+url.PathEscape(aliceID)+"/refresh-tokens", nil)
						s := rotating(0)
						s["rotation_type"], s["idle_token_lifetime"] = rotation, 1000
						refreshClient(t, e, s)
						defer refreshClient(t, e, rotating(0))
						rt := e.refreshLogin(t, "openid offline_access", "")
						before := list(t)
						// A non-rotating token is kept, so no new one is returned.
						if r := e.refresh(t, rt, ""); r.status != http.StatusOK || (r.str("refresh_token") != "") != (rotation == "rotating") {
							t.Fatalf("exchange: %d %s", r.status, r.raw)
						}
						after := list(t)
						if len(before) != 1 || len(after) != 1 {
							t.Fatalf("tokens before %v, after %v", before, after)
						}
						if before[0]["expires_at"] == nil || before[0]["expires_at"] != after[0]["expires_at"] {
							t.Errorf("absolute expiry %v became %v", before[0]["expires_at"], after[0]["expires_at"])
						}
						if after[0]["idle_expires_at"] == nil || strings.Compare(after[0]["idle_expires_at"].(string), before[0]["idle_expires_at"].(string)) < 0 {
							t.Errorf("idle expiry %v became %v", before[0]["idle_expires_at"], after[0]["idle_expires_at"])
						}
					})
				}
			})
		})
	}
}

// TestRefreshTokenNeverLogged runs a refresh token through its life with
// the server logging at debug level, and looks for its secret in the logs.
func TestRefreshTokenNeverLogged(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{})
			refreshClient(t, e, rotating(0))
			r := e.login(t, "contoso-v2", "alice@contoso.com", "Alice-Passw0rd!", "openid offline_access")
			rt1 := r.str("refresh_token")
			if rt1 == "" {
				t.Fatalf("login: %d %s", r.status, r.raw)
			}
			rt2 := e.refresh(t, rt1, "").str("refresh_token")
			e.refresh(t, rt2, "openid offline_access read:everything")
			e.token(t, url.Values{"grant_type": {"refresh_token"}, "client_id": {"nobody"}, "refresh_token": {rt2}})
			e.refresh(t, rt1, "")
			e.refresh(t, rt2, "")
			resp, err := http.PostForm(e.url+"oauth/revoke", url.Values{"client_id": {e.clientID}, "token": {rt2}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			logs := e.logs.String()
			if !strings.Contains(logs, "refresh token reuse detected") {
				t.Fatalf("the logs do not show the run: %s", logs)
			}
			for _, tok := range []string{rt1, rt2} {
				if _, secret, _ := strings.Cut(tok, "."); strings.Contains(logs, secret) {
					t.Errorf("the logs hold a refresh token's secret")
				}
			}
		})
	}
}
