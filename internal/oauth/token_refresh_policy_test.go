package oauth_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// connectionID finds a connection's id by its name.
func connectionID(t *testing.T, e *env, name string) string {
	t.Helper()
	_, raw := e.apiRaw(t, "GET", "api/v2/connections?name="+url.QueryEscape(name), nil)
	var list []map[string]any
	if err := json.Unmarshal(raw, &list); err != nil || len(list) != 1 {
		t.Fatalf("connection %s: %s", name, raw)
	}
	return list[0]["id"].(string)
}

// wantPolicyRefusal checks that a refresh was refused because what its
// token was issued under no longer allows it, and that the refusal is the
// fertft event saying why.
func wantPolicyRefusal(t *testing.T, e *env, what string, r tokenResult, desc string) {
	t.Helper()
	if r.status != http.StatusForbidden || r.str("error") != "invalid_grant" || r.str("error_description") != desc {
		t.Errorf("%s: %d %s, want 403 invalid_grant %q", what, r.status, r.raw, desc)
		return
	}
	ev := lastEvent(t, e, "")
	details, _ := ev["details"].(map[string]any)
	if ev["type"] != "fertft" || ev["user_id"] == nil || details["error"] != "invalid_grant" || details["error_description"] != desc || details["cause"] == nil {
		t.Errorf("%s: event %v, want fertft saying why", what, ev)
	}
}

