package management_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/connection/azuread"
	"github.com/gatehouse/gatehouse/internal/management"
	"github.com/gatehouse/gatehouse/internal/server/servertest"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// seedSecret is the Azure client secret of the seed connection; tests
// look for it where it must not be.
const seedSecret = "Qx8Q~seed.Native-App_secret-0123456789abcd"

// seedApp is the seed's prerequisite: a Native application with a
// callback URL whose grant types include the password flows.
func seedApp(a *api) string {
	a.t.Helper()
	c := a.must(201, "POST", "/api/v2/clients", map[string]any{
		"name":        "My Native App",
		"app_type":    "native",
		"callbacks":   []string{"com.example.app://example.eu.auth0.com/ios/com.example.app/callback"},
		"grant_types": []string{"authorization_code", "refresh_token", "password", "http://auth0.com/oauth/grant-type/password-realm"},
	})
	return c["client_id"].(string)
}

// seedConnection is the connection of the seed's two tables: every field
// the dashboard asks for, mapped to its API property.
func seedConnection(clientID string) map[string]any {
	return map[string]any{
		"name":            "contoso-azure-ad",  // Connection name
		"strategy":        "waad",              // Microsoft Azure AD
		"display_name":    "Contoso employees", // Display name
		"enabled_clients": []string{clientID},  // Enable the connection for the app
		"options": map[string]any{
			"icon_url":                 "https://contoso.example.com/logo.png",         // Logo URL
			"tenant_domain":            "contoso.onmicrosoft.com",                      // Microsoft Azure AD Domain
			"domain_aliases":           []string{"contoso.com", "contoso.example.com"}, // Domain aliases
			"client_id":                "0f0c1b6e-9a6f-4c55-9bbc-1a2b3c4d5e6f",         // Client ID (the Native app)
			"client_secret":            seedSecret,                                     // Client Secret
			"useCommonEndpoint":        false,                                          // Use common endpoint
			"identity_api":             "azure-active-directory-v1.0",                  // Identity API: Azure Active Directory (v1)
			"app_id":                   "api://contoso-web-api",                        // App ID URI (the Web app's)
			"basic_profile":            true,                                           // Attributes
			"ext_profile":              true,                                           // Extended attributes
			"ext_groups":               true,
			"api_enable_users":         true,            // Auth0 APIs
			"set_user_root_attributes": "on_each_login", // Sync user profile attributes at each login
		},
	}
}

var connectionIDRE = regexp.MustCompile(`^con_[A-Za-z0-9]{16}$`)

