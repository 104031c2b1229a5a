package azuread_test

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/connection/azuread"
	"github.com/gatehouse/gatehouse/internal/store"
)

// TestTenantsNarrowed: which changes of options may refuse Entra users
// the connection admitted, the options as the Management API stores
// them. The token endpoint's tests cover the Management API's use of it;
// these cover what those cannot reach (another authority host, options
// stored before defaults existed).
func TestTenantsNarrowed(t *testing.T) {
	const (
		base   = `"client_id":"1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b","tenant_domain":"contoso.onmicrosoft.com"`
		common = base + `,"useCommonEndpoint":true,"userid_attribute":"sub"`
		a, b   = `"6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"`, `"9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"`
	)
	cases := []struct {
		name, before, after string
		want                bool
	}{
		{"unchanged", base, base, false},
		{"authority host moved", base, base + `,"authority_host":"https://login.microsoftonline.us"`, true},
		{"authority host spelled out", base, base + `,"authority_host":"https://LOGIN.microsoftonline.com:443/"`, false},
		{"tenant domain changed", base, `"client_id":"1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b","tenant_domain":"fabrikam.onmicrosoft.com"`, true},
		{"tenant id set", base, base + `,"tenantId":` + a, true},
		{"tenant id in another case", base + `,"tenantId":` + a, base + `,"tenantId":"6F1C2A3B-4D5E-4F60-8A7B-9C0D1E2F3A4B"`, false},
		{"client id in another case", base, `"client_id":"1F2E3D4C-5B6A-4978-8A9B-0C1D2E3F4A5B","tenant_domain":"contoso.onmicrosoft.com"`, false},
		{"allowed tenant in another case", common + `,"allowed_tenants":[` + a + `]`,
			common + `,"allowed_tenants":["6F1C2A3B-4D5E-4F60-8A7B-9C0D1E2F3A4B"]`, false},
		{"allowed tenant replaced", common + `,"allowed_tenants":[` + a + `]`, common + `,"allowed_tenants":[` + b + `]`, true},
		{"any tenant to any tenant", common + `,"allow_any_tenant":true`, common + `,"allow_any_tenant":true,"ext_groups":true`, false},
		{"allow_any_tenant not a boolean before", common + `,"allow_any_tenant":"yes"`, common + `,"allowed_tenants":[` + a + `]`, false},
	}
	var c azuread.Connector
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.TenantsNarrowed(&store.Connection{Options: []byte("{" + tc.before + "}")}, &store.Connection{Options: []byte("{" + tc.after + "}")})
			if err != nil || got != tc.want {
				t.Errorf("TenantsNarrowed = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if _, err := c.TenantsNarrowed(&store.Connection{Options: []byte(`[]`)}, &store.Connection{Options: []byte("{" + base + "}")}); err == nil {
		t.Error("unreadable stored options: no error")
	}
}
