package azuread

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/connection"
	"github.com/gatehouse/gatehouse/internal/store"
)

var _ connection.TenantNarrower = (*Connector)(nil)

// TenantsNarrowed reports whether the options of after may refuse Entra
// users that those of before admitted (TenantsNarrowed of Options).
func (c *Connector) TenantsNarrowed(before, after *store.Connection) (bool, error) {
	b, err := ParseOptions(before.Options)
	if err != nil {
		return false, fmt.Errorf("azuread: options of connection %s as stored: %w", before.Name, err)
	}
	a, err := ParseOptions(after.Options)
	if err != nil {
		return false, fmt.Errorf("azuread: new options of connection %s: %w", after.Name, err)
	}
	b.Defaults()
	a.Defaults()
	return TenantsNarrowed(b, a), nil
}

// TenantsNarrowed reports whether after may refuse Entra users that
// before admitted, after Defaults on both: another Entra application
// (client_id) or authority (authority_host: another cloud's directories),
// another tenant (tenant_domain or tenantId, compared as Entra compares
// them, regardless of case), the common endpoint turned on or off, and on
// the common endpoint a tenant of allowed_tenants removed or
// allow_any_tenant withdrawn while no allow-list stands in for it. Any
// change of these counts, even one that still names the same directory
// (tenantId set to the id of tenant_domain's tenant): Gatehouse cannot
// tell without asking Entra. Whatever admits more, or the same, does not:
// a tenant added to allowed_tenants, allow_any_tenant given, other options.
func TenantsNarrowed(before, after *Options) bool {
	if !strings.EqualFold(strings.TrimSpace(before.ClientID), strings.TrimSpace(after.ClientID)) ||
		!sameAuthority(before.AuthorityHost, after.AuthorityHost) ||
		before.UseCommonEndpoint != after.UseCommonEndpoint ||
		!strings.EqualFold(before.TenantDomain, after.TenantDomain) ||
		!strings.EqualFold(before.TenantID, after.TenantID) {
		return true
	}
	if !after.UseCommonEndpoint {
		return false
	}
	switch beforeAny, afterAny := before.admitsAnyTenant(), after.admitsAnyTenant(); {
	case afterAny:
		return false
	case beforeAny:
		return true
	}
	return slices.ContainsFunc(before.AllowedTenants, func(t string) bool {
		return !slices.ContainsFunc(after.AllowedTenants, func(u string) bool { return strings.EqualFold(t, u) })
	})
}

// admitsAnyTenant is the login's rule (Connector.Login): allow_any_tenant
// stands in for a missing allow-list and never widens one. An
// allow_any_tenant that is not a boolean admits nothing.
func (o *Options) admitsAnyTenant() bool {
	var anyTenant bool
	if raw, ok := o.Extra[AllowAnyTenantOption]; ok {
		if json.Unmarshal(raw, &anyTenant) != nil {
			return false
		}
	}
	return anyTenant && len(o.AllowedTenants) == 0
}

// sameAuthority compares two authority hosts as the login uses them
// (BaseURL), or as written when one cannot be read.
func sameAuthority(a, b string) bool {
	ba, errA := BaseURL(a)
	bb, errB := BaseURL(b)
	if errA != nil || errB != nil {
		return a == b
	}
	return ba == bb
}