// TestConnectionSeedGolden pins the JSON of the waad connection created
// from the seed's fields. Run with -update to rewrite the golden file.
func TestConnectionSeedGolden(t *testing.T) {
	a := start(t, storetest.SQLite)
	clientID := seedApp(a)
	created := a.must(201, "POST", "/api/v2/connections", seedConnection(clientID))
	id, _ := created["id"].(string)
	if !connectionIDRE.MatchString(id) {
		t.Fatalf("id %q is not con_ + 16 alphanumerics", id)
	}
	got := a.must(200, "GET", "/api/v2/connections/"+id, nil)
	if !jsonEqual(got, created) {
		t.Errorf("GET differs from the POST answer:\n%v\n%v", got, created)
	}
	raw, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer(id, "con_ID", clientID, "CLIENT_ID").Replace(string(raw)) + "\n"
	path := filepath.Join("testdata", "waad_connection.golden")
	if *update {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if text != string(want) {
		t.Errorf("connection JSON differs from %s (run go test -update after checking):\n%s", path, text)
	}
}

// TestConnectionLifecycle walks every /connections route on every backend.
func TestConnectionLifecycle(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			clientID := seedApp(a)
			created := a.must(201, "POST", "/api/v2/connections", seedConnection(clientID))
			id := created["id"].(string)
			if created["display_name"] != "Contoso employees" || !jsonEqual(created["realms"], []string{"contoso-azure-ad"}) ||
				!jsonEqual(created["enabled_clients"], []string{clientID}) || created["is_domain_connection"] != false || created["show_as_button"] != false {
				t.Errorf("created %v", created)
			}
			opts := created["options"].(map[string]any)
			for k, v := range map[string]any{
				"client_secret": management.SecretMarker, "waad_protocol": "openid-connect", "use_wsfed": false,
				"waad_common_endpoint": false, "should_trust_email_verified_connection": "never_set_emails_as_verified",
				"authority_host": "https://login.microsoftonline.com", "graph_host": "https://graph.microsoft.com",
				"identity_api": "azure-active-directory-v1.0",
			} {
				if opts[k] != v {
					t.Errorf("options.%s = %v, want %v", k, opts[k], v)
				}
			}

			// A minimal connection gets Auth0's server-filled defaults.
			minimal := a.must(201, "POST", "/api/v2/connections", map[string]any{"name": "minimal", "strategy": "waad",
				"options": map[string]any{"client_id": "abc", "tenant_domain": "example.onmicrosoft.com", "custom_thing": map[string]any{"kept": true}}})
			mopts := minimal["options"].(map[string]any)
			if minimal["display_name"] != "minimal" || !jsonEqual(minimal["realms"], []string{"minimal"}) || !jsonEqual(minimal["enabled_clients"], []string{}) ||
				mopts["identity_api"] != "microsoft-identity-platform-v2.0" || mopts["useCommonEndpoint"] != false || !jsonEqual(mopts["custom_thing"], map[string]any{"kept": true}) {
				t.Errorf("defaults: %v", minimal)
			}
			if _, ok := mopts["client_secret"]; ok {
				t.Errorf("marker shown for a connection without a secret")
			}

			// Listing: filters, fields, paging envelope.
			if l := a.list("/api/v2/connections?strategy=waad"); len(l) != 2 {
				t.Errorf("strategy=waad: %d", len(l))
			}
			if l := a.list("/api/v2/connections?strategy=auth0"); len(l) != 0 {
				t.Errorf("strategy=auth0: %d", len(l))
			}
			if l := a.list("/api/v2/connections?name=minimal"); len(l) != 1 || l[0].(map[string]any)["id"] != minimal["id"] {
				t.Errorf("name=minimal: %v", l)
			}
			l := a.list("/api/v2/connections?fields=id,name&include_fields=true")
			if len(l) != 2 || len(l[0].(map[string]any)) != 2 {
				t.Errorf("fields=id,name: %v", l)
			}
			l = a.list("/api/v2/connections?fields=options&include_fields=false")
			if _, ok := l[0].(map[string]any)["options"]; ok || l[0].(map[string]any)["name"] == nil {
				t.Errorf("include_fields=false: %v", l[0])
			}
			one := a.must(200, "GET", "/api/v2/connections/"+id+"?fields=name,strategy", nil)
			if len(one) != 2 || one["strategy"] != "waad" {
				t.Errorf("GET fields: %v", one)
			}
			env := a.must(200, "GET", "/api/v2/connections?include_totals=true&per_page=1&page=1", nil)
			if env["total"] != 2.0 || env["start"] != 1.0 || env["limit"] != 1.0 || env["length"] != 1.0 || len(env["connections"].([]any)) != 1 {
				t.Errorf("envelope %v", env)
			}

			// PATCH replaces options as a whole, keeps the secret it does not
			// name, and resets display_name when omitted, as Auth0 does.
			secretBefore := a.secretEnc(id)
			patched := a.must(200, "PATCH", "/api/v2/connections/"+id, map[string]any{
				"options":        map[string]any{"client_id": "0f0c1b6e-9a6f-4c55-9bbc-1a2b3c4d5e6f", "tenant_domain": "contoso.onmicrosoft.com", "ext_groups": true},
				"show_as_button": true,
				"metadata":       map[string]string{"owner": "it"},
			})
			popts := patched["options"].(map[string]any)
			if _, ok := popts["domain_aliases"]; ok {
				t.Errorf("options not replaced as a whole: %v", popts)
			}
			if popts["identity_api"] != "microsoft-identity-platform-v2.0" || popts["client_secret"] != management.SecretMarker {
				t.Errorf("patched options %v", popts)
			}
			if patched["display_name"] != "contoso-azure-ad" || patched["show_as_button"] != true || !jsonEqual(patched["metadata"], map[string]string{"owner": "it"}) ||
				!jsonEqual(patched["enabled_clients"], []string{clientID}) {
				t.Errorf("patched %v", patched)
			}
			if !slices.Equal(a.secretEnc(id), secretBefore) {
				t.Errorf("a PATCH without client_secret changed the stored secret")
			}
			// Sending back what GET returned (with the marker) keeps it too.
			got := a.must(200, "GET", "/api/v2/connections/"+id, nil)
			a.must(200, "PATCH", "/api/v2/connections/"+id, map[string]any{"name": got["name"], "strategy": got["strategy"], "options": got["options"], "display_name": "Back"})
			if !slices.Equal(a.secretEnc(id), secretBefore) {
				t.Errorf("a PATCH with the marker changed the stored secret")
			}
			a.must(200, "PATCH", "/api/v2/connections/"+id, map[string]any{"options": withSecret(got["options"], "Another~Secret-value")})
			if slices.Equal(a.secretEnc(id), secretBefore) {
				t.Errorf("a PATCH with a new client_secret kept the old one")
			}
			cleared := a.must(200, "PATCH", "/api/v2/connections/"+id, map[string]any{"options": withSecret(got["options"], "")})
			if _, ok := cleared["options"].(map[string]any)["client_secret"]; ok || len(a.secretEnc(id)) != 0 {
				t.Errorf("client_secret \"\" did not remove the secret")
			}
			// PATCH without options keeps them.
			kept := a.must(200, "PATCH", "/api/v2/connections/"+id, map[string]any{"display_name": "Contoso"})
			if !jsonEqual(kept["options"], cleared["options"]) || kept["display_name"] != "Contoso" {
				t.Errorf("PATCH without options: %v", kept)
			}

			// DELETE: 202 with deleted_at, then 204; the connection is gone.
			del := a.must(202, "DELETE", "/api/v2/connections/"+id, nil)
			if ts, _ := del["deleted_at"].(string); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(ts) {
				t.Errorf("deleted_at %q", ts)
			} else if when, _ := time.Parse(time.RFC3339, ts); time.Since(when) > time.Minute {
				t.Errorf("deleted_at %q is not now", ts)
			}
			a.must(204, "DELETE", "/api/v2/connections/"+id, nil)
			for _, path := range []string{"/api/v2/connections/" + id, "/api/v2/connections/" + id + "/clients"} {
				status, _, v := a.call("GET", path, nil)
				errorIs(t, status, v, 404, "inexistent_connection", "The connection does not exist")
			}
			status, _, v := a.call("PATCH", "/api/v2/connections/"+id, map[string]any{})
			errorIs(t, status, v, 404, "inexistent_connection", "The connection does not exist")
			status, _, v = a.call("PATCH", "/api/v2/connections/"+id+"/clients", []any{})
			errorIs(t, status, v, 404, "inexistent_connection", "The connection does not exist")
		})
	}
}

func withSecret(options any, secret string) map[string]any {
	m := map[string]any{}
	for k, v := range options.(map[string]any) {
		m[k] = v
	}
	m["client_secret"] = secret
	return m
}

// secretEnc reads a connection's sealed secret straight from the database.
func (a *api) secretEnc(id string) []byte {
	a.t.Helper()
	db := a.openDB()
	defer db.Close()
	var b []byte
	if err := db.QueryRow("SELECT secret_enc FROM connections WHERE id = $1", id).Scan(&b); err != nil {
		a.t.Fatal(err)
	}
	return b
}

