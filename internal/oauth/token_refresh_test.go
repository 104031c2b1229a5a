package oauth_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// refreshClient turns the harness's native app into one that may use
// refresh tokens with the given refresh_token settings.
func refreshClient(t *testing.T, e *env, settings map[string]any) {
	t.Helper()
	status, body := e.api(t, "PATCH", "api/v2/clients/"+e.clientID, map[string]any{
		"grant_types":   []string{"password", "http://auth0.com/oauth/grant-type/password-realm", "refresh_token"},
		"refresh_token": settings,
	})
	if status != http.StatusOK {
		t.Fatalf("patch client: %d %v", status, body)
	}
}

// rotating is the refresh_token settings of a client with rotation, the
// given leeway in seconds, and finite lifetimes (an hour, half an hour idle).
func rotating(leeway int) map[string]any {
	return map[string]any{"rotation_type": "rotating", "expiration_type": "expiring", "leeway": leeway,
		"infinite_token_lifetime": false, "token_lifetime": 3600, "infinite_idle_token_lifetime": false, "idle_token_lifetime": 1800}
}

// refreshLogin signs alice in through contoso-v2 with scope (and the
// API audience, when not empty) and returns her refresh token.
func (e *env) refreshLogin(t *testing.T, scope, audience string) string {
	t.Helper()
	form := url.Values{"grant_type": {"http://auth0.com/oauth/grant-type/password-realm"}, "client_id": {e.clientID},
		"realm": {"contoso-v2"}, "username": {"alice@contoso.com"}, "password": {"Alice-Passw0rd!"}, "scope": {scope}}
	if audience != "" {
		form.Set("audience", audience)
	}
	r := e.token(t, form)
	if r.status != http.StatusOK || r.str("refresh_token") == "" {
		t.Fatalf("login: %d %s", r.status, r.raw)
	}
	return r.str("refresh_token")
}

func (e *env) refresh(t *testing.T, token, scope string) tokenResult {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {e.clientID}, "refresh_token": {token}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return e.token(t, form)
}

func wantBadRefresh(t *testing.T, what string, r tokenResult) {
	t.Helper()
	if r.status != http.StatusForbidden || r.str("error") != "invalid_grant" || r.str("error_description") != "Unknown or invalid refresh token." {
		t.Errorf("%s: %d %s, want 403 invalid_grant", what, r.status, r.raw)
	}
}