// TestRefreshFollowsTheConfiguration: a refresh token works only while
// the connection it was issued through is enabled for the client and its
// API allows offline access, checked at each exchange. Undoing the change
// makes the same tokens work again.
func TestRefreshFollowsTheConfiguration(t *testing.T) {
	const (
		notEnabled = "The connection is not enabled for this client."
		noOffline  = "The API no longer allows offline access."
		gone       = "The connection no longer exists."
	)
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{quietLogs: true})
			const api = "https://api.contoso.example/"
			status, body := e.api(t, "POST", "api/v2/resource-servers", map[string]any{"identifier": api, "name": "Contoso API",
				"allow_offline_access": true, "scopes": []map[string]string{{"value": "read:a"}}})
			if status != http.StatusCreated {
				t.Fatalf("create API: %d %v", status, body)
			}
			apiID := body["id"].(string)
			v2 := connectionID(t, e, "contoso-v2")
			// use exchanges tok and returns the token to use next: the
			// successor of a rotating token, else tok itself.
			use := func(t *testing.T, what, tok string) string {
				t.Helper()
				r := e.refresh(t, tok, "")
				if r.status != http.StatusOK || r.str("access_token") == "" {
					t.Fatalf("%s: %d %s", what, r.status, r.raw)
				}
				if next := r.str("refresh_token"); next != "" {
					return next
				}
				return tok
			}
			mgmt := func(t *testing.T, method, path string, body any) {
				t.Helper()
				if status, raw := e.apiRaw(t, method, path, body); status >= 300 {
					t.Fatalf("%s %s: %d %s", method, path, status, raw)
				}
			}
			// The two Management API ways to change a connection's
			// enabled_clients, each undone by the other.
			viaClients := func(on bool) func(t *testing.T) {
				return func(t *testing.T) {
					mgmt(t, "PATCH", "api/v2/connections/"+v2+"/clients", []map[string]any{{"client_id": e.clientID, "status": on}})
				}
			}
			viaConnection := func(on bool) func(t *testing.T) {
				return func(t *testing.T) {
					enabled := []string{}
					if on {
						enabled = append(enabled, e.clientID)
					}
					mgmt(t, "PATCH", "api/v2/connections/"+v2, map[string]any{"enabled_clients": enabled})
				}
			}
			offline := func(on bool) func(t *testing.T) {
				return func(t *testing.T) {
					mgmt(t, "PATCH", "api/v2/resource-servers/"+apiID, map[string]any{"allow_offline_access": on})
				}
			}
			changes := []struct {
				name            string
				audience, desc  string
				disable, enable func(t *testing.T)
			}{
				{"connection disabled through its clients", "", notEnabled, viaClients(false), viaConnection(true)},
				{"connection disabled through enabled_clients", "", notEnabled, viaConnection(false), viaClients(true)},
				{"connection disabled, token for an API", api, notEnabled, viaClients(false), viaClients(true)},
				{"API no longer allows offline access", api, noOffline, offline(false), offline(true)},
			}

			for _, rotation := range []string{"rotating", "non-rotating"} {
				t.Run(rotation, func(t *testing.T) {
					refreshClient(t, e, map[string]any{"rotation_type": rotation, "expiration_type": "expiring", "leeway": 0,
						"infinite_token_lifetime": false, "token_lifetime": 3600, "infinite_idle_token_lifetime": false, "idle_token_lifetime": 1800})
					for _, c := range changes {
						t.Run(c.name, func(t *testing.T) {
							rt := use(t, "before the change", e.refreshLogin(t, "openid offline_access", c.audience))
							c.disable(t)
							defer c.enable(t)
							wantPolicyRefusal(t, e, "after the change", e.refresh(t, rt, ""), c.desc)
							// Refused, not revoked: undoing the change brings
							// the token back.
							c.enable(t)
							use(t, "after undoing the change", rt)
						})
					}
				})
			}

			t.Run("a rotated token in a refused request is reuse", func(t *testing.T) {
				refreshClient(t, e, rotating(0))
				for _, c := range changes {
					t.Run(c.name, func(t *testing.T) {
						rt1 := e.refreshLogin(t, "openid offline_access", c.audience)
						rt2 := use(t, "rotation", rt1)
						c.disable(t)
						defer c.enable(t)
						wantPolicyRefusal(t, e, "latest token after the change", e.refresh(t, rt2, ""), c.desc)
						wantBadRefresh(t, "rotated token after the change", e.refresh(t, rt1, ""))
						if ev := lastEvent(t, e, ""); ev["type"] != "ferrt" {
							t.Errorf("event of the reuse: %v, want ferrt", ev)
						}
						c.enable(t)
						wantBadRefresh(t, "latest token of the revoked family", e.refresh(t, rt2, ""))
					})
				}
			})

			t.Run("within the leeway the previous token is refused, not reuse", func(t *testing.T) {
				refreshClient(t, e, rotating(30))
				rt1 := e.refreshLogin(t, "openid offline_access", "")
				rt2 := use(t, "rotation", rt1)
				viaClients(false)(t)
				defer viaClients(true)(t)
				wantPolicyRefusal(t, e, "previous token within the leeway", e.refresh(t, rt1, ""), notEnabled)
				viaClients(true)(t)
				use(t, "latest token once enabled again", rt2)
			})

			t.Run("a database failure reading the connection is not an invalid token", func(t *testing.T) {
				refreshClient(t, e, map[string]any{"rotation_type": "non-rotating", "expiration_type": "non-expiring"})
				rt := e.refreshLogin(t, "openid offline_access", "")
				db := openDB(t, e.dsn)
				if _, err := db.Exec("ALTER TABLE connection_clients RENAME TO connection_clients_away"); err != nil {
					t.Fatal(err)
				}
				back := func() {
					if _, err := db.Exec("ALTER TABLE connection_clients_away RENAME TO connection_clients"); err != nil {
						t.Fatal(err)
					}
				}
				r := func() tokenResult {
					defer back()
					// Any Management API write empties the cache; a
					// client's would read the enablements.
					offline(true)(t)
					return e.refresh(t, rt, "")
				}()
				if r.status != http.StatusInternalServerError || r.str("error") != "server_error" {
					t.Errorf("refresh while the enablement cannot be read: %d %s, want 500 server_error", r.status, r.raw)
				}
				use(t, "once the enablement can be read again", rt)
			})

			t.Run("the connection is the one the token was issued through", func(t *testing.T) {
				refreshClient(t, e, rotating(0))
				rt := use(t, "token of a v2 login", e.refreshLogin(t, "openid offline_access", ""))
				// The same user through the other connection of the tenant:
				// the user's connection is now v1.
				if r := e.login(t, "contoso-v1", "alice@contoso.com", "Alice-Passw0rd!", "openid"); r.status != http.StatusOK {
					t.Fatalf("v1 login: %d %s", r.status, r.raw)
				}
				if _, u := e.api(t, "GET", "api/v2/users/"+url.PathEscape(aliceID), nil); u["identities"].([]any)[0].(map[string]any)["connection"] != "contoso-v1" {
					t.Fatalf("user after the v1 login: %v", u)
				}
				v1 := connectionID(t, e, "contoso-v1")
				mgmt(t, "PATCH", "api/v2/connections/"+v1+"/clients", []map[string]any{{"client_id": e.clientID, "status": false}})
				defer mgmt(t, "PATCH", "api/v2/connections/"+v1+"/clients", []map[string]any{{"client_id": e.clientID, "status": true}})
				rt = use(t, "v2 token with v1 disabled", rt)
				viaClients(false)(t)
				defer viaClients(true)(t)
				wantPolicyRefusal(t, e, "v2 token with v2 disabled", e.refresh(t, rt, ""), notEnabled)
				viaClients(true)(t)
				rt = use(t, "v2 token with v2 enabled again", rt)

				// A token stored before its connection was recorded is
				// checked against the user's.
				id, _, _ := strings.Cut(rt, ".")
				if _, err := openDB(t, e.dsn).Exec("UPDATE refresh_tokens SET connection = '' WHERE id = $1", id); err != nil {
					t.Fatal(err)
				}
				wantPolicyRefusal(t, e, "token without a connection, user's connection disabled", e.refresh(t, rt, ""), notEnabled)
			})

			// Last: it deletes the v1 connection and makes it again.
			t.Run("connection deleted, then made again", func(t *testing.T) {
				refreshClient(t, e, map[string]any{"rotation_type": "non-rotating", "expiration_type": "non-expiring"})
				login := func() string {
					r := e.login(t, "contoso-v1", "judy@contoso.onmicrosoft.com", "Judy-Passw0rd!", "openid offline_access")
					if r.status != http.StatusOK || r.str("refresh_token") == "" {
						t.Fatalf("login: %d %s", r.status, r.raw)
					}
					return r.str("refresh_token")
				}
				rt, orphan := login(), login()
				// A token stored after its connection's tokens went (a
				// login in flight while it was deleted) names a connection
				// that is gone: refused.
				id, _, _ := strings.Cut(orphan, ".")
				if _, err := openDB(t, e.dsn).Exec("UPDATE refresh_tokens SET connection = 'contoso-gone' WHERE id = $1", id); err != nil {
					t.Fatal(err)
				}
				wantPolicyRefusal(t, e, "token of a connection that is gone", e.refresh(t, orphan, ""), gone)
				// Deleting the connection deletes its tokens, for good.
				mgmt(t, "DELETE", "api/v2/connections/"+connectionID(t, e, "contoso-v1"), nil)
				wantBadRefresh(t, "token of a deleted connection", e.refresh(t, rt, ""))
				e.connection(t, "contoso-v1", map[string]any{
					"client_id": nativeAppID, "client_secret": nativeSecret, "tenant_domain": "contoso.onmicrosoft.com",
					"authority_host": e.emuURL, "graph_host": e.emuURL,
					"identity_api": "azure-active-directory-v1.0", "app_id": webAPIURI,
				})
				wantBadRefresh(t, "token of a deleted connection made again", e.refresh(t, rt, ""))
				use(t, "token of a login through the new connection", login())
			})

			// Last: it deletes the API.
			t.Run("a rotated token of a deleted API is reuse", func(t *testing.T) {
				refreshClient(t, e, rotating(0))
				rt1 := e.refreshLogin(t, "openid offline_access", api)
				rt2 := use(t, "rotation", rt1)
				mgmt(t, "DELETE", "api/v2/resource-servers/"+apiID, nil)
				wantBadRefresh(t, "rotated token of the deleted API", e.refresh(t, rt1, ""))
				if ev := lastEvent(t, e, ""); ev["type"] != "ferrt" {
					t.Errorf("event of the reuse: %v, want ferrt", ev)
				}
				mgmt(t, "POST", "api/v2/resource-servers", map[string]any{"identifier": api, "name": "Contoso API", "allow_offline_access": true})
				wantBadRefresh(t, "latest token of the revoked family, API made again", e.refresh(t, rt2, ""))
			})
		})
	}
}