// TestConnectionValidation: every rule of the options and of the
// connection is a 400 naming the property (409 for a taken name), and a
// refused request stores nothing.
func TestConnectionValidation(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			clientID := seedApp(a)
			existing := a.must(201, "POST", "/api/v2/connections", seedConnection(clientID))
			before := a.list("/api/v2/connections")

			opts := func(change map[string]any) map[string]any {
				o := map[string]any{"client_id": "abc", "tenant_domain": "contoso.onmicrosoft.com"}
				for k, v := range change {
					if v == nil {
						delete(o, k)
					} else {
						o[k] = v
					}
				}
				return o
			}
			conn := func(o map[string]any) map[string]any {
				return map[string]any{"name": "new-conn", "strategy": "waad", "options": o}
			}
			cases := []struct {
				name   string
				body   any
				status int
				code   string
				msg    string
			}{
				{"missing name", map[string]any{"strategy": "waad"}, 400, "invalid_body", "Missing required property: name"},
				{"missing strategy", map[string]any{"name": "x"}, 400, "invalid_body", "Missing required property: strategy"},
				{"unknown strategy", map[string]any{"name": "x", "strategy": "auth0", "options": opts(nil)}, 400, "invalid_body", "on property strategy"},
				{"name pattern", map[string]any{"name": "bad name", "strategy": "waad", "options": opts(nil)}, 400, "invalid_body", "String does not match pattern ^[a-zA-Z0-9](-[a-zA-Z0-9]|[a-zA-Z0-9])*$' on property name"},
				{"name leading dash", map[string]any{"name": "-x", "strategy": "waad", "options": opts(nil)}, 400, "invalid_body", "on property name"},
				{"name double dash", map[string]any{"name": "a--b", "strategy": "waad", "options": opts(nil)}, 400, "invalid_body", "on property name"},
				{"name too long", map[string]any{"name": strings.Repeat("a", 129), "strategy": "waad", "options": opts(nil)}, 400, "invalid_body", "on property name"},
				{"duplicate name", map[string]any{"name": "contoso-azure-ad", "strategy": "waad", "options": opts(nil)}, 409, "connection_conflict", "A connection with the same name already exists"},
				{"unknown property", map[string]any{"name": "x", "strategy": "waad", "options": opts(nil), "provisioning_ticket_url": "x"}, 400, "invalid_body", "Additional properties not allowed: provisioning_ticket_url"},
				{"options not object", map[string]any{"name": "x", "strategy": "waad", "options": "x"}, 400, "invalid_body", "on property options"},
				{"display_name type", map[string]any{"name": "x", "strategy": "waad", "options": opts(nil), "display_name": 1}, 400, "invalid_body", "on property display_name"},
				{"display_name too long", map[string]any{"name": "x", "strategy": "waad", "options": opts(nil), "display_name": strings.Repeat("d", 129)}, 400, "invalid_body", "on property display_name"},
				{"realms item", map[string]any{"name": "x", "strategy": "waad", "options": opts(nil), "realms": []any{"a", 2}}, 400, "invalid_body", "on property realms[1]"},
				{"metadata value", map[string]any{"name": "x", "strategy": "waad", "options": opts(nil), "metadata": map[string]any{"a": true}}, 400, "invalid_body", "on property metadata.a"},
				{"unknown enabled client", map[string]any{"name": "x", "strategy": "waad", "options": opts(nil), "enabled_clients": []string{clientID, "ghost"}}, 400, "invalid_body", "on property enabled_clients[1]"},
				{"no options", map[string]any{"name": "x", "strategy": "waad"}, 400, "invalid_body", "on property options.client_id"},
				{"client_id missing", conn(opts(map[string]any{"client_id": nil})), 400, "invalid_body", "Missing required property: client_id' on property options.client_id"},
				{"tenant_domain missing", conn(opts(map[string]any{"tenant_domain": nil})), 400, "invalid_body", "on property options.tenant_domain"},
				{"tenant_domain not a domain", conn(opts(map[string]any{"tenant_domain": "contoso"})), 400, "invalid_body", "on property options.tenant_domain"},
				{"tenant_domain URL", conn(opts(map[string]any{"tenant_domain": "https://contoso.onmicrosoft.com"})), 400, "invalid_body", "on property options.tenant_domain"},
				{"tenant_domain type", conn(opts(map[string]any{"tenant_domain": 5})), 400, "invalid_body", "'Expected type string but found type number' on property options.tenant_domain"},
				{"domain_aliases item", conn(opts(map[string]any{"domain_aliases": []string{"ok.com", "not a domain"}})), 400, "invalid_body", "on property options.domain_aliases[1]"},
				{"tenantId", conn(opts(map[string]any{"tenantId": "123"})), 400, "invalid_body", "on property options.tenantId"},
				{"identity_api enum", conn(opts(map[string]any{"identity_api": "v3"})), 400, "invalid_body", "on property options.identity_api"},
				{"app_id not a URI", conn(opts(map[string]any{"identity_api": "azure-active-directory-v1.0", "app_id": "contoso web api"})), 400, "invalid_body", "on property options.app_id"},
				{"v1 password without app_id", map[string]any{"name": "x", "strategy": "waad", "enabled_clients": []string{clientID}, "options": opts(map[string]any{"identity_api": "azure-active-directory-v1.0"})}, 400, "invalid_body", "on property options.app_id"},
				{"waad_protocol enum", conn(opts(map[string]any{"waad_protocol": "saml"})), 400, "invalid_body", "on property options.waad_protocol"},
				{"ws-federation on v2", conn(opts(map[string]any{"waad_protocol": "ws-federation"})), 400, "invalid_body", "on property options.waad_protocol"},
				{"userid_attribute enum", conn(opts(map[string]any{"userid_attribute": "upn"})), 400, "invalid_body", "on property options.userid_attribute"},
				{"common endpoint with oid", conn(opts(map[string]any{"useCommonEndpoint": true, "allow_any_tenant": true, "userid_attribute": "oid"})), 400, "invalid_body", "on property options.userid_attribute"},
				{"common endpoint trusting email", conn(opts(map[string]any{"useCommonEndpoint": true, "allow_any_tenant": true, "should_trust_email_verified_connection": "always_set_emails_as_verified"})), 400, "invalid_body", "on property options.should_trust_email_verified_connection"},
				{"trust enum", conn(opts(map[string]any{"should_trust_email_verified_connection": "sometimes"})), 400, "invalid_body", "on property options.should_trust_email_verified_connection"},
				{"sync enum", conn(opts(map[string]any{"set_user_root_attributes": "always"})), 400, "invalid_body", "on property options.set_user_root_attributes"},
				{"useCommonEndpoint type", conn(opts(map[string]any{"useCommonEndpoint": "true"})), 400, "invalid_body", "'Expected type boolean but found type string' on property options.useCommonEndpoint"},
				{"ext flag type", conn(opts(map[string]any{"ext_upn": "no"})), 400, "invalid_body", "on property options.ext_upn"},
				{"max_groups number", conn(opts(map[string]any{"max_groups_to_retrieve": 250})), 400, "invalid_body", "'Expected type string but found type number' on property options.max_groups_to_retrieve"},
				{"max_groups not a number", conn(opts(map[string]any{"max_groups_to_retrieve": "many"})), 400, "invalid_body", "on property options.max_groups_to_retrieve"},
				{"max_groups zero", conn(opts(map[string]any{"max_groups_to_retrieve": "0"})), 400, "invalid_body", "on property options.max_groups_to_retrieve"},
				{"strategy_version fraction", conn(opts(map[string]any{"strategy_version": 2.5})), 400, "invalid_body", "on property options.strategy_version"},
				{"scope item", conn(opts(map[string]any{"scope": []any{"User.Read", 1}})), 400, "invalid_body", "on property options.scope[1]"},
				{"upstream_params type", conn(opts(map[string]any{"upstream_params": "x"})), 400, "invalid_body", "on property options.upstream_params"},
				{"icon_url", conn(opts(map[string]any{"icon_url": "logo.png"})), 400, "invalid_body", "on property options.icon_url"},
				{"authority_host http", conn(opts(map[string]any{"authority_host": "http://login.microsoftonline.com"})), 400, "invalid_body", "on property options.authority_host"},
				{"authority_host scheme", conn(opts(map[string]any{"authority_host": "ftp://login.microsoftonline.com"})), 400, "invalid_body", "on property options.authority_host"},
				{"authority_host malformed", conn(opts(map[string]any{"authority_host": "login.microsoftonline.com"})), 400, "invalid_body", "on property options.authority_host"},
				{"authority_host query", conn(opts(map[string]any{"authority_host": "https://login.microsoftonline.com/?x=1"})), 400, "invalid_body", "on property options.authority_host"},
				{"graph_host http", conn(opts(map[string]any{"graph_host": "http://graph.microsoft.com"})), 400, "invalid_body", "on property options.graph_host"},
				{"graph_host credentials", conn(opts(map[string]any{"graph_host": "https://u:p@graph.microsoft.com"})), 400, "invalid_body", "on property options.graph_host"},
				{"allowed_tenants without common", conn(opts(map[string]any{"allowed_tenants": []string{"72f988bf-86f1-41af-91ab-2d7cd011db47"}})), 400, "invalid_body", "on property options.allowed_tenants"},
				{"allowed_tenants item", conn(opts(map[string]any{"useCommonEndpoint": true, "allowed_tenants": []string{"contoso"}})), 400, "invalid_body", "on property options.allowed_tenants[0]"},
				{"common endpoint without allow-list", conn(opts(map[string]any{"useCommonEndpoint": true})), 400, "invalid_body", "on property options.allowed_tenants"},
				{"allow_any_tenant type", conn(opts(map[string]any{"useCommonEndpoint": true, "allow_any_tenant": "yes"})), 400, "invalid_body", "on property options.allow_any_tenant"},
				{"client_secret type", conn(opts(map[string]any{"client_secret": 12345})), 400, "invalid_body", "on property options.client_secret"},
				{"client_secret marker", conn(opts(map[string]any{"client_secret": management.SecretMarker})), 400, "invalid_body", "on property options.client_secret"},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					status, _, v := a.call("POST", "/api/v2/connections", c.body)
					errorIs(t, status, v, c.status, c.code, c.msg)
					if strings.Contains(fmt.Sprint(v), seedSecret) {
						t.Errorf("the error echoes the secret")
					}
				})
			}
			// The same rules apply to PATCH, plus name and strategy are
			// immutable; a refused PATCH changes nothing.
			id := existing["id"].(string)
			for _, c := range []struct {
				body any
				msg  string
			}{
				{map[string]any{"name": "renamed"}, "on property name"},
				{map[string]any{"strategy": "auth0"}, "on property strategy"},
				{map[string]any{"options": opts(map[string]any{"tenant_domain": "nope"})}, "on property options.tenant_domain"},
				{map[string]any{"options": opts(map[string]any{"identity_api": "azure-active-directory-v1.0"})}, "on property options.app_id"},
				{map[string]any{"enabled_clients": []string{"ghost"}}, "on property enabled_clients[0]"},
				{map[string]any{"is_domain_connection": "yes"}, "on property is_domain_connection"},
				{map[string]any{"bogus": true}, "Additional properties not allowed: bogus"},
				// A valid change beside an invalid one is not made either.
				{map[string]any{"display_name": "Renamed", "enabled_clients": []string{clientID, "ghost"}}, "on property enabled_clients[1]"},
				{map[string]any{"show_as_button": true, "metadata": map[string]any{"k": 1}}, "on property metadata.k"},
				{map[string]any{"options": withSecret(existing["options"], seedSecret+"-new"), "realms": []string{""}}, "on property realms[0]"},
				{map[string]any{"options": withSecret(existing["options"], seedSecret+"-new"), "enabled_clients": []string{"ghost"}}, "on property enabled_clients[0]"},
				{map[string]any{"realms": []string{"other"}, "options": changed(existing["options"], map[string]any{"authority_host": "https://login.attacker.example"})}, "on property options.authority_host"},
			} {
				status, _, v := a.call("PATCH", "/api/v2/connections/"+id, c.body)
				errorIs(t, status, v, 400, "invalid_body", c.msg)
			}
			secret := a.secretEnc(id)
			if after := a.must(200, "GET", "/api/v2/connections/"+id, nil); !jsonEqual(after, existing) {
				t.Errorf("a refused PATCH changed the connection:\n%v\n%v", existing, after)
			}
			if !slices.Equal(a.secretEnc(id), secret) {
				t.Errorf("a refused PATCH changed the secret")
			}
			if after := a.list("/api/v2/connections"); !jsonEqual(after, before) {
				t.Errorf("a refused POST stored something: %v", after)
			}
			// A client cannot gain the password grant while it is enabled on
			// a v1 connection that has no App ID URI.
			v1 := a.must(201, "POST", "/api/v2/connections", map[string]any{"name": "v1-no-app-id", "strategy": "waad",
				"options": opts(map[string]any{"identity_api": "azure-active-directory-v1.0"})})
			web := a.must(201, "POST", "/api/v2/clients", map[string]any{"name": "web", "app_type": "regular_web"})
			a.must(204, "PATCH", "/api/v2/connections/"+v1["id"].(string)+"/clients", []map[string]any{{"client_id": web["client_id"], "status": true}})
			status, _, v := a.call("PATCH", "/api/v2/clients/"+web["client_id"].(string), map[string]any{"grant_types": []string{"password"}})
			errorIs(t, status, v, 400, "invalid_body", "on property grant_types")
		})
	}
}

