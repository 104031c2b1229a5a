package oauth_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	emulator "github.com/gatehouse/gatehouse/emulator/entra"
	"github.com/gatehouse/gatehouse/internal/oauth"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

const aliceID = "waad|a0000000-0000-4000-8000-000000000001"

func TestPasswordLogin(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{graphPage: 3})
			canary := "canary-" + hex.EncodeToString(randomBytes(12))
			var seen []string // every response body, for the canary scan

			t.Run("v2 Graph-enabled, nested groups over pages, id_token verified by go-oidc", func(t *testing.T) {
				r := e.login(t, "contoso-v2", "alice@contoso.com", "Alice-Passw0rd!", "openid profile email")
				seen = append(seen, r.raw)
				if r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-store" {
					t.Fatalf("login: %d %s (Cache-Control %q)", r.status, r.raw, r.header.Get("Cache-Control"))
				}
				ctx := context.Background()
				provider, err := oidc.NewProvider(ctx, e.url)
				if err != nil {
					t.Fatal(err)
				}
				if provider.UserInfoEndpoint() != e.url+"userinfo" {
					t.Errorf("discovery userinfo_endpoint %q", provider.UserInfoEndpoint())
				}
				idt, err := provider.Verifier(&oidc.Config{ClientID: e.clientID}).Verify(ctx, r.str("id_token"))
				if err != nil {
					t.Fatalf("go-oidc rejected the id_token: %v", err)
				}
				var claims struct {
					Email         string `json:"email"`
					EmailVerified bool   `json:"email_verified"`
					Name          string `json:"name"`
					Nickname      string `json:"nickname"`
					UpdatedAt     string `json:"updated_at"`
				}
				_ = idt.Claims(&claims)
				if idt.Subject != aliceID || claims.Email != "alice@contoso.com" || claims.Name != "Alice Adams" || claims.Nickname != "alice" || claims.UpdatedAt == "" {
					t.Errorf("id_token sub %q claims %+v", idt.Subject, claims)
				}
				if strings.Count(r.str("access_token"), ".") == 2 {
					t.Errorf("access token is a JWT without an audience")
				}
				ui := userinfo(t, e, r.str("access_token"))
				if ui["sub"] != aliceID || ui["email"] != "alice@contoso.com" {
					t.Errorf("userinfo %v", ui)
				}
				status, user := e.api(t, "GET", "api/v2/users/"+url.PathEscape(aliceID), nil)
				groups, _ := user["groups"].([]any)
				if status != 200 || len(groups) < 10 || !slices.Contains(groups, any("All Staff")) || user["job_title"] != "Identity Engineer" {
					t.Errorf("user %d %v", status, user)
				}
				ids, _ := user["identities"].([]any)
				if len(ids) != 1 || ids[0].(map[string]any)["provider"] != "waad" || ids[0].(map[string]any)["connection"] != "contoso-v2" {
					t.Errorf("identities %v", user["identities"])
				}
			})

			t.Run("v1 App ID URI: groups unavailable, reason recorded", func(t *testing.T) {
				form := `{"grant_type":"http://auth0.com/oauth/grant-type/password-realm","client_id":"` + e.clientID +
					`","realm":"contoso-v1","username":"judy@contoso.onmicrosoft.com","password":"Judy-Passw0rd!","scope":"openid"}`
				resp, err := e.hc.Post(e.url+"oauth/token", "application/json", strings.NewReader(form))
				if err != nil {
					t.Fatal(err)
				}
				var body map[string]any
				_ = json.NewDecoder(resp.Body).Decode(&body)
				resp.Body.Close()
				if resp.StatusCode != 200 || body["scope"] != "openid profile email" || body["id_token"] == nil {
					t.Fatalf("v1 login: %d %v", resp.StatusCode, body)
				}
				_, user := e.api(t, "GET", "api/v2/users/"+url.PathEscape("waad|a0000000-0000-4000-8000-00000000000a"), nil)
				if _, ok := user["groups"]; ok || user["tenantid"] != "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b" {
					t.Errorf("v1 user %v", user)
				}
				ev := lastEvent(t, e, "sepft")
				notes, _ := ev["details"].(map[string]any)["notes"].([]any)
				if len(notes) != 1 || !strings.Contains(notes[0].(string), "upstream token audience is "+webAPIURI+", not Microsoft Graph") {
					t.Errorf("sepft details %v", ev["details"])
				}
			})

			t.Run("every error class", func(t *testing.T) {
				for _, tc := range []struct {
					name, user, password string
					status               int
					code, desc, logType  string
				}{
					{"wrong password", "alice@contoso.com", canary, 403, "invalid_grant", "Wrong email or password.", "fp"},
					{"unknown user", "nobody@contoso.com", canary, 403, "invalid_grant", "Wrong email or password.", "fu"},
					{"federated without cloud password", "grace@corp.contoso.com", "Grace-Passw0rd!", 403, "invalid_grant", oauth.FederatedDescription, "fp"},
					{"passwordless", "heidi@contoso.com", canary, 403, "access_denied", "This account has no password that can be checked", "fepft"},
					{"locked", "bob@contoso.com", "Bob-Passw0rd!", 429, "too_many_attempts", "", "fepft"},
					{"password expired", "carol@contoso.com", "Carol-Passw0rd!", 403, "password_expired", "", "fepft"},
					{"MFA required", "dave@contoso.com", "Dave-Passw0rd!", 403, "access_denied", "Multifactor", "fepft"},
					{"MFA registration", "erin@contoso.com", "Erin-Passw0rd!", 403, "access_denied", "Multifactor", "fepft"},
					{"conditional access", "frank@contoso.com", "Frank-Passw0rd!", 403, "access_denied", "Conditional Access", "fepft"},
					{"disabled", "ivan@contoso.com", "Ivan-Passw0rd!", 401, "unauthorized", "user is blocked", "fepft"},
				} {
					r := e.login(t, "contoso-v2", tc.user, tc.password, "openid")
					seen = append(seen, r.raw)
					if r.status != tc.status || r.str("error") != tc.code || !strings.Contains(r.str("error_description"), tc.desc) {
						t.Errorf("%s: %d %s", tc.name, r.status, r.raw)
					}
					if r.str("error") == "mfa_required" {
						t.Errorf("%s: mfa_required, which Gatehouse cannot complete", tc.name)
					}
					if r.header.Get("Cache-Control") != "no-store" {
						t.Errorf("%s: Cache-Control %q", tc.name, r.header.Get("Cache-Control"))
					}
					if ev := lastEvent(t, e, ""); ev["type"] != tc.logType || ev["user_name"] != tc.user || ev["connection"] != "contoso-v2" || ev["client_id"] != e.clientID {
						t.Errorf("%s: log event %v", tc.name, ev)
					} else if d, _ := ev["details"].(map[string]any); d["error_code"] == nil || d["trace_id"] == nil {
						t.Errorf("%s: log event details without AADSTS code or trace id: %v", tc.name, d)
					}
				}
			})

			t.Run("upstream throttling and outage answer 503 with Retry-After", func(t *testing.T) {
				for _, f := range []emulator.Fault{{Status: 429, RetryAfter: 7, Times: 1}, {Status: 503, Times: 1}, {Status: 503, RetryAfter: 9223372036, Times: 1}} {
					if err := e.emu.SetFault("token", f); err != nil {
						t.Fatal(err)
					}
					r := e.login(t, "contoso-v2", "alice@contoso.com", canary, "openid")
					seen = append(seen, r.raw)
					if r.status != 503 || r.str("error") != "temporarily_unavailable" || r.header.Get("Retry-After") == "" || r.header.Get("Cache-Control") != "no-store" {
						t.Errorf("fault %+v: %d %s %v", f, r.status, r.raw, r.header)
					}
					switch ra := r.header.Get("Retry-After"); f.RetryAfter {
					case 7:
						if ra != "7" {
							t.Errorf("Retry-After %q, want 7", ra)
						}
					case 9223372036:
						// Entra's own delay, but within reason: no
						// overflow, no telling apps to wait for years.
						if n, err := strconv.Atoi(ra); err != nil || n < 1 || n > 300 {
							t.Errorf("Retry-After %q for Entra's %v, want 1 to 300", ra, f.RetryAfter)
						}
					}
				}
				e.emu.ClearFaults()
			})

			t.Run("misconfiguration is a server error that tells the app nothing", func(t *testing.T) {
				e.connection(t, "bad-secret", map[string]any{
					"client_id": "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d", "client_secret": "not-the-secret",
					"tenant_domain": "contoso.onmicrosoft.com", "authority_host": e.emuURL, "graph_host": e.emuURL,
				})
				r := e.login(t, "bad-secret", "alice@contoso.com", canary, "openid")
				seen = append(seen, r.raw)
				if r.status != 500 || r.str("error") != "server_error" || strings.Contains(r.raw, "AADSTS") || strings.Contains(r.raw, "contoso") ||
					r.header.Get("Cache-Control") != "no-store" {
					t.Errorf("misconfigured: %d %s", r.status, r.raw)
				}
				d, _ := lastEvent(t, e, "fepft")["details"].(map[string]any)
				if d["error_code"] != "AADSTS7000215" || !strings.Contains(d["hint"].(string), "secret") {
					t.Errorf("admin details %v", d)
				}
			})

			t.Run("checks before Entra, in Auth0's order", func(t *testing.T) {
				before := e.emu.Count("token")
				base := url.Values{"grant_type": {"http://auth0.com/oauth/grant-type/password-realm"}, "client_id": {e.clientID},
					"realm": {"contoso-v2"}, "username": {"alice@contoso.com"}, "password": {canary}}
				with := func(k, v string) url.Values {
					f := url.Values{}
					for kk, vv := range base {
						f[kk] = vv
					}
					if v == "" {
						f.Del(k)
					} else {
						f.Set(k, v)
					}
					return f
				}
				_, m2m := e.api(t, "POST", "api/v2/clients", map[string]any{"name": "m2m", "app_type": "non_interactive", "grant_types": []string{"client_credentials"}})
				_, other := e.api(t, "POST", "api/v2/clients", map[string]any{"name": "other", "app_type": "native", "token_endpoint_auth_method": "none",
					"grant_types": []string{"http://auth0.com/oauth/grant-type/password-realm", "password"}})
				_, noPassword := e.api(t, "POST", "api/v2/clients", map[string]any{"name": "spa", "app_type": "native", "token_endpoint_auth_method": "none",
					"grant_types": []string{"authorization_code"}})
				for _, tc := range []struct {
					name   string
					form   url.Values
					status int
					code   string
					desc   string
				}{
					{"unknown client", with("client_id", "nope"), 401, "access_denied", "Unauthorized"},
					{"public client sending a secret", with("client_secret", "x"), 401, "access_denied", "Unauthorized"},
					{"confidential client without its secret", with("client_id", m2m["client_id"].(string)), 401, "access_denied", "Unauthorized"},
					{"grant not allowed for the client", with("client_id", noPassword["client_id"].(string)), 403, "unauthorized_client",
						"Grant type 'http://auth0.com/oauth/grant-type/password-realm' not allowed for the client."},
					{"connection not enabled for the client", with("client_id", other["client_id"].(string)), 400, "invalid_request", "the connection was disabled"},
					{"unknown realm", with("realm", "nope"), 400, "invalid_request", "the connection was not found"},
					{"missing username", with("username", ""), 400, "invalid_request", "Missing required parameter: username"},
					{"password grant without default directory", with("grant_type", "password"), 500, "server_error", "Authorization server not configured with default connection."},
					{"management audience", with("audience", e.url+"api/v2/"), 403, "access_denied", ""},
				} {
					if tc.name == "password grant without default directory" {
						tc.form.Del("realm")
					}
					r := e.token(t, tc.form)
					seen = append(seen, r.raw)
					if r.status != tc.status || r.str("error") != tc.code || !strings.Contains(r.str("error_description"), tc.desc) {
						t.Errorf("%s: %d %s", tc.name, r.status, r.raw)
					}
				}
				// The event of a connection refused for the client names it:
				// the admin must know which connection to enable.
				e.token(t, with("client_id", other["client_id"].(string)))
				if ev := lastEvent(t, e, "f"); ev["connection"] != "contoso-v2" || ev["connection_id"] == nil || ev["client_id"] != other["client_id"] {
					t.Errorf("event of a connection not enabled for the client: %v", ev)
				}
				if n := e.emu.Count("token") - before; n != 0 {
					t.Errorf("%d requests reached Entra", n)
				}
				status, _ := e.api(t, "PATCH", "api/v2/tenants/settings", map[string]any{"default_directory": "contoso-v2"})
				r := e.token(t, url.Values{"grant_type": {"password"}, "client_id": {e.clientID}, "username": {"alice@contoso.com"}, "password": {"Alice-Passw0rd!"}})
				if status != 200 || r.status != 200 || r.str("id_token") != "" {
					t.Errorf("password grant with default directory: %d %s", r.status, r.raw)
				}
			})

			t.Run("sync on each login vs first login", func(t *testing.T) {
				judy := "waad|a0000000-0000-4000-8000-00000000000a" // contoso-v1: on_first_login
				edit := map[string]any{"name": "Edited", "user_metadata": map[string]any{"k": "v"}}
				// contoso-v2 writes the root attributes on each login: Auth0
				// refuses to edit them, metadata included.
				if s, b := e.api(t, "PATCH", "api/v2/users/"+url.PathEscape(aliceID), edit); s != 400 || b["errorCode"] != "operation_not_supported" ||
					!strings.HasPrefix(b["message"].(string), "The following user attributes cannot be updated: name. The connection (contoso-v2) must") {
					t.Fatalf("patch alice on contoso-v2: %d %v", s, b)
				}
				if _, a := e.api(t, "GET", "api/v2/users/"+url.PathEscape(aliceID), nil); a["name"] != "Alice Adams" || a["user_metadata"] != nil {
					t.Fatalf("the refused PATCH changed alice: %v", a)
				}
				// An edit made while the sync was off is replaced at the next
				// login once it is on again.
				setSync := func(mode string) {
					t.Helper()
					_, raw := e.apiRaw(t, "GET", "api/v2/connections?name=contoso-v2", nil)
					var list []map[string]any
					_ = json.Unmarshal(raw, &list)
					opts := list[0]["options"].(map[string]any)
					opts["set_user_root_attributes"] = mode
					if s, b := e.api(t, "PATCH", "api/v2/connections/"+list[0]["id"].(string), map[string]any{"options": opts}); s != 200 {
						t.Fatalf("set contoso-v2 %s: %d %v", mode, s, b)
					}
				}
				setSync("on_first_login")
				for _, uid := range []string{aliceID, judy} {
					if s, b := e.api(t, "PATCH", "api/v2/users/"+url.PathEscape(uid), edit); s != 200 || b["name"] != "Edited" {
						t.Fatalf("patch %s: %d %v", uid, s, b)
					}
				}
				setSync("on_each_login")
				e.login(t, "contoso-v2", "alice@contoso.com", "Alice-Passw0rd!", "openid")
				e.login(t, "contoso-v1", "judy@contoso.onmicrosoft.com", "Judy-Passw0rd!", "openid")
				_, a := e.api(t, "GET", "api/v2/users/"+url.PathEscape(aliceID), nil)
				_, j := e.api(t, "GET", "api/v2/users/"+url.PathEscape(judy), nil)
				if a["name"] != "Alice Adams" || j["name"] != "Edited" {
					t.Errorf("after login: on_each_login name %v, on_first_login name %v", a["name"], j["name"])
				}
				if a["user_metadata"].(map[string]any)["k"] != "v" || a["logins_count"].(float64) < 3 {
					t.Errorf("alice %v", a)
				}
				status, raw := e.apiRaw(t, "GET", "api/v2/users?q="+url.QueryEscape(`email:"ALICE@contoso.com"`)+"&search_engine=v3&include_totals=true", nil)
				var list struct {
					Total int              `json:"total"`
					Users []map[string]any `json:"users"`
				}
				_ = json.Unmarshal(raw, &list)
				if status != 200 || list.Total != 1 || list.Users[0]["user_id"] != aliceID {
					t.Errorf("search by email: %d %s", status, raw)
				}
				status, raw = e.apiRaw(t, "GET", "api/v2/users-by-email?email=JUDY@contoso.onmicrosoft.com", nil)
				if status != 200 || !strings.Contains(string(raw), judy) {
					t.Errorf("users-by-email: %d %s", status, raw)
				}
				if s, _ := e.apiRaw(t, "DELETE", "api/v2/users/"+url.PathEscape(judy), nil); s != 204 {
					t.Errorf("delete: %d", s)
				}
				if s, _ := e.apiRaw(t, "GET", "api/v2/users/"+url.PathEscape(judy), nil); s != 404 {
					t.Errorf("get deleted user: %d", s)
				}
			})

			t.Run("App ID URI https://graph.windows.net: groups from Microsoft Graph instead", func(t *testing.T) {
				e.connection(t, "legacy-graph", map[string]any{
					"client_id": nativeAppID, "client_secret": nativeSecret, "tenant_domain": "contoso.onmicrosoft.com",
					"authority_host": e.emuURL, "graph_host": e.emuURL, "identity_api": "azure-active-directory-v1.0",
					"app_id": "https://graph.windows.net", "ext_groups": true, "ext_profile": true,
				})
				r := e.login(t, "legacy-graph", "judy@contoso.onmicrosoft.com", "Judy-Passw0rd!", "openid")
				if r.status != 200 {
					t.Fatalf("login: %d %s", r.status, r.raw)
				}
				_, user := e.api(t, "GET", "api/v2/users/"+url.PathEscape("waad|a0000000-0000-4000-8000-00000000000a"), nil)
				if groups, _ := user["groups"].([]any); !slices.Contains(groups, any("All Staff")) {
					t.Errorf("groups %v", user["groups"])
				}
			})

			t.Run("upstream tokens kept only when asked, shown only with read:user_idp_tokens", func(t *testing.T) {
				e.connection(t, "keeps-tokens", map[string]any{
					"client_id": nativeAppID, "client_secret": nativeSecret, "tenant_domain": "contoso.onmicrosoft.com",
					"authority_host": e.emuURL, "graph_host": e.emuURL, "ext_access_token": true, "ext_refresh_token": true,
				})
				if r := e.login(t, "keeps-tokens", "alice@contoso.com", "Alice-Passw0rd!", "openid"); r.status != 200 {
					t.Fatalf("login: %d %s", r.status, r.raw)
				}
				identity := func(token string) map[string]any {
					req, _ := http.NewRequest("GET", e.url+"api/v2/users/"+url.PathEscape(aliceID), nil)
					req.Header.Set("Authorization", "Bearer "+token)
					resp, err := e.hc.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					defer resp.Body.Close()
					var u map[string]any
					_ = json.NewDecoder(resp.Body).Decode(&u)
					return u["identities"].([]any)[0].(map[string]any)
				}
				if id := identity(e.token2(t, "read:users")); id["access_token"] != nil || id["refresh_token"] != nil {
					t.Errorf("IdP tokens without read:user_idp_tokens: %v", id)
				}
				if id := identity(e.token2(t, "read:users", "read:user_idp_tokens")); id["access_token"] == nil || id["refresh_token"] == nil {
					t.Errorf("IdP tokens missing with read:user_idp_tokens: %v", id)
				}
				// A login through a connection that does not keep them drops them.
				e.login(t, "contoso-v2", "alice@contoso.com", "Alice-Passw0rd!", "openid")
				if id := identity(e.token2(t, "read:users", "read:user_idp_tokens")); id["access_token"] != nil {
					t.Errorf("IdP tokens kept after a login through contoso-v2: %v", id)
				}
			})

			t.Run("try shows each step, the profile and the AADSTS hint", func(t *testing.T) {
				_, conns := e.apiRaw(t, "GET", "api/v2/connections?name=contoso-v1", nil)
				var list []map[string]any
				_ = json.Unmarshal(conns, &list)
				path := "api/v2/connections/" + list[0]["id"].(string) + "/try"
				status, ok := e.api(t, "POST", path, map[string]any{"username": "alice@contoso.com", "password": "Alice-Passw0rd!"})
				steps, _ := ok["steps"].([]any)
				warnings, _ := json.Marshal(ok["warnings"])
				notes, _ := json.Marshal(ok["notes"])
				if status != 200 || ok["ok"] != true || len(steps) != 3 || ok["user_id"] != aliceID ||
					!strings.Contains(string(warnings), "recommends you do not use the ROPC") || !strings.Contains(string(notes), "not Microsoft Graph") {
					t.Errorf("try ok: %d %v", status, ok)
				}
				// Each step says what it saw; the details are made only
				// for a trace, never for a plain login.
				for i, want := range []string{"issuer ", "access token for ", "tid "} {
					if s, _ := steps[min(i, len(steps)-1)].(map[string]any); !strings.Contains(s["detail"].(string), want) {
						t.Errorf("try step %d: %v, want a detail with %q", i, s, want)
					}
				}
				status, bad := e.api(t, "POST", path, map[string]any{"username": "dave@contoso.com", "password": canary})
				if d, _ := bad["error"].(map[string]any); status != 200 || bad["ok"] != false || d["code"] != "AADSTS50126" || d["hint"] == "" {
					t.Errorf("try failed login: %d %v", status, bad)
				}
				status, mfa := e.api(t, "POST", path, map[string]any{"username": "dave@contoso.com", "password": "Dave-Passw0rd!"})
				if d, _ := mfa["error"].(map[string]any); status != 200 || d["code"] != "AADSTS50076" || !strings.Contains(d["hint"].(string), "MFA, which the password flow cannot") {
					t.Errorf("try MFA: %d %v", status, mfa)
				}
				if _, users := e.apiRaw(t, "GET", "api/v2/users-by-email?email=dave@contoso.com", nil); string(users) != "[]\n" {
					t.Errorf("try stored a user: %s", users)
				}
				seen = append(seen, string(warnings))
			})

			t.Run("canary password never in logs, log events or responses", func(t *testing.T) {
				_, raw := e.apiRaw(t, "GET", "api/v2/logs?per_page=100", nil)
				for name, text := range map[string]string{"server logs": e.logs.String(), "log events": string(raw), "responses": strings.Join(seen, "\n")} {
					for _, secret := range []string{canary, "Alice-Passw0rd!", nativeSecret} {
						if strings.Contains(text, secret) {
							t.Errorf("%s contain a secret (%.10s…)", name, secret)
						}
					}
				}
			})
		})
	}
}

func userinfo(t *testing.T, e *env, at string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", e.url+"userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+at)
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	if resp.StatusCode != 200 {
		t.Fatalf("userinfo: %d", resp.StatusCode)
	}
	return m
}

// lastEvent returns the newest log event, of type typ when given.
func lastEvent(t *testing.T, e *env, typ string) map[string]any {
	t.Helper()
	path := "api/v2/logs?per_page=1"
	if typ != "" {
		path += "&q=" + url.QueryEscape("type:"+typ)
	}
	_, raw := e.apiRaw(t, "GET", path, nil)
	var events []map[string]any
	if err := json.Unmarshal(raw, &events); err != nil || len(events) == 0 {
		t.Fatalf("logs: %s", raw)
	}
	return events[0]
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
