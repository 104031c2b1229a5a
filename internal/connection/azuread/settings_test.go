package azuread

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store"
)

// TestSettingsHostsCanonical: the host check accepts a Microsoft host in
// any spelling of its origin (upper case, the default port). The login
// must use the canonical one: the Graph resource of the v2 scopes is what
// Entra knows (https://graph.microsoft.com, not …:443), and Entra's links
// (jwks_uri, nextLink) are written without the port.
func TestSettingsHostsCanonical(t *testing.T) {
	raw, _ := json.Marshal(map[string]any{
		"client_id": "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b", "tenant_domain": "contoso.onmicrosoft.com",
		"authority_host": "https://LOGIN.microsoftonline.com:443", "graph_host": "https://Graph.Microsoft.com:443/",
		"ext_profile": true,
	})
	c := NewConnector(nil, nil, nil, nil)
	s, err := c.settings(&store.Connection{ID: "con_1", Name: "contoso", Strategy: Strategy, Options: raw})
	if err != nil {
		t.Fatal(err)
	}
	if s.endpoint.Authority != "https://login.microsoftonline.com" || s.graphHost != "https://graph.microsoft.com" {
		t.Errorf("authority %q, graph %q", s.endpoint.Authority, s.graphHost)
	}
	if !slices.Contains(s.scopes, "https://graph.microsoft.com/User.Read") {
		t.Errorf("scopes %q", s.scopes)
	}
}