// TestConnectionSecretWriteOnly: options.client_secret is never returned,
// never stored in clear, never logged.
func TestConnectionSecretWriteOnly(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			clientID := seedApp(a)
			created := a.must(201, "POST", "/api/v2/connections", seedConnection(clientID))
			id := created["id"].(string)
			a.must(200, "PATCH", "/api/v2/connections/"+id, map[string]any{"options": withSecret(created["options"], seedSecret+"-2")})
			for _, path := range []string{"/api/v2/connections/" + id, "/api/v2/connections", "/api/v2/connections?include_totals=true", "/api/v2/connections?take=10"} {
				_, _, raw := a.Do(t, "GET", path, a.token, nil)
				if strings.Contains(string(raw), "Qx8Q~") {
					t.Errorf("GET %s returns the secret", path)
				}
				if !strings.Contains(string(raw), `"client_secret":"`+management.SecretMarker+`"`) {
					t.Errorf("GET %s lacks the marker: %s", path, raw)
				}
			}
			rows := a.rawRows("connections")
			if !strings.Contains(rows, "contoso.onmicrosoft.com") {
				t.Fatalf("raw scan did not see the connection row")
			}
			if strings.Contains(rows, "Qx8Q~") {
				t.Errorf("the connection secret is stored in clear")
			}
			if strings.Contains(a.Logs.String(), "Qx8Q~") {
				t.Errorf("the connection secret was logged")
			}
		})
	}
}

