package azuread

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/entra"
)

// TestIdentityEmailPerTokenVersion: the claims each id_token version really
// carries (ED id-token-claims-reference.md, reference §2.1) still give the
// user an email, as Auth0's waad does: v1 has upn and unique_name but no
// email unless it is configured as an optional claim; v2 has
// preferred_username, and email only with the email scope and a mail.
func TestIdentityEmailPerTokenVersion(t *testing.T) {
	const oid = "a0000000-0000-4000-8000-000000000001"
	tests := []struct {
		name                          string
		claims                        entra.IDTokenClaims
		email, upn, nickname, display string
	}{
		{"v1 member without email", entra.IDTokenClaims{Version: "1.0", ObjectID: oid, UPN: "adele@contoso.com",
			UniqueName: "adele@contoso.com", Name: "Adele Vance", GivenName: "Adele", FamilyName: "Vance"},
			"adele@contoso.com", "adele@contoso.com", "adele", "Adele Vance"},
		{"v1 with the email optional claim", entra.IDTokenClaims{Version: "1.0", ObjectID: oid, UPN: "adele@contoso.onmicrosoft.com",
			UniqueName: "adele@contoso.onmicrosoft.com", Email: "adele.vance@contoso.com", Name: "Adele Vance"},
			"adele.vance@contoso.com", "adele@contoso.onmicrosoft.com", "adele", "Adele Vance"},
		{"v2 with email", entra.IDTokenClaims{Version: "2.0", ObjectID: oid, PreferredUsername: "adele@contoso.onmicrosoft.com",
			Email: "adele.vance@contoso.com", Name: "Adele Vance"},
			"adele.vance@contoso.com", "adele@contoso.onmicrosoft.com", "adele", "Adele Vance"},
		{"v2 user without mail", entra.IDTokenClaims{Version: "2.0", ObjectID: oid, PreferredUsername: "adele@contoso.onmicrosoft.com"},
			"adele@contoso.onmicrosoft.com", "adele@contoso.onmicrosoft.com", "adele", "adele@contoso.onmicrosoft.com"},
	}
	s := &settings{opts: &Options{}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := s.identity(&tt.claims)
			p := id.Profile
			if id.Email != tt.email || p["email"] != tt.email || p["upn"] != tt.upn || p["nickname"] != tt.nickname || p["name"] != tt.display {
				t.Errorf("email %q, profile %v", id.Email, p)
			}
			if id.UserID != "waad|"+oid {
				t.Errorf("user id %q", id.UserID)
			}
		})
	}
	v1 := tests[0].claims
	if p := s.identity(&v1).Profile; p["given_name"] != "Adele" || p["family_name"] != "Vance" {
		t.Errorf("v1 names: %v", p)
	}
}

// TestIdentityUpstreamTenant: the identity carries the token's tenant,
// which keys the user with user_id, whether or not the profile keeps it
// (ext_tenantid), and user_id stays waad|<oid> or waad|<sub>.
func TestIdentityUpstreamTenant(t *testing.T) {
	const oid, sub = "a0000000-0000-4000-8000-000000000001", "pairwise-subject"
	claims := entra.IDTokenClaims{Version: "2.0", ObjectID: oid, Subject: sub, TenantID: "6F1C2A3B-4D5E-4F60-8A7B-9C0D1E2F3A4B",
		PreferredUsername: "adele@contoso.com"}
	for _, tt := range []struct {
		name            string
		ext             map[string]bool
		useridAttribute string
		userID          string
		tenantid        any
	}{
		{"oid, ext_tenantid off", map[string]bool{"ext_tenantid": false}, UserIDOID, "waad|" + oid, nil},
		{"oid, ext_tenantid on", nil, UserIDOID, "waad|" + oid, "6F1C2A3B-4D5E-4F60-8A7B-9C0D1E2F3A4B"},
		{"sub", nil, UserIDSub, "waad|" + sub, "6F1C2A3B-4D5E-4F60-8A7B-9C0D1E2F3A4B"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &settings{opts: &Options{Ext: tt.ext}, useridAttribute: tt.useridAttribute}
			id := s.identity(&claims)
			if id.UpstreamTenant != "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b" || id.UserID != tt.userID || id.Profile["tenantid"] != tt.tenantid {
				t.Errorf("identity: tenant %q, user id %q, profile tenantid %v", id.UpstreamTenant, id.UserID, id.Profile["tenantid"])
			}
		})
	}
}
