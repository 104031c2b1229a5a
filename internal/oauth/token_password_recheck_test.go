package oauth_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	emulator "github.com/gatehouse/gatehouse/emulator/entra"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestConnectionChangedDuringLogin: a password login already past its
// checks when an administrator disables its connection for the client,
// or deletes it (and perhaps makes it again under the name), is refused
// once Entra answers, with the answer the first check would have given.
// No user is stored and no success is logged; the right password counts
// as no failure and leaves no block, so the next login goes through
// although brute-force protection allows a single attempt.
func TestConnectionChangedDuringLogin(t *testing.T) {
	const (
		disabled = `{"error":"invalid_request","error_description":"the connection was disabled"}`
		notFound = `{"error":"invalid_request","error_description":"the connection was not found"}`
	)
	cases := []struct {
		name string
		// change is the administrator's write; it returns the connection
		// the next login goes through, enabled for the client again.
		change func(t *testing.T, e *env, id, name string) string
		body   string
	}{
		{"disabled for the client", func(t *testing.T, e *env, id, name string) string {
			if s, b := e.apiRaw(t, "PATCH", "api/v2/connections/"+id+"/clients", []map[string]any{{"client_id": e.clientID, "status": false}}); s != http.StatusNoContent {
				t.Fatalf("disable for the client: %d %s", s, b)
			}
			return id
		}, disabled},
		{"enabled_clients emptied", func(t *testing.T, e *env, id, name string) string {
			if s, b := e.api(t, "PATCH", "api/v2/connections/"+id, map[string]any{"enabled_clients": []string{}}); s != http.StatusOK {
				t.Fatalf("empty enabled_clients: %d %v", s, b)
			}
			return id
		}, disabled},
		{"deleted", func(t *testing.T, e *env, id, name string) string {
			if s, b := e.apiRaw(t, "DELETE", "api/v2/connections/"+id, nil); s != http.StatusAccepted {
				t.Fatalf("delete: %d %s", s, b)
			}
			return ""
		}, notFound},
		{"deleted and made again", func(t *testing.T, e *env, id, name string) string {
			if s, b := e.apiRaw(t, "DELETE", "api/v2/connections/"+id, nil); s != http.StatusAccepted {
				t.Fatalf("delete: %d %s", s, b)
			}
			return e.connection(t, name, recheckOptions(e))
		}, notFound},
	}
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := recheckEnv(t, backend, len(cases), true)
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					name, user := fmt.Sprintf("recheck-%d", i), loadUser(i)
					userID := fmt.Sprintf("waad|d0000000-0000-4000-8000-%012d", i)
					id := e.connection(t, name, recheckOptions(e))
					login := func() tokenResult { return e.login(t, name, user, loadPassword, "openid") }

					var next string
					r := whileEntraAnswers(t, e, login, func() { next = tc.change(t, e, id, name) })
					if r.status != http.StatusBadRequest || strings.TrimSpace(r.raw) != tc.body {
						t.Fatalf("login: %d %s %q, want 400 %s", r.status, r.str("error"), r.str("error_description"), tc.body)
					}
					if s, b := e.apiRaw(t, "GET", "api/v2/users/"+url.PathEscape(userID), nil); s != http.StatusNotFound {
						t.Errorf("the refused login stored its user: %d %s", s, b)
					}
					var failed map[string]any
					evs := userEvents(t, e, user)
					if len(evs) != 1 {
						t.Errorf("the refused login logged %d events, want one: %v", len(evs), evs)
					}
					for _, ev := range evs {
						switch ev["type"] {
						case "s":
							t.Errorf("the refused login logged a success: %v", ev)
						case "f":
							failed = ev
						}
					}
					if d, _ := failed["details"].(map[string]any); failed == nil || failed["connection"] != name || failed["connection_id"] != id ||
						d["error"] != "invalid_request" {
						t.Errorf("no f event naming the connection: %v", failed)
					}
					_, blocks := e.apiRaw(t, "GET", "api/v2/user-blocks?identifier="+url.QueryEscape(user), nil)
					if strings.TrimSpace(string(blocks)) != `{"blocked_for":[]}` {
						t.Errorf("the refused login left a block: %s", blocks)
					}

					// The attempt was settled as the right password it
					// was: with one attempt allowed, the next login passes.
					if next == "" {
						return
					}
					if next == id {
						if s, b := e.apiRaw(t, "PATCH", "api/v2/connections/"+id+"/clients", []map[string]any{{"client_id": e.clientID, "status": true}}); s != http.StatusNoContent {
							t.Fatalf("enable again: %d %s", s, b)
						}
					}
					if r := login(); r.status != http.StatusOK || r.str("id_token") == "" {
						t.Errorf("next login: %d %s", r.status, r.raw)
					}
				})
			}
		})
	}
}