// changed copies options with the given properties set.
func changed(options any, set map[string]any) map[string]any {
	m := map[string]any{}
	for k, v := range options.(map[string]any) {
		m[k] = v
	}
	for k, v := range set {
		m[k] = v
	}
	return m
}

// TestConnectionHostNeedsSecret: a PATCH that moves authority_host or
// graph_host must carry the client secret again, even between hosts the
// operator allows. Otherwise whoever may change options would have the
// stored secret sent to another host without knowing it.
func TestConnectionHostNeedsSecret(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			// Hosts the operator allows, so that only the secret rule is
			// at stake here (TestConnectionHostsAllowed covers the rest).
			a := start(t, backend, servertest.AllowUpstream("https://login.attacker.example", "https://graph.attacker.example"))
			created := a.must(201, "POST", "/api/v2/connections", seedConnection(seedApp(a)))
			id := created["id"].(string)
			path := "/api/v2/connections/" + id
			opts := created["options"]
			const evil = "https://login.attacker.example"
			withoutSecret := changed(opts, map[string]any{"authority_host": evil})
			delete(withoutSecret, "client_secret")
			for _, tc := range []struct {
				name    string
				options map[string]any
				prop    string
			}{
				{"authority_host with the marker", changed(opts, map[string]any{"authority_host": evil}), "authority_host"},
				{"authority_host with client_secret null", changed(opts, map[string]any{"authority_host": evil, "client_secret": nil}), "authority_host"},
				{"authority_host without client_secret", withoutSecret, "authority_host"},
				{"graph_host", changed(opts, map[string]any{"graph_host": "https://graph.attacker.example"}), "graph_host"},
				{"both", changed(opts, map[string]any{"authority_host": evil, "graph_host": "https://graph.attacker.example"}), "authority_host"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					_, _, before := a.Do(t, "GET", path, a.token, nil)
					sealed := a.secretEnc(id)
					status, _, got := a.call("PATCH", path, map[string]any{"options": tc.options})
					errorIs(t, status, got, http.StatusBadRequest, "invalid_body", "options."+tc.prop+" changed")
					if msg := got.(map[string]any)["message"].(string); !strings.HasSuffix(msg, "on property options.client_secret.") {
						t.Errorf("message %q does not name options.client_secret", msg)
					}
					if _, _, after := a.Do(t, "GET", path, a.token, nil); string(after) != string(before) || !bytes.Equal(a.secretEnc(id), sealed) {
						t.Errorf("a refused PATCH changed the connection:\n%s\n%s", before, after)
					}
				})
			}

			sealed := a.secretEnc(id)
			// The same host, as written or with a trailing slash, and a
			// change of tenant (same host, another path) keep the secret.
			a.must(200, "PATCH", path, map[string]any{"options": changed(opts, map[string]any{"authority_host": azuread.DefaultAuthorityHost + "/"})})
			got := a.must(200, "PATCH", path, map[string]any{"options": changed(opts, map[string]any{"tenant_domain": "fabrikam.onmicrosoft.com"})})
			if !bytes.Equal(a.secretEnc(id), sealed) || got["options"].(map[string]any)["client_secret"] != management.SecretMarker {
				t.Fatalf("an unchanged host dropped or replaced the secret: %v", got)
			}
			// With the secret sent again, the host may change.
			got = a.must(200, "PATCH", path, map[string]any{"options": changed(opts, map[string]any{"authority_host": "https://login.microsoftonline.us", "client_secret": seedSecret + "-us"})})
			if bytes.Equal(a.secretEnc(id), sealed) || got["options"].(map[string]any)["authority_host"] != "https://login.microsoftonline.us" {
				t.Fatalf("host change with a new secret: %v", got)
			}
			// Or with the secret removed; a connection without one moves freely.
			got = a.must(200, "PATCH", path, map[string]any{"options": changed(opts, map[string]any{"graph_host": "https://graph.microsoft.us", "client_secret": ""})})
			if len(a.secretEnc(id)) != 0 || got["options"].(map[string]any)["client_secret"] != nil {
				t.Fatalf("host change removing the secret: %v", got)
			}
			noSecret := changed(got["options"], map[string]any{"authority_host": azuread.DefaultAuthorityHost, "graph_host": azuread.DefaultGraphHost})
			a.must(200, "PATCH", path, map[string]any{"options": noSecret})
		})
	}
}

