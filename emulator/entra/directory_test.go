package entra_test

import (
	"testing"

	"github.com/gatehouse/gatehouse/emulator/entra"
)

// A directory built in Go works like a parsed one.
func TestDirectoryInGo(t *testing.T) {
	dir := &entra.Directory{Tenants: []*entra.Tenant{{
		ID:           "11111111-2222-4333-8444-555555555555",
		Domains:      []entra.Domain{{ID: "go.example", IsVerified: true}},
		Users:        []*entra.User{{ID: "21111111-2222-4333-8444-555555555555", UserPrincipalName: "u@go.example", Password: "p"}},
		Applications: []*entra.Application{{AppID: "31111111-2222-4333-8444-555555555555", IsFallbackPublicClient: true}},
		OAuth2PermissionGrants: []entra.PermissionGrant{{ClientID: "31111111-2222-4333-8444-555555555555",
			ConsentType: "AllPrincipals", ResourceID: "https://graph.microsoft.com", Scope: "User.Read"}},
	}}}
	e := newEnvDir(t, dir)
	at := e.token("/go.example/oauth2/v2.0/token", map[string][]string{"grant_type": {"password"},
		"client_id": {"31111111-2222-4333-8444-555555555555"}, "username": {"u@go.example"}, "password": {"p"}, "scope": {"User.Read"}}, "access_token")
	if r := e.get("/v1.0/me", at); r.status != 200 || r.body["userPrincipalName"] != "u@go.example" {
		t.Errorf("me = %d %s", r.status, r.raw)
	}
	if _, err := entra.New(&entra.Directory{}, entra.Options{SigningKey: sharedKey()}); err == nil {
		t.Error("empty directory accepted")
	}
}