// recheckEnv is an env whose emulator answers every request after 500 ms,
// so that an administrator's write lands while a login waits on Entra's
// token endpoint, with users loaded for the cases; with oneAttempt,
// brute-force protection allows a single failed attempt, so that a right
// password wrongly counted as a failure would block the next login.
func recheckEnv(t *testing.T, backend string, users int, oneAttempt bool) *env {
	t.Helper()
	e := newEnv(t, backend, envOptions{emu: emulator.Options{Latency: 500 * time.Millisecond}, loadUsers: users})
	if oneAttempt {
		if s, b := e.api(t, "PATCH", "api/v2/attack-protection/brute-force-protection", map[string]any{"max_attempts": 1}); s != http.StatusOK {
			t.Fatalf("brute-force settings: %d %v", s, b)
		}
	}
	return e
}

// recheckOptions are the options of a v2 connection to the emulator's
// Contoso tenant.
func recheckOptions(e *env) map[string]any {
	return map[string]any{
		"client_id": nativeAppID, "client_secret": nativeSecret, "tenant_domain": "contoso.onmicrosoft.com",
		"authority_host": e.emuURL, "graph_host": e.emuURL,
	}
}

// userEvents returns the tenant log events of a username.
func userEvents(t *testing.T, e *env, user string) []map[string]any {
	t.Helper()
	_, raw := e.apiRaw(t, "GET", "api/v2/logs?per_page=100", nil)
	var all, mine []map[string]any
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatalf("logs: %s", raw)
	}
	for _, ev := range all {
		if ev["user_name"] == user {
			mine = append(mine, ev)
		}
	}
	return mine
}