// TestConnectionHostsAllowed: authority_host and graph_host may name only
// Microsoft's hosts and the base URLs the operator allows in
// GATEHOUSE_UPSTREAM_HOSTS, on create and on update, with or without a
// new client secret; a refused request stores nothing.
func TestConnectionHostsAllowed(t *testing.T) {
	const proxy = "https://entra-proxy.corp.example"
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend, servertest.AllowUpstream(proxy))
			clientID := seedApp(a)
			seed := seedConnection(clientID)
			withHosts := func(name string, hosts map[string]any) map[string]any {
				c := map[string]any{}
				for k, v := range seed {
					c[k] = v
				}
				c["name"] = name
				c["options"] = changed(seed["options"], hosts)
				return c
			}
			for _, tc := range []struct {
				name  string
				hosts map[string]any
				prop  string
			}{
				{"relay", map[string]any{"authority_host": "https://login.attacker.example"}, "authority_host"},
				{"relay graph", map[string]any{"graph_host": "https://graph.attacker.example"}, "graph_host"},
				{"loopback", map[string]any{"authority_host": "http://127.0.0.1:9"}, "authority_host"},
				{"lookalike", map[string]any{"authority_host": "https://login.microsoftonline.com.attacker.example"}, "authority_host"},
				{"proxy other port", map[string]any{"authority_host": proxy + ":8443"}, "authority_host"},
				{"Graph host as authority", map[string]any{"authority_host": "https://graph.microsoft.com"}, "authority_host"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					status, _, got := a.call("POST", "/api/v2/connections", withHosts("refused", tc.hosts))
					errorIs(t, status, got, http.StatusBadRequest, "invalid_body", "GATEHOUSE_UPSTREAM_HOSTS")
					if msg := got.(map[string]any)["message"].(string); !strings.HasPrefix(msg, "Payload validation error: '") || !strings.HasSuffix(msg, "' on property options."+tc.prop+".") {
						t.Errorf("message %q does not name options.%s", msg, tc.prop)
					}
				})
			}
			if n := len(a.list("/api/v2/connections")); n != 0 {
				t.Fatalf("refused creates stored %d connections", n)
			}

			// Microsoft's national clouds and the operator's proxy are fine.
			a.must(201, "POST", "/api/v2/connections", withHosts("us-gov", map[string]any{"authority_host": "https://login.microsoftonline.us", "graph_host": "https://dod-graph.microsoft.us"}))
			a.must(201, "POST", "/api/v2/connections", withHosts("china", map[string]any{"authority_host": "https://login.partner.microsoftonline.cn", "graph_host": "https://microsoftgraph.chinacloudapi.cn"}))
			created := a.must(201, "POST", "/api/v2/connections", withHosts("proxied", map[string]any{"authority_host": proxy, "graph_host": proxy + "/"}))
			id := created["id"].(string)
			path := "/api/v2/connections/" + id

			// The reviewer's exploit: a new host with a new secret.
			_, _, before := a.Do(t, "GET", path, a.token, nil)
			sealed := a.secretEnc(id)
			status, _, got := a.call("PATCH", path, map[string]any{"options": changed(created["options"], map[string]any{
				"authority_host": "https://login.attacker.example", "client_secret": "attacker-chosen-secret"})})
			errorIs(t, status, got, http.StatusBadRequest, "invalid_body", "on property options.authority_host.")
			if _, _, after := a.Do(t, "GET", path, a.token, nil); string(after) != string(before) || !bytes.Equal(a.secretEnc(id), sealed) {
				t.Errorf("a refused PATCH changed the connection:\n%s\n%s", before, after)
			}
			// Back to Microsoft's global hosts, with the secret sent again.
			a.must(200, "PATCH", path, map[string]any{"options": changed(created["options"], map[string]any{
				"authority_host": azuread.DefaultAuthorityHost, "graph_host": azuread.DefaultGraphHost, "client_secret": seedSecret})})
		})
	}
}