// refreshWithTablesAway fills the cache (fill), then refreshes with the
// tables renamed away, up to five times until the refresh succeeds: on
// PostgreSQL a Management API write's own notification clears the cache
// again when it comes back, a moment later, perhaps after fill. A refresh
// that needs a table fails every time.
func refreshWithTablesAway(t *testing.T, e *env, fill func() string, tables ...string) tokenResult {
	t.Helper()
	db := openDB(t, e.dsn)
	rename := func(from, to string) {
		if _, err := db.Exec("ALTER TABLE " + from + " RENAME TO " + to); err != nil {
			t.Fatal(err)
		}
	}
	var r tokenResult
	for try := 0; try < 5 && r.status != http.StatusOK; try++ {
		rt := fill()
		for _, table := range tables {
			rename(table, table+"_away")
		}
		r = e.refresh(t, rt, "")
		for _, table := range tables {
			rename(table+"_away", table)
		}
	}
	return r
}

// TestRefreshPolicyFromTheCache: the checks of the connection read what
// the login just cached, so an exchange adds no database statement for
// them: with the tables gone, a refresh right after the login still
// succeeds.
func TestRefreshPolicyFromTheCache(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{quietLogs: true})
			refreshClient(t, e, rotating(0))
			// Well within the cache's 5 s of the login's lookups.
			if r := refreshWithTablesAway(t, e, func() string { return e.refreshLogin(t, "openid offline_access", "") }, "connections", "connection_clients"); r.status != http.StatusOK {
				t.Errorf("refresh with the connection tables gone: %d %s, want 200 from the cache", r.status, r.raw)
			}
		})
	}
}