// TestClientChangedDuringLogin: a password login already past its checks
// when an administrator deletes its client, or takes the grant out of the
// client's grant_types, is refused once Entra answers, with the answer
// the first check would now give (docs/errors.md, "Before Entra is
// called"). No user is stored, one fepft event and no success is logged,
// and the right password counts as no failure and leaves no block, so the
// next login goes through although brute-force protection allows a single
// attempt.
func TestClientChangedDuringLogin(t *testing.T) {
	const (
		realmGrant   = "http://auth0.com/oauth/grant-type/password-realm"
		unauthorized = `{"error":"access_denied","error_description":"Unauthorized"}`
	)
	type client struct{ id, secret string }
	cases := []struct {
		name string
		// confidential clients authenticate with HTTP Basic.
		confidential bool
		grant        string
		// change is the administrator's write; it returns the client the
		// next login goes through.
		change    func(t *testing.T, e *env, c client) client
		body      string
		challenge bool
	}{
		{"public client deleted", false, realmGrant, func(t *testing.T, e *env, c client) client {
			if s, b := e.apiRaw(t, "DELETE", "api/v2/clients/"+c.id, nil); s != http.StatusNoContent {
				t.Fatalf("delete client: %d %s", s, b)
			}
			return client{}
		}, unauthorized, false},
		{"confidential client deleted", true, realmGrant, func(t *testing.T, e *env, c client) client {
			if s, b := e.apiRaw(t, "DELETE", "api/v2/clients/"+c.id, nil); s != http.StatusNoContent {
				t.Fatalf("delete client: %d %s", s, b)
			}
			return client{}
		}, unauthorized, true},
		{"password-realm taken out", false, realmGrant, func(t *testing.T, e *env, c client) client {
			if s, b := e.api(t, "PATCH", "api/v2/clients/"+c.id, map[string]any{"grant_types": []string{"password"}}); s != http.StatusOK {
				t.Fatalf("patch grant_types: %d %v", s, b)
			}
			return c
		}, `{"error":"unauthorized_client","error_description":"Grant type 'http://auth0.com/oauth/grant-type/password-realm' not allowed for the client."}`, false},
		{"password taken out", true, "password", func(t *testing.T, e *env, c client) client {
			if s, b := e.api(t, "PATCH", "api/v2/clients/"+c.id, map[string]any{"grant_types": []string{realmGrant}}); s != http.StatusOK {
				t.Fatalf("patch grant_types: %d %v", s, b)
			}
			return c
		}, `{"error":"unauthorized_client","error_description":"Grant type 'password' not allowed for the client."}`, false},
	}
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := recheckEnv(t, backend, len(cases), true)
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					name, user := fmt.Sprintf("client-recheck-%d", i), loadUser(i)
					userID := fmt.Sprintf("waad|d0000000-0000-4000-8000-%012d", i)
					newClient := func(t *testing.T) client {
						t.Helper()
						body := map[string]any{"name": "Contoso Mobile", "app_type": "native", "token_endpoint_auth_method": "none",
							"grant_types": []string{"password", realmGrant}}
						if tc.confidential {
							body = map[string]any{"name": "Contoso Web", "app_type": "regular_web", "token_endpoint_auth_method": "client_secret_basic",
								"grant_types": []string{"password", realmGrant}}
						}
						s, b := e.api(t, "POST", "api/v2/clients", body)
						if s != http.StatusCreated {
							t.Fatalf("create client: %d %v", s, b)
						}
						c := client{id: b["client_id"].(string)}
						if tc.confidential {
							c.secret = b["client_secret"].(string)
						}
						return c
					}
					c := newClient(t)
					s, b := e.api(t, "POST", "api/v2/connections", map[string]any{"name": name, "strategy": "waad", "options": recheckOptions(e),
						"enabled_clients": []string{c.id}})
					if s != http.StatusCreated {
						t.Fatalf("create connection: %d %v", s, b)
					}
					connID := b["id"].(string)
					if tc.grant == "password" {
						if s, b := e.api(t, "PATCH", "api/v2/tenants/settings", map[string]any{"default_directory": name}); s != http.StatusOK {
							t.Fatalf("default_directory: %d %v", s, b)
						}
					}
					login := func(c client) tokenResult {
						form := url.Values{"grant_type": {tc.grant}, "username": {user}, "password": {loadPassword}, "scope": {"openid"}}
						if tc.grant == realmGrant {
							form.Set("realm", name)
						}
						h := http.Header{}
						if c.secret != "" {
							h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(c.id+":"+c.secret)))
						} else {
							form.Set("client_id", c.id)
						}
						return e.tokenWith(t, form, h)
					}

					var next client
					r := whileEntraAnswers(t, e, func() tokenResult { return login(c) }, func() { next = tc.change(t, e, c) })
					if r.status == http.StatusOK || strings.TrimSpace(r.raw) != tc.body {
						t.Fatalf("login: %d %s, want %s", r.status, r.raw, tc.body)
					}
					if got := r.header.Get("WWW-Authenticate") != ""; got != tc.challenge {
						t.Errorf("WWW-Authenticate %q, want one: %v", r.header.Get("WWW-Authenticate"), tc.challenge)
					}
					if s, b := e.apiRaw(t, "GET", "api/v2/users/"+url.PathEscape(userID), nil); s != http.StatusNotFound {
						t.Errorf("the refused login stored its user: %d %s", s, b)
					}
					evs := userEvents(t, e, user)
					if len(evs) != 1 || evs[0]["type"] != "fepft" || evs[0]["client_id"] != c.id {
						t.Errorf("events of the refused login: %v, want one fepft of the client", evs)
					} else if d, _ := evs[0]["details"].(map[string]any); d["error"] != r.str("error") {
						t.Errorf("event details: %v", d)
					}
					_, blocks := e.apiRaw(t, "GET", "api/v2/user-blocks?identifier="+url.QueryEscape(user), nil)
					if strings.TrimSpace(string(blocks)) != `{"blocked_for":[]}` {
						t.Errorf("the refused login left a block: %s", blocks)
					}

					// The attempt was settled as the right password it
					// was: with one attempt allowed, the next login passes.
					if next.id == "" {
						next = newClient(t)
						if s, b := e.apiRaw(t, "PATCH", "api/v2/connections/"+connID+"/clients", []map[string]any{{"client_id": next.id, "status": true}}); s != http.StatusNoContent {
							t.Fatalf("enable the new client: %d %s", s, b)
						}
					} else if s, b := e.api(t, "PATCH", "api/v2/clients/"+next.id, map[string]any{"grant_types": []string{"password", realmGrant}}); s != http.StatusOK {
						t.Fatalf("restore grant_types: %d %v", s, b)
					}
					if r := login(next); r.status != http.StatusOK || r.str("id_token") == "" {
						t.Errorf("next login: %d %s", r.status, r.raw)
					}
				})
			}
		})
	}
}

