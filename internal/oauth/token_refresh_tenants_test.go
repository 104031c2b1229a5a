package oauth_test

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

const tenantsChanged = "The connection's Entra tenants changed since the token was issued."

// TestRefreshAfterTheConnectionsTenantsChanged: a refresh does not go to
// Entra, so a PATCH of a connection that may refuse Entra users it
// admitted (another tenant or application, the common endpoint turned on
// or off, an allowed tenant removed, allow_any_tenant withdrawn) ends
// every refresh token issued through it before, for good; one that admits
// the same users or more leaves them working.
func TestRefreshAfterTheConnectionsTenantsChanged(t *testing.T) {
	const (
		contosoTenant = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
		otherTenant   = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
	)
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{quietLogs: true})
			refreshClient(t, e, map[string]any{"rotation_type": "non-rotating", "expiration_type": "non-expiring"})
			single := map[string]any{
				"client_id": nativeAppID, "client_secret": nativeSecret, "tenant_domain": "contoso.onmicrosoft.com",
				"authority_host": e.emuURL, "graph_host": e.emuURL,
			}
			with := func(base map[string]any, kv ...any) map[string]any {
				o := maps.Clone(base)
				for i := 0; i < len(kv); i += 2 {
					if kv[i+1] == nil {
						delete(o, kv[i].(string))
					} else {
						o[kv[i].(string)] = kv[i+1]
					}
				}
				return o
			}
			common := func(kv ...any) map[string]any {
				return with(with(single, "useCommonEndpoint", true, "userid_attribute", "sub"), kv...)
			}
			cases := []struct {
				name          string
				before, after map[string]any
				refused       bool
			}{
				{"tenant_domain changed", single, with(single, "tenant_domain", "fabrikam.onmicrosoft.com"), true},
				{"tenantId changed", with(single, "tenantId", contosoTenant), with(single, "tenantId", otherTenant), true},
				{"client_id changed", single, with(single, "client_id", "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d"), true},
				{"common endpoint turned on", single, common("allow_any_tenant", true), true},
				{"common endpoint turned off", common("allowed_tenants", []string{contosoTenant}), single, true},
				{"allowed tenant removed", common("allowed_tenants", []string{contosoTenant, otherTenant}),
					common("allowed_tenants", []string{contosoTenant}), true},
				{"allow_any_tenant withdrawn", common("allow_any_tenant", true), common("allowed_tenants", []string{contosoTenant}), true},

				{"tenant_domain in another case", single, with(single, "tenant_domain", "Contoso.OnMicrosoft.com"), false},
				{"ext_groups toggled", single, with(single, "ext_groups", true), false},
				{"client secret changed", single, with(single, "client_secret", "another-secret"), false},
				{"allowed tenant added", common("allowed_tenants", []string{contosoTenant}),
					common("allowed_tenants", []string{contosoTenant, otherTenant}), false},
				{"allow_any_tenant given", common("allowed_tenants", []string{contosoTenant}), common("allow_any_tenant", true), false},
				// allow_any_tenant never widens an allow-list.
				{"allow_any_tenant dropped beside allowed_tenants", common("allowed_tenants", []string{contosoTenant}, "allow_any_tenant", true),
					common("allowed_tenants", []string{contosoTenant}), false},
			}
			for i, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					name := fmt.Sprintf("tenants-%d", i)
					id := e.connection(t, name, c.before)
					patch := func(opts map[string]any) {
						t.Helper()
						if status, raw := e.apiRaw(t, "PATCH", "api/v2/connections/"+id, map[string]any{"options": opts}); status != http.StatusOK {
							t.Fatalf("PATCH: %d %s", status, raw)
						}
					}
					r := e.login(t, name, "alice@contoso.com", "Alice-Passw0rd!", "openid offline_access")
					rt := r.str("refresh_token")
					if r.status != http.StatusOK || rt == "" {
						t.Fatalf("login: %d %s", r.status, r.raw)
					}
					patch(c.after)
					r = e.refresh(t, rt, "")
					if !c.refused {
						if r.status != http.StatusOK {
							t.Fatalf("refresh after the change: %d %s", r.status, r.raw)
						}
						return
					}
					wantPolicyRefusal(t, e, "after the change", r, tenantsChanged)
					// Ended, not merely refused: undoing the change does
					// not bring the token back.
					patch(c.before)
					wantPolicyRefusal(t, e, "after undoing the change", e.refresh(t, rt, ""), tenantsChanged)
				})
			}
		})
	}
}