// TestRefreshPolicyFromTheCachedConnection: the connection the cache
// holds says which clients it is enabled for, so a refresh needs no
// statement for its client's enablement, also when no request of that
// client put it in the cache (here another client's login, refused since
// the connection is not enabled for it, cached the connection).
func TestRefreshPolicyFromTheCachedConnection(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{quietLogs: true})
			refreshClient(t, e, rotating(0))
			rt := e.refreshLogin(t, "openid offline_access", "")
			// A Management API write: the cache is empty again.
			status, body := e.api(t, "POST", "api/v2/clients", map[string]any{
				"name": "Contoso Kiosk", "app_type": "native", "token_endpoint_auth_method": "none",
				"grant_types": []string{"http://auth0.com/oauth/grant-type/password-realm"},
			})
			if status != http.StatusCreated {
				t.Fatalf("create client: %d %v", status, body)
			}
			otherLogin := func() string {
				other := e.token(t, url.Values{"grant_type": {"http://auth0.com/oauth/grant-type/password-realm"},
					"client_id": {body["client_id"].(string)}, "realm": {"contoso-v2"},
					"username": {"alice@contoso.com"}, "password": {"Alice-Passw0rd!"}, "scope": {"openid"}})
				if other.status != http.StatusBadRequest || other.str("error_description") != "the connection was disabled" {
					t.Fatalf("login of a client the connection is not enabled for: %d %s", other.status, other.raw)
				}
				return rt
			}
			if r := refreshWithTablesAway(t, e, otherLogin, "connection_clients"); r.status != http.StatusOK {
				t.Errorf("refresh with the connection cached and connection_clients gone: %d %s, want 200 from the cache", r.status, r.raw)
			}
		})
	}
}