func TestRefreshTokens(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{quietLogs: true})
			const scope = "openid profile email offline_access"
			login := func(t *testing.T) string {
				t.Helper()
				r := e.login(t, "contoso-v2", "alice@contoso.com", "Alice-Passw0rd!", scope)
				if r.status != http.StatusOK || r.str("refresh_token") == "" {
					t.Fatalf("login: %d %s", r.status, r.raw)
				}
				return r.str("refresh_token")
			}

			t.Run("no refresh token without the grant", func(t *testing.T) {
				r := e.login(t, "contoso-v2", "alice@contoso.com", "Alice-Passw0rd!", scope)
				if r.status != http.StatusOK || r.str("refresh_token") != "" || strings.Contains(r.str("scope"), "offline_access") {
					t.Errorf("login without refresh_token grant: %d %s", r.status, r.raw)
				}
			})

			refreshClient(t, e, rotating(0))

			t.Run("rotation and reuse detection", func(t *testing.T) {
				rt1 := login(t)
				r := e.refresh(t, rt1, "")
				rt2 := r.str("refresh_token")
				if r.status != http.StatusOK || rt2 == "" || rt2 == rt1 || r.str("id_token") == "" || r.str("access_token") == "" {
					t.Fatalf("refresh: %d %s", r.status, r.raw)
				}
				if ev := lastEvent(t, e, "sertft"); ev["user_id"] != aliceID || ev["client_id"] != e.clientID || ev["scope"] != scope {
					t.Errorf("sertft event %v", ev)
				}
				// Narrower scope: no id_token without openid.
				r = e.refresh(t, rt2, "offline_access")
				rt3 := r.str("refresh_token")
				if r.status != http.StatusOK || r.str("id_token") != "" || rt3 == "" {
					t.Fatalf("narrowed refresh: %d %s", r.status, r.raw)
				}
				if r := e.refresh(t, rt3, "openid read:everything"); r.status != http.StatusForbidden || r.str("error") != "invalid_scope" {
					t.Errorf("wider scope: %d %s", r.status, r.raw)
				}
				// rt1 was rotated long ago: reuse revokes the family, rt3
				// included.
				wantBadRefresh(t, "reused token", e.refresh(t, rt1, ""))
				ev := lastEvent(t, e, "ferrt")
				if details, _ := ev["details"].(map[string]any); ev["user_id"] != aliceID || !strings.Contains(fmt.Sprint(details["cause"]), "reused") ||
					ev["description"] != "Failed exchange of Rotating Refresh Token" {
					t.Errorf("ferrt event %v", ev)
				}
				wantBadRefresh(t, "family member after reuse", e.refresh(t, rt3, ""))
				_, raw := e.apiRaw(t, "GET", "api/v2/logs?per_page=100", nil)
				for _, tok := range []string{rt1, rt2, rt3} {
					_, secret, _ := strings.Cut(tok, ".")
					if strings.Contains(string(raw), secret) {
						t.Errorf("the tenant log holds a refresh token's secret")
					}
				}
			})

			t.Run("bad tokens change nothing", func(t *testing.T) {
				rt := login(t)
				id, _, _ := strings.Cut(rt, ".")
				for name, tok := range map[string]string{
					"forged secret": id + ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
					"unknown":       "AAAAAAAAAAAAAAAAAAAAAA.AAAA",
					"garbage":       "not a token",
				} {
					wantBadRefresh(t, name, e.refresh(t, tok, ""))
				}
				// Another client presenting it gets the same answer.
				status, other := e.api(t, "POST", "api/v2/clients", map[string]any{"name": "Other", "app_type": "native",
					"token_endpoint_auth_method": "none", "grant_types": []string{"refresh_token"}})
				if status != http.StatusCreated {
					t.Fatalf("create client: %d", status)
				}
				wantBadRefresh(t, "foreign client", e.token(t, url.Values{"grant_type": {"refresh_token"},
					"client_id": {other["client_id"].(string)}, "refresh_token": {rt}}))
				if r := e.refresh(t, rt, ""); r.status != http.StatusOK {
					t.Errorf("token after bad attempts: %d %s", r.status, r.raw)
				}
			})

			t.Run("revocation cascades to the family", func(t *testing.T) {
				rt1 := login(t)
				rt2 := e.refresh(t, rt1, "").str("refresh_token")
				for _, tok := range []string{"unknown.token", rt1} {
					resp, err := http.PostForm(e.url+"oauth/revoke", url.Values{"client_id": {e.clientID}, "token": {tok}})
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Errorf("revoke: %d", resp.StatusCode)
					}
				}
				if ev := lastEvent(t, e, "srrt"); ev["user_id"] != aliceID || ev["client_id"] != e.clientID {
					t.Errorf("srrt event %v", ev)
				}
				wantBadRefresh(t, "successor of a revoked token", e.refresh(t, rt2, ""))
				ev := lastEvent(t, e, "fertft")
				if details, _ := ev["details"].(map[string]any); details["error"] != "invalid_grant" || ev["client_id"] != e.clientID {
					t.Errorf("fertft event %v", ev)
				}
			})

			t.Run("management listing and revocation", func(t *testing.T) {
				status, _ := e.api(t, "DELETE", "api/v2/users/"+url.PathEscape(aliceID)+"/refresh-tokens", nil)
				if status != http.StatusNoContent {
					t.Fatalf("delete all: %d", status)
				}
				rt := login(t)
				status, body := e.api(t, "GET", "api/v2/users/"+url.PathEscape(aliceID)+"/refresh-tokens", nil)
				toks, _ := body["tokens"].([]any)
				if status != http.StatusOK || len(toks) != 1 {
					t.Fatalf("list: %d %v", status, body)
				}
				tok := toks[0].(map[string]any)
				if tok["client_id"] != e.clientID || tok["rotating"] != true || tok["expires_at"] == nil || strings.Contains(e.logs.String(), rt) {
					t.Errorf("listed token %v", tok)
				}
				if status, _ := e.api(t, "DELETE", "api/v2/refresh-tokens/"+tok["id"].(string), nil); status != http.StatusNoContent {
					t.Errorf("delete one: %d", status)
				}
				wantBadRefresh(t, "after management revocation", e.refresh(t, rt, ""))
				if status, _ := e.api(t, "GET", "api/v2/refresh-tokens/"+tok["id"].(string), nil); status != http.StatusNotFound {
					t.Errorf("get revoked: %d", status)
				}
			})

			t.Run("device credentials", func(t *testing.T) {
				if status, _ := e.api(t, "DELETE", "api/v2/users/"+url.PathEscape(aliceID)+"/refresh-tokens", nil); status != http.StatusNoContent {
					t.Fatalf("delete all: %d", status)
				}
				list := func(t *testing.T, query string) []map[string]any {
					t.Helper()
					status, raw := e.apiRaw(t, "GET", "api/v2/device-credentials?user_id="+url.QueryEscape(aliceID)+query, nil)
					var items []map[string]any
					if err := json.Unmarshal(raw, &items); status != http.StatusOK || err != nil {
						t.Fatalf("list%s: %d %s", query, status, raw)
					}
					return items
				}
				first, second := login(t), login(t)
				before := list(t, "")
				next := e.refresh(t, first, "").str("refresh_token")
				after := list(t, "&type=rotating_refresh_token&client_id="+url.QueryEscape(e.clientID))
				ids := func(cs []map[string]any) []string {
					var out []string
					for _, c := range cs {
						out = append(out, c["id"].(string))
					}
					slices.Sort(out)
					return out
				}
				if len(before) != 2 || !slices.Equal(ids(before), ids(after)) {
					t.Fatalf("credentials before %v and after a rotation %v: want the same two", before, after)
				}
				// The rotated family is listed by its newest token, so last.
				rotated := after[1]
				for _, c := range after {
					if c["type"] != "rotating_refresh_token" || c["user_id"] != aliceID || c["client_id"] != e.clientID || c["device_name"] == "" {
						t.Errorf("credential %v", c)
					}
					for _, tok := range []string{first, second, next} {
						if _, secret, _ := strings.Cut(tok, "."); strings.Contains(fmt.Sprint(c), secret) {
							t.Errorf("credential %v shows a token's secret", c)
						}
					}
				}
				for _, q := range []string{"&type=refresh_token", "&type=public_key", "&client_id=someone-else"} {
					if got := list(t, q); len(got) != 0 {
						t.Errorf("list%s: %v, want none", q, got)
					}
				}
				status, body := e.api(t, "GET", "api/v2/device-credentials?include_totals=true&per_page=1&user_id="+url.QueryEscape(aliceID), nil)
				if items, _ := body["device_credentials"].([]any); status != http.StatusOK || body["total"] != float64(2) || len(items) != 1 {
					t.Errorf("include_totals: %d %v", status, body)
				}
				for q, want := range map[string]string{"": "user_id", "?user_id=x&type=bogus": `No enum match for: "bogus"`} {
					status, body := e.api(t, "GET", "api/v2/device-credentials"+q, nil)
					if msg, _ := body["message"].(string); status != http.StatusBadRequest || body["errorCode"] != "invalid_query_string" || !strings.Contains(msg, want) {
						t.Errorf("list%s: %d %v", q, status, body)
					}
				}

				// Deleting the credential revokes the rotated family, and
				// only it.
				if status, _ := e.api(t, "DELETE", "api/v2/device-credentials/"+rotated["id"].(string), nil); status != http.StatusNoContent {
					t.Fatalf("delete: %d", status)
				}
				wantBadRefresh(t, "token of a deleted credential", e.refresh(t, next, ""))
				if r := e.refresh(t, second, ""); r.status != http.StatusOK {
					t.Errorf("other credential's token: %d %s", r.status, r.raw)
				}
				status, body = e.api(t, "DELETE", "api/v2/device-credentials/"+rotated["id"].(string), nil)
				if status != http.StatusNotFound || body["errorCode"] != "inexistent_device_credential" {
					t.Errorf("delete again: %d %v", status, body)
				}
			})

			t.Run("blocked user cannot refresh", func(t *testing.T) {
				rt := login(t)
				if status, _ := e.api(t, "PATCH", "api/v2/users/"+url.PathEscape(aliceID), map[string]any{"blocked": true}); status != http.StatusOK {
					t.Fatalf("block: %d", status)
				}
				if r := e.refresh(t, rt, ""); r.status != http.StatusUnauthorized || r.str("error") != "unauthorized" {
					t.Errorf("blocked: %d %s", r.status, r.raw)
				}
				e.api(t, "PATCH", "api/v2/users/"+url.PathEscape(aliceID), map[string]any{"blocked": false})
			})

			t.Run("without leeway one of two concurrent requests wins", func(t *testing.T) {
				for trial := range 30 {
					rt := login(t)
					var wg sync.WaitGroup
					results := make([]tokenResult, 2)
					for i := range results {
						wg.Go(func() { results[i] = e.refresh(t, rt, "") })
					}
					wg.Wait()
					if results[0].status == http.StatusOK && results[1].status == http.StatusOK {
						t.Fatalf("trial %d: both concurrent refreshes of one token succeeded without leeway", trial)
					}
				}
			})

			t.Run("leeway lets concurrent requests through", func(t *testing.T) {
				refreshClient(t, e, rotating(30))
				rt := login(t)
				var wg sync.WaitGroup
				results := make([]tokenResult, 4)
				for i := range results {
					wg.Go(func() { results[i] = e.refresh(t, rt, "") })
				}
				wg.Wait()
				for i, r := range results {
					if r.status != http.StatusOK || r.str("refresh_token") == "" {
						t.Errorf("concurrent refresh %d within leeway: %d %s", i, r.status, r.raw)
					}
				}
			})

			t.Run("idle and absolute lifetimes", func(t *testing.T) {
				refreshClient(t, e, map[string]any{"rotation_type": "rotating", "expiration_type": "expiring", "leeway": 0,
					"infinite_token_lifetime": false, "token_lifetime": 3600, "infinite_idle_token_lifetime": false, "idle_token_lifetime": 1})
				rt := login(t)
				time.Sleep(1100 * time.Millisecond)
				wantBadRefresh(t, "idle-expired", e.refresh(t, rt, ""))

				refreshClient(t, e, map[string]any{"rotation_type": "rotating", "expiration_type": "expiring", "leeway": 0,
					"infinite_token_lifetime": false, "token_lifetime": 2, "infinite_idle_token_lifetime": true})
				rt = login(t)
				time.Sleep(1100 * time.Millisecond)
				rt2 := e.refresh(t, rt, "").str("refresh_token")
				if rt2 == "" {
					t.Fatal("refresh within the absolute lifetime failed")
				}
				time.Sleep(1100 * time.Millisecond)
				wantBadRefresh(t, "rotated token past the family's absolute lifetime", e.refresh(t, rt2, ""))
			})

			t.Run("reuse past the idle lifetime revokes the family", func(t *testing.T) {
				// rt1 idles out at 2 s, but was rotated at 1.1 s; its
				// successor lives until 3.1 s.
				refreshClient(t, e, map[string]any{"rotation_type": "rotating", "expiration_type": "expiring", "leeway": 0,
					"infinite_token_lifetime": false, "token_lifetime": 3600, "infinite_idle_token_lifetime": false, "idle_token_lifetime": 2})
				rt1 := login(t)
				time.Sleep(1100 * time.Millisecond)
				rt2 := e.refresh(t, rt1, "").str("refresh_token")
				if rt2 == "" {
					t.Fatal("refresh within the idle lifetime failed")
				}
				time.Sleep(1100 * time.Millisecond)
				wantBadRefresh(t, "rotated token past its own idle lifetime", e.refresh(t, rt1, ""))
				if ev := lastEvent(t, e, ""); ev["type"] != "ferrt" || ev["user_id"] != aliceID {
					t.Errorf("event of the reuse: %v, want ferrt", ev)
				}
				wantBadRefresh(t, "successor after the reuse", e.refresh(t, rt2, ""))
			})

			t.Run("reuse with a wider scope revokes the family", func(t *testing.T) {
				refreshClient(t, e, rotating(0))
				rt1 := login(t)
				rt2 := e.refresh(t, rt1, "").str("refresh_token")
				if rt2 == "" {
					t.Fatal("refresh failed")
				}
				// A wider scope is refused, but the token is a rotated one:
				// reuse, which ends the family whatever else is wrong.
				wantBadRefresh(t, "reused token asking for more", e.refresh(t, rt1, scope+" read:everything"))
				if ev := lastEvent(t, e, ""); ev["type"] != "ferrt" || ev["user_id"] != aliceID {
					t.Errorf("event of the reuse: %v, want ferrt", ev)
				}
				wantBadRefresh(t, "successor after the reuse", e.refresh(t, rt2, ""))
			})
		})
	}
}