// TestRefreshOfALoginInFlightWhileTheTenantChanges: a login that read the
// connection before its tenant changed on another replica, whose
// notification has not reached this one, passes its second check on the
// cached connection and gets its tokens, but its refresh token is refused
// like the others; a rotating token issued after the change keeps the
// generation it was issued under through its rotations. (A change this
// replica makes refuses the login instead:
// TestConnectionTenantsChangedDuringLogin.)
func TestRefreshOfALoginInFlightWhileTheTenantChanges(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			var held atomic.Pointer[chan struct{}]
			entered := make(chan struct{}, 1)
			e := newEnv(t, backend, envOptions{quietLogs: true, upstream: func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if release := held.Load(); release != nil && strings.HasSuffix(r.URL.Path, "/token") {
						entered <- struct{}{}
						<-*release
					}
					h.ServeHTTP(w, r)
				})
			}})
			refreshClient(t, e, rotating(0))
			opts := map[string]any{
				"client_id": nativeAppID, "client_secret": nativeSecret, "tenant_domain": "contoso.onmicrosoft.com",
				"authority_host": e.emuURL, "graph_host": e.emuURL,
			}
			id := e.connection(t, "moving", opts)

			// The other replica: the store itself, which clears no cache
			// and notifies no one; the generation is what its Management
			// API's PATCH of tenant_domain writes.
			other, err := sqlstore.Open(t.Context(), e.dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			type answer struct {
				status int
				body   map[string]any
				err    error
			}
			var rt string
			for attempt := 1; rt == ""; attempt++ {
				if attempt > 5 {
					t.Fatal("every login in flight read the change again once Entra answered")
				}
				release := make(chan struct{})
				held.Store(&release)
				done := make(chan answer, 1)
				go func() {
					form := url.Values{"grant_type": {"http://auth0.com/oauth/grant-type/password-realm"}, "client_id": {e.clientID},
						"realm": {"moving"}, "username": {"alice@contoso.com"}, "password": {"Alice-Passw0rd!"}, "scope": {"openid offline_access"}}
					resp, err := e.hc.PostForm(e.url+"oauth/token", form)
					if err != nil {
						done <- answer{err: err}
						return
					}
					defer resp.Body.Close()
					raw, _ := io.ReadAll(resp.Body)
					a := answer{status: resp.StatusCode}
					a.err = json.Unmarshal(raw, &a.body)
					done <- a
				}()
				<-entered
				held.Store(nil)
				opts["tenant_domain"] = "fabrikam.onmicrosoft.com"
				stored := maps.Clone(opts)
				// Stored options hold no secret: it is sealed apart.
				delete(stored, "client_secret")
				_, err = other.PatchConnection(t.Context(), id, func(c *store.Connection, _ store.ClientLookup) error {
					c.Options, err = json.Marshal(stored)
					c.TenantGeneration++
					return err
				})
				close(release)
				if err != nil {
					t.Fatalf("change the tenant on another replica: %v", err)
				}
				a := <-done
				if a.status == http.StatusServiceUnavailable {
					// On PostgreSQL the notification of one of this
					// test's own Management writes can clear this
					// replica's cache after the login's first check; its
					// recheck then reads the change and refuses the login,
					// as it should. Put the tenant back and try again.
					opts["tenant_domain"] = "contoso.onmicrosoft.com"
					if status, raw := e.apiRaw(t, "PATCH", "api/v2/connections/"+id, map[string]any{"options": opts}); status != http.StatusOK {
						t.Fatalf("PATCH back: %d %s", status, raw)
					}
					time.Sleep(100 * time.Millisecond)
					continue
				}
				rt, _ = a.body["refresh_token"].(string)
				if a.err != nil || a.status != http.StatusOK || rt == "" {
					t.Fatalf("login in flight: %d %v %v", a.status, a.body, a.err)
				}
			}
			// The notification arrives: the same PATCH here narrows nothing
			// more and clears this replica's cache as any Management write
			// does.
			if status, raw := e.apiRaw(t, "PATCH", "api/v2/connections/"+id, map[string]any{"options": opts}); status != http.StatusOK {
				t.Fatalf("PATCH: %d %s", status, raw)
			}
			wantPolicyRefusal(t, e, "token of the login in flight", e.refresh(t, rt, ""), tenantsChanged)

			// Issued after the change: its successors carry its generation.
			opts["tenant_domain"] = "contoso.onmicrosoft.com"
			if status, raw := e.apiRaw(t, "PATCH", "api/v2/connections/"+id, map[string]any{"options": opts}); status != http.StatusOK {
				t.Fatalf("PATCH back: %d %s", status, raw)
			}
			r := e.login(t, "moving", "alice@contoso.com", "Alice-Passw0rd!", "openid offline_access")
			next := r.str("refresh_token")
			for i := range 2 {
				r = e.refresh(t, next, "")
				if next = r.str("refresh_token"); r.status != http.StatusOK || next == "" {
					t.Fatalf("rotation %d of a token issued after the change: %d %s", i+1, r.status, r.raw)
				}
			}
		})
	}
}