// TestRefreshTokenOfALoginWhileItsConnectionIsDeleted: a login that Entra
// answers after its connection was deleted on another replica, whose
// notification has not reached this one, passes its second check on the
// cached connection and stores its refresh token after the deletion took
// the connection's tokens away. The token is refused while no connection
// has the name and still once one is made again under it, as the tokens
// the deletion took would be; a login through the new connection
// refreshes. (A deletion this replica makes refuses the login instead:
// TestConnectionChangedDuringLogin.)
func TestRefreshTokenOfALoginWhileItsConnectionIsDeleted(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			// onUpstream runs when Entra receives a password grant.
			var onUpstream atomic.Pointer[func()]
			e := newEnv(t, backend, envOptions{quietLogs: true, upstream: func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if f := onUpstream.Swap(nil); f != nil {
						(*f)()
					}
					next.ServeHTTP(w, r)
				})
			}})
			refreshClient(t, e, map[string]any{"rotation_type": "non-rotating", "expiration_type": "non-expiring"})
			opts := map[string]any{
				"client_id": nativeAppID, "client_secret": nativeSecret, "tenant_domain": "contoso.onmicrosoft.com",
				"authority_host": e.emuURL, "graph_host": e.emuURL,
				"identity_api": "azure-active-directory-v1.0", "app_id": webAPIURI,
			}
			login := func() tokenResult {
				return e.login(t, "contoso-v1", "judy@contoso.onmicrosoft.com", "Judy-Passw0rd!", "openid offline_access")
			}
			id := connectionID(t, e, "contoso-v1")
			// The other replica: the store itself, which clears no cache
			// and notifies no one.
			other, err := sqlstore.Open(t.Context(), e.dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			var rt string
			for attempt := 1; rt == ""; attempt++ {
				if attempt > 5 {
					t.Fatal("every login in flight read the deletion once Entra answered")
				}
				del := func() {
					if err := other.DeleteConnection(t.Context(), id); err != nil {
						t.Errorf("delete the connection while Entra answers: %v", err)
					}
				}
				onUpstream.Store(&del)
				r := login()
				if onUpstream.Load() != nil {
					t.Fatal("Entra was not called")
				}
				if r.status == http.StatusBadRequest && r.str("error_description") == "the connection was not found" {
					// On PostgreSQL the notification of one of this
					// test's own Management writes can clear this
					// replica's cache after the login's first check; its
					// recheck then reads the deletion and refuses the
					// login, as it should. Make the connection again and
					// try again.
					id = e.connection(t, "contoso-v1", opts)
					time.Sleep(100 * time.Millisecond)
					continue
				}
				rt = r.str("refresh_token")
				if r.status != http.StatusOK || rt == "" {
					t.Fatalf("login answered after the deletion: %d %s", r.status, r.raw)
				}
			}
			// The notification arrives: a repeated deletion answers 204 and
			// clears this replica's cache as any Management write does.
			if status, raw := e.apiRaw(t, "DELETE", "api/v2/connections/"+id, nil); status != http.StatusNoContent {
				t.Fatalf("delete again: %d %s", status, raw)
			}
			const gone = "The connection no longer exists."
			wantPolicyRefusal(t, e, "token of the login, connection gone", e.refresh(t, rt, ""), gone)
			e.connection(t, "contoso-v1", opts)
			wantPolicyRefusal(t, e, "token of the login, connection made again", e.refresh(t, rt, ""), gone)
			r := login()
			if r.status != http.StatusOK || r.str("refresh_token") == "" {
				t.Fatalf("login through the new connection: %d %s", r.status, r.raw)
			}
			if r = e.refresh(t, r.str("refresh_token"), ""); r.status != http.StatusOK {
				t.Errorf("token of a login through the new connection: %d %s", r.status, r.raw)
			}
		})
	}
}

// TestRefreshTokenOfADeletedAPIMadeAgain: deleting an API leaves its
// refresh tokens stored but refused; an API made again under the same
// identifier, with other scopes perhaps, must not take them on, or an
// administrator who deleted an API to end its sessions would see them come
// back with it, and with scopes the new API does not define. A login for
// the new API refreshes.
func TestRefreshTokenOfADeletedAPIMadeAgain(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{quietLogs: true})
			const api = "https://api.contoso.example/"
			id := offlineAPI(t, e, api, "read:a")
			for _, c := range []struct {
				name     string
				settings map[string]any
			}{
				{"rotating", rotating(0)},
				{"non-rotating", map[string]any{"rotation_type": "non-rotating", "expiration_type": "non-expiring"}},
			} {
				t.Run(c.name, func(t *testing.T) {
					refreshClient(t, e, c.settings)
					rt := e.refreshLogin(t, "openid offline_access read:a", api)
					if r := e.refresh(t, rt, ""); r.status != http.StatusOK {
						t.Fatalf("refresh before the deletion: %d %s", r.status, r.raw)
					} else if next := r.str("refresh_token"); next != "" {
						rt = next
					}
					if status, raw := e.apiRaw(t, "DELETE", "api/v2/resource-servers/"+id, nil); status != http.StatusNoContent {
						t.Fatalf("delete API: %d %s", status, raw)
					}
					wantBadRefresh(t, "token of the deleted API", e.refresh(t, rt, ""))
					// The stored times are in milliseconds: the new API must
					// be of a later one than the token.
					time.Sleep(2 * time.Millisecond)
					id = offlineAPI(t, e, api, "write:b")
					r := e.refresh(t, rt, "")
					wantBadRefresh(t, "token of the deleted API, API made again", r)
					if ev := lastEvent(t, e, ""); ev["type"] != "fertft" {
						t.Errorf("event of the refusal: %v, want fertft", ev)
					}
					fresh := e.refreshLogin(t, "openid offline_access", api)
					if r := e.refresh(t, fresh, ""); r.status != http.StatusOK {
						t.Errorf("token of a login for the new API: %d %s", r.status, r.raw)
					}
				})
			}
		})
	}
}