// TestConnectionTenantsChangedDuringLogin: a password login under way
// when an administrator narrows the Entra tenants its connection admits
// (here another tenant_domain) was answered by Entra under the old
// options: it must not store its user nor get tokens, whose refresh token
// would be refused at once anyway. It is answered as a moment's
// unavailability, so that the app's retry is answered under the new
// options; the right password counts as no failure.
func TestConnectionTenantsChangedDuringLogin(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := recheckEnv(t, backend, 1, false)
			if s, b := e.api(t, "PATCH", "api/v2/attack-protection/brute-force-protection", map[string]any{"max_attempts": 1}); s != http.StatusOK {
				t.Fatalf("brute-force settings: %d %v", s, b)
			}
			refreshClient(t, e, map[string]any{"rotation_type": "non-rotating", "expiration_type": "non-expiring"})
			const name, userID = "tenants-recheck", "waad|d0000000-0000-4000-8000-000000000000"
			user := loadUser(0)
			id := e.connection(t, name, recheckOptions(e))
			options := func(t *testing.T, domain string) {
				t.Helper()
				o := recheckOptions(e)
				o["tenant_domain"] = domain
				if s, b := e.api(t, "PATCH", "api/v2/connections/"+id, map[string]any{"options": o}); s != http.StatusOK {
					t.Fatalf("patch options: %d %v", s, b)
				}
			}
			login := func() tokenResult { return e.login(t, name, user, loadPassword, "openid offline_access") }

			r := whileEntraAnswers(t, e, login, func() { options(t, "fabrikam.onmicrosoft.com") })
			if r.status != http.StatusServiceUnavailable || r.str("error") != "temporarily_unavailable" || r.header.Get("Retry-After") == "" {
				t.Fatalf("login: %d %s %v", r.status, r.raw, r.header)
			}
			if s, b := e.apiRaw(t, "GET", "api/v2/users/"+url.PathEscape(userID), nil); s != http.StatusNotFound {
				t.Errorf("the refused login stored its user: %d %s", s, b)
			}
			if evs := userEvents(t, e, user); len(evs) != 1 || evs[0]["type"] != "fepft" {
				t.Errorf("events of the refused login: %v, want one fepft", evs)
			}
			_, blocks := e.apiRaw(t, "GET", "api/v2/user-blocks?identifier="+url.QueryEscape(user), nil)
			if strings.TrimSpace(string(blocks)) != `{"blocked_for":[]}` {
				t.Errorf("the refused login left a block: %s", blocks)
			}
			// Back to the user's tenant: with one attempt allowed, the next
			// login passes, and its refresh token is good.
			options(t, "contoso.onmicrosoft.com")
			if r := login(); r.status != http.StatusOK || r.str("refresh_token") == "" {
				t.Fatalf("next login: %d %s", r.status, r.raw)
			} else if r := e.token(t, url.Values{"grant_type": {"refresh_token"}, "client_id": {e.clientID}, "refresh_token": {r.str("refresh_token")}}); r.status != http.StatusOK {
				t.Errorf("refresh of the next login: %d %s", r.status, r.raw)
			}
		})
	}
}

// whileEntraAnswers runs login, makes the administrator's change once the
// password has reached Entra (the login is then past every check made
// before the upstream call) and returns the login's answer.
func whileEntraAnswers(t *testing.T, e *env, login func() tokenResult, change func()) tokenResult {
	t.Helper()
	sent := e.emu.Count("token:password")
	answer := make(chan tokenResult, 1)
	go func() { answer <- login() }()
	for deadline := time.Now().Add(10 * time.Second); e.emu.Count("token:password") == sent; {
		select {
		case r := <-answer:
			t.Fatalf("the login never reached Entra: %d %s", r.status, r.raw)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the login never reached Entra")
		}
		time.Sleep(5 * time.Millisecond)
	}
	change()
	r := <-answer
	if n := e.emu.Count("token:password") - sent; n != 1 {
		t.Errorf("Entra was called %d times, want 1", n)
	}
	return r
}