// TestRefreshOnAReplicaWithTheConnectionCachedBeforeTheChange: another
// replica narrowed the connection's tenants and logged a user in under
// the new generation; this replica's cached copy of the connection is
// still the one from before (its notification not yet arrived, or lost).
// The token is newer than that copy, not older: its refresh here works,
// where refusing it would sign the user out for good.
func TestRefreshOnAReplicaWithTheConnectionCachedBeforeTheChange(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{quietLogs: true})
			refreshClient(t, e, map[string]any{"rotation_type": "non-rotating", "expiration_type": "non-expiring"})
			other := e.replica(t)
			// The other replica's start announced its admin application:
			// let that notification clear this replica's cache before it
			// caches the connection.
			time.Sleep(300 * time.Millisecond)
			if r := e.login(t, "contoso-v2", "alice@contoso.com", "Alice-Passw0rd!", "openid offline_access"); r.status != http.StatusOK {
				t.Fatalf("login here: %d %s", r.status, r.raw)
			}

			// The other replica's PATCH, whose notification does not reach
			// this one: written behind both servers.
			st, err := sqlstore.Open(t.Context(), e.dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			conn, err := st.GetConnectionByName(t.Context(), "contoso-v2")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.PatchConnection(t.Context(), conn.ID, func(c *store.Connection, _ store.ClientLookup) error {
				c.TenantGeneration++
				return nil
			}); err != nil {
				t.Fatal(err)
			}

			r := other.login(t, "contoso-v2", "alice@contoso.com", "Alice-Passw0rd!", "openid offline_access")
			rt := r.str("refresh_token")
			if r.status != http.StatusOK || rt == "" {
				t.Fatalf("login on the other replica: %d %s", r.status, r.raw)
			}
			if r := e.refresh(t, rt, ""); r.status != http.StatusOK {
				t.Fatalf("refresh here of a token of the newer generation: %d %s", r.status, r.raw)
			}
			if r := other.refresh(t, rt, ""); r.status != http.StatusOK {
				t.Fatalf("refresh on the other replica: %d %s", r.status, r.raw)
			}
		})
	}
}
