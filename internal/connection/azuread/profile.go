package azuread

import (
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse/internal/connection"
	"github.com/gatehouse/gatehouse/internal/entra"
)

// identity maps validated id_token claims to the Auth0 waad profile. Users
// are keyed on the tenant and the immutable object id (or the pairwise
// sub), never on the email, which the user or an admin can change; the
// tenant is not in user_id, which keeps Auth0's waad|<oid> shape.
func (s *settings) identity(c *entra.IDTokenClaims) *connection.Identity {
	uid := c.ObjectID
	if s.useridAttribute == "sub" || uid == "" {
		uid = c.Subject
	}
	upn := firstNonEmpty(c.UPN, c.PreferredUsername, c.UniqueName)
	email := firstNonEmpty(c.Email, upn)
	p := map[string]any{}
	set := func(key string, enabled bool, v string) {
		if enabled && v != "" {
			p[key] = v
		}
	}
	set("email", true, email)
	set("name", s.ext("name"), firstNonEmpty(c.Name, email))
	set("given_name", s.ext("given_name"), c.GivenName)
	set("family_name", s.ext("family_name"), c.FamilyName)
	set("nickname", s.ext("nickname"), nickname(firstNonEmpty(upn, email)))
	set("upn", s.ext("upn"), upn)
	set("oid", s.ext("oid"), c.ObjectID)
	set("tenantid", s.ext("tenantid"), c.TenantID)
	verified := s.trustEmailVerified
	p["email_verified"] = verified
	return &connection.Identity{
		UserID:         Strategy + "|" + uid,
		Provider:       Strategy,
		ProviderUserID: uid,
		UpstreamTenant: strings.ToLower(c.TenantID),
		Email:          email,
		EmailVerified:  verified,
		Profile:        p,
		SyncMode:       s.syncMode,
	}
}

// graphSelect are the Microsoft Graph user properties the waad profile can
// hold; most are not in /me's default set, so they are named explicitly.
var graphSelect = []string{
	"id", "displayName", "givenName", "surname", "userPrincipalName", "mail", "jobTitle", "department",
	"mobilePhone", "businessPhones", "officeLocation", "preferredLanguage", "city", "country", "state",
	"streetAddress", "postalCode", "usageLocation", "accountEnabled", "proxyAddresses", "onPremisesSyncEnabled",
}

// graphAttrs maps Graph properties to waad profile attributes; each
// attribute is kept unless its ext_<attribute> option is false.
var graphAttrs = []struct{ graph, attr string }{
	{"displayName", "name"},
	{"givenName", "given_name"},
	{"surname", "family_name"},
	{"userPrincipalName", "upn"},
	{"jobTitle", "job_title"},
	{"department", "department"},
	{"mobilePhone", "mobile"},
	{"businessPhones", "phone"},
	{"officeLocation", "physical_delivery_office_name"},
	{"preferredLanguage", "preferred_language"},
	{"city", "city"},
	{"country", "country"},
	{"state", "state"},
	{"streetAddress", "street"},
	{"postalCode", "postal_code"},
	{"usageLocation", "usage_location"},
	{"accountEnabled", "account_enabled"},
	{"proxyAddresses", "proxy_addresses"},
	{"onPremisesSyncEnabled", "dir_sync_enabled"},
}

func (s *settings) mapGraphUser(me map[string]any, p map[string]any) {
	for _, a := range graphAttrs {
		v, ok := me[a.graph]
		if !ok || v == nil || !s.ext(a.attr) {
			continue
		}
		if str, isStr := v.(string); isStr && str == "" {
			continue
		}
		p[a.attr] = v
	}
	if id, _ := me["id"].(string); id != "" && s.ext("azure_id") {
		p["azure_id"] = id
	}
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

func endpointString(e entra.Endpoint) string {
	return fmt.Sprintf("v%d %s", e.Version, e.TokenURL())
}