// TestRefreshGrantsOnlyTheScopesTheAPIDefines: a scope taken out of an API
// is what a login no longer grants, and an exchange grants it no longer
// either, though the refresh token was issued with it; put back, it is
// granted again, since the token (and its successor) keeps its scope.
func TestRefreshGrantsOnlyTheScopesTheAPIDefines(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{quietLogs: true})
			const api = "https://api.contoso.example/"
			apiID := offlineAPI(t, e, api, "read:a", "write:b")
			scopes := func(t *testing.T, values ...string) {
				t.Helper()
				if status, raw := e.apiRaw(t, "PATCH", "api/v2/resource-servers/"+apiID, map[string]any{"scopes": scopeList(values)}); status != http.StatusOK {
					t.Fatalf("patch API: %d %s", status, raw)
				}
			}
			for _, c := range []struct {
				name     string
				settings map[string]any
			}{
				{"rotating", rotating(0)},
				{"non-rotating", map[string]any{"rotation_type": "non-rotating", "expiration_type": "non-expiring"}},
			} {
				t.Run(c.name, func(t *testing.T) {
					refreshClient(t, e, c.settings)
					scopes(t, "read:a", "write:b")
					rt := e.refreshLogin(t, "openid offline_access read:a write:b", api)
					for _, step := range []struct {
						what, requested string
						defined         []string
						want            string
					}{
						{"write:b taken out of the API", "", []string{"read:a"}, "openid offline_access read:a"},
						{"write:b asked for, not defined", "openid write:b", []string{"read:a"}, "openid"},
						{"write:b put back", "", []string{"read:a", "write:b"}, "openid offline_access read:a write:b"},
						// Nothing asked for is granted: the answer must say
						// so, or the app takes read:a as granted (RFC 6749
						// §5.1, Auth0: scope when it differs).
						{"read:a asked for, taken out", "read:a", []string{"write:b"}, ""},
					} {
						scopes(t, step.defined...)
						r := e.refresh(t, rt, step.requested)
						if r.status != http.StatusOK {
							t.Fatalf("%s: %d %s", step.what, r.status, r.raw)
						}
						if got, _ := jwtClaims(t, r.str("access_token"))["scope"].(string); got != step.want {
							t.Errorf("%s: access token's scope %q, want %q", step.what, got, step.want)
						}
						if got, ok := r.body["scope"]; step.want != step.requested && (!ok || got != step.want) {
							t.Errorf("%s: answered scope %v (given: %v), want %q", step.what, got, ok, step.want)
						}
						if next := r.str("refresh_token"); next != "" {
							rt = next
						}
					}
				})
			}
		})
	}
}

// offlineAPI creates an API that allows offline access, with scopes, and
// returns its id.
func offlineAPI(t *testing.T, e *env, identifier string, scopes ...string) string {
	t.Helper()
	status, body := e.api(t, "POST", "api/v2/resource-servers", map[string]any{"identifier": identifier, "name": "Contoso API",
		"allow_offline_access": true, "scopes": scopeList(scopes)})
	if status != http.StatusCreated {
		t.Fatalf("create API: %d %v", status, body)
	}
	return body["id"].(string)
}

// scopeList is scopes as an API's "scopes" property.
func scopeList(scopes []string) []map[string]string {
	list := []map[string]string{}
	for _, v := range scopes {
		list = append(list, map[string]string{"value": v})
	}
	return list
}
