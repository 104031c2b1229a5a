package oauth_test

import (
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestAllowedTenantsHoldWithAllowAnyTenant: allow_any_tenant stands in for
// a missing allow-list. A common-endpoint connection that has both must
// still refuse the organisations allowed_tenants leaves out, through the
// token endpoint, and admit the ones it names.
func TestAllowedTenantsHoldWithAllowAnyTenant(t *testing.T) {
	const contosoTenant = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{})
			common := func(name string, allowed ...string) {
				e.connection(t, name, map[string]any{
					"client_id": nativeAppID, "client_secret": nativeSecret, "tenant_domain": "contoso.onmicrosoft.com",
					"authority_host": e.emuURL, "graph_host": e.emuURL,
					"useCommonEndpoint": true, "userid_attribute": "sub",
					"allowed_tenants": allowed, "allow_any_tenant": true,
				})
			}
			common("others-only", "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")
			common("contoso-only", contosoTenant)

			r := e.login(t, "others-only", "alice@contoso.com", "Alice-Passw0rd!", "openid")
			if r.status != http.StatusForbidden || r.str("error") != "access_denied" ||
				r.str("error_description") != "Users of this organization are not allowed to sign in to this application." {
				t.Fatalf("tenant outside allowed_tenants: %d %s", r.status, r.raw)
			}
			if d, _ := lastEvent(t, e, "fepft")["details"].(map[string]any); d["reason"] != "tenant_not_allowed" {
				t.Errorf("log event details %v", d)
			}
			if r := e.login(t, "contoso-only", "alice@contoso.com", "Alice-Passw0rd!", "openid"); r.status != http.StatusOK {
				t.Fatalf("tenant in allowed_tenants: %d %s", r.status, r.raw)
			}
		})
	}
}