// TestConnectionEnabledClients covers enabled_clients and the
// /connections/{id}/clients routes, and that deleting a client disables it.
func TestConnectionEnabledClients(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			var ids []string
			for i := range 5 {
				c := a.must(201, "POST", "/api/v2/clients", map[string]any{"name": fmt.Sprintf("app%d", i), "app_type": "native"})
				ids = append(ids, c["client_id"].(string))
			}
			slices.Sort(ids)
			conn := a.must(201, "POST", "/api/v2/connections", map[string]any{"name": "ad", "strategy": "waad", "enabled_clients": ids[:1],
				"options": map[string]any{"client_id": "abc", "tenant_domain": "contoso.onmicrosoft.com"}})
			path := "/api/v2/connections/" + conn["id"].(string) + "/clients"
			var items []map[string]any
			for _, id := range ids[1:] {
				items = append(items, map[string]any{"client_id": id, "status": true})
			}
			a.must(204, "PATCH", path, items)
			got := a.must(200, "GET", path, nil)
			if !jsonEqual(got, map[string]any{"clients": clientList(ids)}) {
				t.Errorf("GET clients %v", got)
			}
			// Checkpoint paging of the enabled clients.
			var walked []string
			next := ""
			for range 10 {
				q := "?take=2"
				if next != "" {
					q += "&from=" + next
				}
				page := a.must(200, "GET", path+q, nil)
				for _, c := range page["clients"].([]any) {
					walked = append(walked, c.(map[string]any)["client_id"].(string))
				}
				n, ok := page["next"].(string)
				if !ok {
					break
				}
				next = n
			}
			if !slices.Equal(walked, ids) {
				t.Errorf("checkpoint walk %v, want %v", walked, ids)
			}
			a.must(204, "PATCH", path, []map[string]any{{"client_id": ids[0], "status": false}, {"client_id": ids[1], "status": false}})
			if c := a.must(200, "GET", "/api/v2/connections/"+conn["id"].(string), nil); !jsonEqual(c["enabled_clients"], ids[2:]) {
				t.Errorf("enabled_clients after disabling: %v", c["enabled_clients"])
			}
			// Deleting a client removes it from the connection.
			a.must(204, "DELETE", "/api/v2/clients/"+ids[2], nil)
			if c := a.must(200, "GET", "/api/v2/connections/"+conn["id"].(string), nil); !jsonEqual(c["enabled_clients"], ids[3:]) {
				t.Errorf("enabled_clients after deleting a client: %v", c["enabled_clients"])
			}
			// enabled_clients in a PATCH replaces the set.
			p := a.must(200, "PATCH", "/api/v2/connections/"+conn["id"].(string), map[string]any{"enabled_clients": ids[:1]})
			if !jsonEqual(p["enabled_clients"], ids[:1]) {
				t.Errorf("PATCH enabled_clients: %v", p["enabled_clients"])
			}

			tooMany := make([]map[string]any, 51)
			for i := range tooMany {
				tooMany[i] = map[string]any{"client_id": ids[0], "status": true}
			}
			for _, c := range []struct {
				body any
				msg  string
			}{
				{tooMany, "maximum 50"},
				{map[string]any{"client_id": ids[0], "status": true}, "Expected type array"},
				{[]any{"x"}, "on property [0]"},
				{[]map[string]any{{"client_id": ids[0]}}, "on property [0].status"},
				{[]map[string]any{{"status": true}}, "on property [0].client_id"},
				{[]map[string]any{{"client_id": ids[0], "status": "on"}}, "on property [0].status"},
				{[]map[string]any{{"client_id": ids[0], "status": true, "x": 1}}, "Additional properties not allowed: x"},
				{[]map[string]any{{"client_id": ids[0], "status": true}, {"client_id": "ghost", "status": true}}, "on property client_id"},
			} {
				status, _, v := a.call("PATCH", path, c.body)
				errorIs(t, status, v, 400, "invalid_body", c.msg)
			}
			if c := a.must(200, "GET", path, nil); !jsonEqual(c, map[string]any{"clients": clientList(ids[:1])}) {
				t.Errorf("a refused PATCH changed the enabled clients: %v", c)
			}
			status, _, v := a.call("GET", path+"?from=garbage", nil)
			errorIs(t, status, v, 400, "invalid_query_string", "on property from")
		})
	}
}

func clientList(ids []string) []map[string]string {
	out := []map[string]string{}
	for _, id := range ids {
		out = append(out, map[string]string{"client_id": id})
	}
	return out
}

// TestConnectionPaging covers offset paging and the from/take checkpoint
// walk of GET /connections.
func TestConnectionPaging(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			var want []string
			for i := range 7 {
				c := a.must(201, "POST", "/api/v2/connections", map[string]any{"name": fmt.Sprintf("c%d", i), "strategy": "waad",
					"options": map[string]any{"client_id": "abc", "tenant_domain": "contoso.onmicrosoft.com"}})
				want = append(want, c["id"].(string))
			}
			ids := func(items []any) []string {
				var out []string
				for _, it := range items {
					out = append(out, it.(map[string]any)["id"].(string))
				}
				return out
			}
			if got := ids(a.list("/api/v2/connections?per_page=3&page=2")); !slices.Equal(got, want[6:]) {
				t.Errorf("page 2 of 3: %v", got)
			}
			if got := ids(a.list("/api/v2/connections")); !slices.Equal(got, want) {
				t.Errorf("default page: %v", got)
			}
			for _, take := range []int{1, 3, 7, 50} {
				var walked []string
				q := fmt.Sprintf("?take=%d", take)
				for range 20 {
					page := a.must(200, "GET", "/api/v2/connections"+q, nil)
					if _, ok := page["total"]; ok {
						t.Errorf("checkpoint page has offset fields: %v", page)
					}
					walked = append(walked, ids(page["connections"].([]any))...)
					n, ok := page["next"].(string)
					if !ok {
						break
					}
					q = fmt.Sprintf("?take=%d&from=%s", take, n)
				}
				if !slices.Equal(walked, want) {
					t.Errorf("take=%d walk %v", take, walked)
				}
			}
			// Mixing page sizes mid-walk still continues where it stopped.
			first := a.must(200, "GET", "/api/v2/connections?take=2", nil)
			rest := a.must(200, "GET", "/api/v2/connections?take=3&from="+first["next"].(string), nil)
			if got := ids(rest["connections"].([]any)); !slices.Equal(got, want[2:5]) {
				t.Errorf("take 2 then 3: %v", got)
			}
			if got := a.must(200, "GET", "/api/v2/connections?take=2&strategy=waad&name=c3", nil); len(got["connections"].([]any)) != 1 || got["next"] != nil {
				t.Errorf("filtered checkpoint: %v", got)
			}
			for q, msg := range map[string]string{
				"take=101":     "on property take",
				"take=0":       "on property take",
				"from=@@":      "on property from",
				"per_page=500": "on property per_page",
			} {
				status, _, v := a.call("GET", "/api/v2/connections?"+q, nil)
				errorIs(t, status, v, 400, "invalid_query_string", msg)
			}
			status, _, v := a.call("GET", "/api/v2/connections?page=20&per_page=50", nil)
			errorIs(t, status, v, 400, "invalid_paging",
				"Requesting page 20 exceeds the allowed maximum of 1000 records. To fetch results beyond 1000, use the checkpoint pagination method.")
		})
	}
}