// TestAPIChangedDuringLogin: a password login grants what its client and
// API allow once Entra has answered, not what they allowed when it began:
// an API deleted meanwhile is refused as the first check would refuse it,
// with no user stored, and a scope or offline access taken away meanwhile
// is not granted.
func TestAPIChangedDuringLogin(t *testing.T) {
	const (
		api = "https://api.contoso.example/"
	)
	cases := []struct {
		name   string
		change func(t *testing.T, e *env, apiID string)
		// status is the login's answer; scope the access token's, and
		// refresh whether a refresh token is issued, when it is 200.
		status  int
		scope   string
		refresh bool
	}{
		{"unchanged", func(*testing.T, *env, string) {}, http.StatusOK, "openid offline_access read:a write:b", true},
		{"API deleted", func(t *testing.T, e *env, apiID string) {
			if s, b := e.apiRaw(t, "DELETE", "api/v2/resource-servers/"+apiID, nil); s != http.StatusNoContent {
				t.Fatalf("delete API: %d %s", s, b)
			}
		}, http.StatusForbidden, "", false},
		{"scope taken out of the API", func(t *testing.T, e *env, apiID string) {
			if s, b := e.apiRaw(t, "PATCH", "api/v2/resource-servers/"+apiID, map[string]any{"scopes": []map[string]string{{"value": "read:a"}}}); s != http.StatusOK {
				t.Fatalf("patch API: %d %s", s, b)
			}
		}, http.StatusOK, "openid offline_access read:a", true},
		{"offline access withdrawn", func(t *testing.T, e *env, apiID string) {
			if s, b := e.apiRaw(t, "PATCH", "api/v2/resource-servers/"+apiID, map[string]any{"allow_offline_access": false}); s != http.StatusOK {
				t.Fatalf("patch API: %d %s", s, b)
			}
		}, http.StatusOK, "openid read:a write:b", false},
		{"refresh_token taken out of the client", func(t *testing.T, e *env, _ string) {
			if s, b := e.api(t, "PATCH", "api/v2/clients/"+e.clientID, map[string]any{"grant_types": []string{"password", "http://auth0.com/oauth/grant-type/password-realm"}}); s != http.StatusOK {
				t.Fatalf("patch client: %d %v", s, b)
			}
		}, http.StatusOK, "openid read:a write:b", false},
	}
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := recheckEnv(t, backend, len(cases), false)
			const name = "api-recheck"
			e.connection(t, name, recheckOptions(e))
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					refreshClient(t, e, map[string]any{"rotation_type": "non-rotating", "expiration_type": "non-expiring"})
					s, b := e.api(t, "POST", "api/v2/resource-servers", map[string]any{"identifier": api, "name": "Contoso API", "allow_offline_access": true,
						"scopes": []map[string]string{{"value": "read:a"}, {"value": "write:b"}}})
					if s != http.StatusCreated {
						t.Fatalf("create API: %d %v", s, b)
					}
					apiID := b["id"].(string)
					t.Cleanup(func() { e.apiRaw(t, "DELETE", "api/v2/resource-servers/"+apiID, nil) })
					user, userID := loadUser(i), fmt.Sprintf("waad|d0000000-0000-4000-8000-%012d", i)
					login := func() tokenResult {
						return e.token(t, url.Values{"grant_type": {"http://auth0.com/oauth/grant-type/password-realm"}, "client_id": {e.clientID},
							"realm": {name}, "username": {user}, "password": {loadPassword}, "scope": {"openid offline_access read:a write:b"}, "audience": {api}})
					}
					r := whileEntraAnswers(t, e, login, func() { tc.change(t, e, apiID) })
					if r.status != tc.status {
						t.Fatalf("login: %d %s, want %d", r.status, r.raw, tc.status)
					}
					if tc.status != http.StatusOK {
						if r.str("error") != "access_denied" || r.str("error_description") != "Service not enabled within domain: "+api {
							t.Errorf("login: %d %s", r.status, r.raw)
						}
						if s, b := e.apiRaw(t, "GET", "api/v2/users/"+url.PathEscape(userID), nil); s != http.StatusNotFound {
							t.Errorf("the refused login stored its user: %d %s", s, b)
						}
						if evs := userEvents(t, e, user); len(evs) != 1 || evs[0]["type"] != "fepft" {
							t.Errorf("events of the refused login: %v, want one fepft", evs)
						}
						return
					}
					if got, _ := jwtClaims(t, r.str("access_token"))["scope"].(string); got != tc.scope {
						t.Errorf("access token's scope %q, want %q", got, tc.scope)
					}
					if got := r.str("refresh_token") != ""; got != tc.refresh {
						t.Errorf("refresh token issued: %v, want %v", got, tc.refresh)
					}
				})
			}
		})
	}
}
