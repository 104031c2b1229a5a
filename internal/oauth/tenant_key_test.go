package oauth_test

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	emulator "github.com/gatehouse/gatehouse/emulator/entra"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

const (
	contosoTenant  = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
	fabrikamTenant = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
	aliceOID       = "a0000000-0000-4000-8000-000000000001"
	twinUPN        = "twin@fabrikam.onmicrosoft.com"
	twinPassword   = "Twin-Passw0rd!"
)

// withTwinTenant registers the native app in the emulator's Fabrikam
// tenant, consented as in Contoso, and gives Fabrikam a user whose object
// id is Alice's: object ids are unique only within a tenant.
func withTwinTenant(dir *emulator.Directory) {
	contoso, fabrikam := dir.Tenants[0], dir.Tenants[1]
	for _, app := range contoso.Applications {
		if app.AppID == nativeAppID {
			copied := *app
			fabrikam.Applications = append(fabrikam.Applications, &copied)
		}
	}
	for _, g := range contoso.OAuth2PermissionGrants {
		if g.ClientID == nativeAppID && strings.Contains(g.ResourceID, "graph.") {
			fabrikam.OAuth2PermissionGrants = append(fabrikam.OAuth2PermissionGrants, g)
		}
	}
	fabrikam.Users = append(fabrikam.Users, &emulator.User{
		ID: aliceOID, UserPrincipalName: twinUPN, DisplayName: "Twin", Password: twinPassword,
	})
}

// TestUsersKeyedOnTenantAndObjectID: users are keyed on tenant and
// object id, while user_id is waad|<oid> whatever the tenant, and users
// are shared by the connections that name them. With a connection per
// tenant (a multi-tenant connection on the common endpoint keys on the
// pairwise sub instead, which differs per tenant), a user of the second
// tenant whose object id is a stored user's of the first is refused, without touching the stored user, with the
// misconfiguration answer and an event naming the user and both tenants,
// and without counting as a failed attempt. A user stored before tenants
// were kept takes the tenant of its next login; a returning user signs in
// as before.
func TestUsersKeyedOnTenantAndObjectID(t *testing.T) {
	const aliceID = "waad|" + aliceOID
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{quietLogs: true, directory: withTwinTenant})
			// One attempt allowed: a refused login counted as a failure
			// would block the next.
			if s, b := e.api(t, "PATCH", "api/v2/attack-protection/brute-force-protection", map[string]any{"max_attempts": 1}); s != http.StatusOK {
				t.Fatalf("brute-force settings: %d %v", s, b)
			}
			for name, domain := range map[string]string{"contoso": "contoso.onmicrosoft.com", "fabrikam": "fabrikam.onmicrosoft.com"} {
				e.connection(t, name, map[string]any{
					"client_id": nativeAppID, "client_secret": nativeSecret, "tenant_domain": domain,
					"authority_host": e.emuURL, "graph_host": e.emuURL,
					// The key does not depend on the profile's tenantid.
					"ext_tenantid": false,
				})
			}
			st, err := sqlstore.Open(t.Context(), e.dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			storedTenant := func() string {
				t.Helper()
				u, err := st.GetUser(t.Context(), aliceID)
				if err != nil {
					t.Fatal(err)
				}
				return u.UpstreamTenant
			}
			alice := func(what string) {
				t.Helper()
				if r := e.login(t, "contoso", "alice@contoso.com", "Alice-Passw0rd!", "openid"); r.status != http.StatusOK || r.str("id_token") == "" {
					t.Fatalf("%s: %d %s", what, r.status, r.raw)
				}
			}
			user := func() map[string]any {
				t.Helper()
				s, u := e.api(t, "GET", "api/v2/users/"+url.PathEscape(aliceID), nil)
				if s != http.StatusOK {
					t.Fatalf("get user: %d %v", s, u)
				}
				return u
			}

			// An ordinary returning user signs in.
			alice("first login")
			alice("returning login")
			if got := storedTenant(); got != contosoTenant {
				t.Fatalf("stored tenant %q, want %q", got, contosoTenant)
			}
			before := user()
			if before["logins_count"] != float64(2) {
				t.Errorf("logins_count %v, want 2", before["logins_count"])
			}
			for k := range before {
				if strings.Contains(strings.ToLower(k), "tenant") {
					t.Errorf("the Management API's user shows %s without ext_tenantid", k)
				}
			}

			// The other tenant's user with Alice's object id, twice: each
			// reaches Entra (not counted), each is refused.
			for i := range 2 {
				sent := e.emu.Count("token:password")
				r := e.login(t, "fabrikam", twinUPN, twinPassword, "openid")
				if r.status != http.StatusInternalServerError || r.str("error") != "server_error" ||
					r.str("error_description") != "The connection to the identity provider is not configured correctly. The administrator can find the reason in the tenant logs." ||
					r.str("access_token") != "" || strings.Contains(r.raw, fabrikamTenant) || strings.Contains(r.raw, contosoTenant) {
					t.Fatalf("login %d of the other tenant's user: %d %s", i+1, r.status, r.raw)
				}
				if e.emu.Count("token:password") != sent+1 {
					t.Errorf("login %d of the other tenant's user did not reach Entra: counted as a failed attempt", i+1)
				}
				ev := lastEvent(t, e, "fepft")
				d, _ := ev["details"].(map[string]any)
				if ev["user_id"] != aliceID || ev["user_name"] != twinUPN || d["reason"] != "upstream_tenant_mismatch" ||
					d["stored_tenant"] != contosoTenant || d["upstream_tenant"] != fabrikamTenant || d["error"] != "server_error" {
					t.Errorf("log event of the refusal: %v", ev)
				}
			}
			if after := user(); !reflect.DeepEqual(after, before) {
				t.Errorf("the stored user changed:\nbefore %v\nafter  %v", before, after)
			}
			if _, blocks := e.apiRaw(t, "GET", "api/v2/user-blocks?identifier="+url.QueryEscape(twinUPN), nil); strings.TrimSpace(string(blocks)) != `{"blocked_for":[]}` {
				t.Errorf("the refused logins left a block: %s", blocks)
			}

			// A user stored before tenants were kept takes its next
			// login's; from then on the other tenant is refused.
			db := openDB(t, e.dsn)
			if _, err := db.Exec("UPDATE users SET upstream_tenant = NULL WHERE user_id = $1", aliceID); err != nil {
				t.Fatal(err)
			}
			alice("login of a user stored without a tenant")
			if got := storedTenant(); got != contosoTenant {
				t.Errorf("tenant after the login of a user stored without one %q, want %q", got, contosoTenant)
			}
			if r := e.login(t, "fabrikam", twinUPN, twinPassword, "openid"); r.status != http.StatusInternalServerError {
				t.Errorf("the other tenant's user after the adoption: %d %s", r.status, r.raw)
			}
			alice("returning login after the refusals")
		})
	}
}