// TestConnectionCommonEndpoint: the common endpoint is saved with an
// allow-list of tenants, or with allow_any_tenant.
func TestConnectionCommonEndpoint(t *testing.T) {
	a := start(t, storetest.SQLite)
	tenant := "72f988bf-86f1-41af-91ab-2d7cd011db47"
	c := a.must(201, "POST", "/api/v2/connections", map[string]any{"name": "multi", "strategy": "waad", "options": map[string]any{
		"client_id": "abc", "tenant_domain": "contoso.onmicrosoft.com", "useCommonEndpoint": true, "allowed_tenants": []string{tenant}}})
	opts := c["options"].(map[string]any)
	if opts["waad_common_endpoint"] != true || !jsonEqual(opts["allowed_tenants"], []string{tenant}) {
		t.Errorf("options %v", opts)
	}
	a.must(201, "POST", "/api/v2/connections", map[string]any{"name": "anyone", "strategy": "waad", "options": map[string]any{
		"client_id": "abc", "tenant_domain": "contoso.onmicrosoft.com", "useCommonEndpoint": true, "allow_any_tenant": true, "userid_attribute": "sub"}})
	status, _, v := a.call("PATCH", "/api/v2/connections/"+c["id"].(string), map[string]any{"options": map[string]any{
		"client_id": "abc", "tenant_domain": "contoso.onmicrosoft.com", "useCommonEndpoint": true}})
	errorIs(t, status, v, 400, "invalid_body", "on property options.allowed_tenants")
}

// TestConnectionWarnings: the retired Azure AD Graph as App ID URI is
// accepted with a warning.
func TestConnectionWarnings(t *testing.T) {
	a := start(t, storetest.SQLite)
	status, h, v := a.call("POST", "/api/v2/connections", map[string]any{"name": "legacy", "strategy": "waad", "options": map[string]any{
		"client_id": "abc", "tenant_domain": "contoso.onmicrosoft.com", "identity_api": "azure-active-directory-v1.0", "app_id": "https://graph.windows.net"}})
	if status != http.StatusCreated {
		t.Fatalf("%d %v", status, v)
	}
	if w := strings.Join(h.Values("Warning"), "\n"); !strings.Contains(w, "299 gatehouse") || !strings.Contains(w, "graph.windows.net") {
		t.Errorf("Warning header %q", w)
	}
	if !strings.Contains(a.Logs.String(), "graph.windows.net") {
		t.Errorf("the warning was not logged")
	}
}

// TestConnectionLockoutOptions: entra_lockout_threshold and
// entra_lockout_duration_seconds the login path could not use are a 400
// naming the option, on POST and PATCH, and store nothing; the login path
// would otherwise fall back to the defaults of both without a word.
func TestConnectionLockoutOptions(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			opts := func(k string, v any) map[string]any {
				return map[string]any{"client_id": "abc", "tenant_domain": "contoso.onmicrosoft.com", k: v}
			}
			existing := a.must(201, "POST", "/api/v2/connections", map[string]any{"name": "existing", "strategy": "waad",
				"options": opts("entra_lockout_threshold", 5)})
			id := existing["id"].(string)
			before := a.list("/api/v2/connections")
			const th, dur = "entra_lockout_threshold", "entra_lockout_duration_seconds"
			for _, c := range []struct {
				name string
				key  string
				val  any
				msg  string
			}{
				{"threshold string", th, "5", "'Expected type integer but found type string' on property options.entra_lockout_threshold."},
				{"threshold fraction", th, 2.5, "'Expected type integer but found type number' on property options.entra_lockout_threshold."},
				{"threshold boolean", th, true, "'Expected type integer but found type boolean' on property options.entra_lockout_threshold."},
				{"threshold object", th, map[string]any{"n": 5}, "'Expected type integer but found type object' on property options.entra_lockout_threshold."},
				{"threshold array", th, []int{5}, "'Expected type integer but found type array' on property options.entra_lockout_threshold."},
				{"threshold negative", th, -1, "'Value -1 is less than minimum 0' on property options.entra_lockout_threshold."},
				{"duration string", dur, "60", "'Expected type integer but found type string' on property options.entra_lockout_duration_seconds."},
				{"duration fraction", dur, 0.5, "'Expected type integer but found type number' on property options.entra_lockout_duration_seconds."},
				{"duration boolean", dur, false, "'Expected type integer but found type boolean' on property options.entra_lockout_duration_seconds."},
				{"duration object", dur, map[string]any{}, "'Expected type integer but found type object' on property options.entra_lockout_duration_seconds."},
				{"duration zero", dur, 0, "'Value 0 is less than minimum 1' on property options.entra_lockout_duration_seconds."},
				{"duration negative", dur, -60, "'Value -60 is less than minimum 1' on property options.entra_lockout_duration_seconds."},
				{"duration over 30 days", dur, 2592001, "'Value 2592001 is greater than maximum 2592000' on property options.entra_lockout_duration_seconds."},
				{"duration beyond int64", dur, json.Number("100000000000000000000"), "'Value 100000000000000000000 is greater than maximum 2592000' on property options.entra_lockout_duration_seconds."},
			} {
				t.Run(c.name, func(t *testing.T) {
					status, _, v := a.call("POST", "/api/v2/connections", map[string]any{"name": "new-conn", "strategy": "waad", "options": opts(c.key, c.val)})
					errorIs(t, status, v, 400, "invalid_body", "Payload validation error: "+c.msg)
					status, _, v = a.call("PATCH", "/api/v2/connections/"+id, map[string]any{"options": opts(c.key, c.val)})
					errorIs(t, status, v, 400, "invalid_body", "Payload validation error: "+c.msg)
				})
			}
			if after := a.list("/api/v2/connections"); !jsonEqual(after, before) {
				t.Errorf("a refused request changed the connections:\n%v\n%v", before, after)
			}
			// The bounds themselves, and null for "not set", are accepted.
			for _, o := range []map[string]any{
				{th: 0, dur: 2592000},
				{th: 1, dur: 1},
				{th: nil, dur: nil},
			} {
				body := opts(th, o[th])
				body[dur] = o[dur]
				got := a.must(200, "PATCH", "/api/v2/connections/"+id, map[string]any{"options": body})
				if opt := got["options"].(map[string]any); !jsonEqual(opt[th], o[th]) || !jsonEqual(opt[dur], o[dur]) {
					t.Errorf("PATCH %v: stored %v, %v", o, opt[th], opt[dur])
				}
			}
		})
	}
}