// TestRefreshTokenIDsStartWithTime: a token's id (the part before the dot,
// its primary key) starts with its issue time in milliseconds, so that the
// rows of one moment share their index's pages; the secret stays 32 random
// bytes.
func TestRefreshTokenIDsStartWithTime(t *testing.T) {
	e := newEnv(t, storetest.SQLite, envOptions{quietLogs: true})
	refreshClient(t, e, map[string]any{"rotation_type": "rotating", "expiration_type": "expiring", "leeway": 0})
	issuedAt := func(t *testing.T, tok string) (time.Time, int) {
		t.Helper()
		id, secret, _ := strings.Cut(tok, ".")
		raw, err := base64.RawURLEncoding.DecodeString(id)
		if err != nil || len(raw) != 16 {
			t.Fatalf("token id %q: %d bytes, %v", id, len(raw), err)
		}
		var msec int64
		for _, b := range raw[:6] {
			msec = msec<<8 | int64(b)
		}
		sec, _ := base64.RawURLEncoding.DecodeString(secret)
		return time.UnixMilli(msec), len(sec)
	}
	before := time.Now().Truncate(time.Millisecond)
	r := e.login(t, "contoso-v2", "alice@contoso.com", "Alice-Passw0rd!", "openid offline_access")
	next := e.refresh(t, r.str("refresh_token"), "")
	after := time.Now()
	for _, tok := range []string{r.str("refresh_token"), next.str("refresh_token")} {
		at, secretLen := issuedAt(t, tok)
		if at.Before(before) || at.After(after) || secretLen != 32 {
			t.Errorf("token id says %v, issued between %v and %v; secret %d bytes", at, before, after, secretLen)
		}
	}
}
