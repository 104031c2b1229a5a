package azuread_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/connection/azuread"
)

// TestOptionsRoundTrip: what was given comes back (false values and
// unknown options included), defaults are added, the secret never is.
func TestOptionsRoundTrip(t *testing.T) {
	in := `{"client_id":"abc","client_secret":"s3cret","tenant_domain":"contoso.onmicrosoft.com","ext_profile":false,
		"ext_upn":false,"upstream_params":null,"max_groups_to_retrieve":"250","custom":{"x":[1,2]},"app_domain":null,
		"authority_host":"http://127.0.0.1:9999/","strategy_version":2}`
	o, err := azuread.ParseOptions(json.RawMessage(in))
	if err != nil {
		t.Fatal(err)
	}
	if o.ClientSecret != "s3cret" || o.GroupsLimit() != 250 || o.Keeps("ext_upn") || !o.Keeps("ext_email") || o.StrategyVersion != 2 {
		t.Errorf("parsed %+v", o)
	}
	o.Defaults()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"authority_host":"http://127.0.0.1:9999","client_id":"abc","custom":{"x":[1,2]},"ext_profile":false,"ext_upn":false,` +
		`"graph_host":"https://graph.microsoft.com","identity_api":"microsoft-identity-platform-v2.0","max_groups_to_retrieve":"250",` +
		`"should_trust_email_verified_connection":"never_set_emails_as_verified","strategy_version":2,"tenant_domain":"contoso.onmicrosoft.com",` +
		`"upstream_params":null,"useCommonEndpoint":false,"use_wsfed":false,"waad_common_endpoint":false,"waad_protocol":"openid-connect"}`
	if string(out) != want {
		t.Errorf("marshalled\n%s\nwant\n%s", out, want)
	}
	again, err := azuread.ParseOptions(out)
	if err != nil {
		t.Fatal(err)
	}
	again.Defaults()
	if out2, _ := json.Marshal(again); string(out2) != string(out) {
		t.Errorf("second round trip differs:\n%s", out2)
	}
}

func TestOptionsHelpers(t *testing.T) {
	o := &azuread.Options{TenantDomain: "contoso.onmicrosoft.com"}
	if o.AuthorityTenant() != "contoso.onmicrosoft.com" || o.UserIDAttribute() != "oid" || o.SyncMode() != "on_each_login" {
		t.Errorf("single tenant: %q %q %q", o.AuthorityTenant(), o.UserIDAttribute(), o.SyncMode())
	}
	o.TenantID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	if o.AuthorityTenant() != o.TenantID {
		t.Errorf("tenant id: %q", o.AuthorityTenant())
	}
	o.UseCommonEndpoint = true
	if o.AuthorityTenant() != "common" || o.UserIDAttribute() != "sub" {
		t.Errorf("common: %q %q", o.AuthorityTenant(), o.UserIDAttribute())
	}
	o = &azuread.Options{IdentityAPI: azuread.IdentityAPIV1, AppID: "https://graph.windows.net/"}
	if err := o.CheckPasswordGrant(); err != nil {
		t.Errorf("v1 with app_id: %v", err)
	}
	if w := o.Warnings(); len(w) != 1 || !strings.Contains(w[0], "retired") {
		t.Errorf("warnings %q", w)
	}
	o.AppID, o.ExtGroups = "api://contoso-web-api", true
	if w := o.Warnings(); len(w) != 1 || !strings.Contains(w[0], "will not be loaded") {
		t.Errorf("v1 groups with a Web API token: %q", w)
	}
	o.AppID = ""
	var oe *azuread.OptionError
	if err := o.CheckPasswordGrant(); !errors.As(err, &oe) || oe.Property != "app_id" {
		t.Errorf("v1 without app_id: %v", err)
	}
}

// TestOptionsErrors: each rule names its property; messages never carry
// the secret.
func TestOptionsErrors(t *testing.T) {
	base := func(extra string) string {
		return `{"client_id":"abc","client_secret":"TopSecret~1","tenant_domain":"contoso.onmicrosoft.com"` + extra + `}`
	}
	for _, c := range []struct {
		doc, prop string
	}{
		{`[1]`, ""},
		{base(`,"client_secret":7`), "client_secret"},
		{base(`,"useCommonEndpoint":"yes"`), "useCommonEndpoint"},
		{base(`,"strategy_version":"2"`), "strategy_version"},
		{base(`,"strategy_version":2.5`), "strategy_version"},
		{base(`,"domain_aliases":"a.com"`), "domain_aliases"},
		{base(`,"domain_aliases":["a.com",3]`), "domain_aliases[1]"},
		{base(`,"upstream_params":[]`), "upstream_params"},
		{base(`,"ext_groups":1`), "ext_groups"},
		{base(`,"ext_city":"no"`), "ext_city"},
		{`{"tenant_domain":"contoso.onmicrosoft.com"}`, "client_id"},
		{`{"client_id":"abc"}`, "tenant_domain"},
		{base(`,"tenant_domain":"contoso..com"`), "tenant_domain"},
		{base(`,"tenant_domain":"10.0.0.1"`), "tenant_domain"},
		{base(`,"domain":"not a domain"`), "domain"},
		{base(`,"tenantId":"nope"`), "tenantId"},
		{base(`,"identity_api":"v2"`), "identity_api"},
		{base(`,"app_id":"no scheme"`), "app_id"},
		{base(`,"waad_protocol":"ws-federation"`), "waad_protocol"},
		{base(`,"userid_attribute":"email"`), "userid_attribute"},
		{base(`,"set_user_root_attributes":"sometimes"`), "set_user_root_attributes"},
		{base(`,"should_trust_email_verified_connection":"yes"`), "should_trust_email_verified_connection"},
		{base(`,"useCommonEndpoint":true,"userid_attribute":"oid"`), "userid_attribute"},
		{base(`,"max_groups_to_retrieve":" 5"`), "max_groups_to_retrieve"},
		{base(`,"max_groups_to_retrieve":"-5"`), "max_groups_to_retrieve"},
		{base(`,"icon_url":"ftp://x.example.com/a.png"`), "icon_url"},
		{base(`,"authority_host":"http://login.example.com"`), "authority_host"},
		{base(`,"authority_host":"https://login.example.com#x"`), "authority_host"},
		{base(`,"graph_host":"graph.microsoft.com"`), "graph_host"},
		// Refused URLs holding the secret where the echo could show it:
		// user info typed without "//" is parsed as the path.
		{base(`,"authority_host":"https:/u:TopSecret@login.example.com"`), "authority_host"},
		{base(`,"graph_host":"https:///u:TopSecret@graph.example.com"`), "graph_host"},
		{base(`,"icon_url":"ftp://u:TopSecret@x.example.com/a.png"`), "icon_url"},
		{base(`,"icon_url":"ftp://x.example.com/a.png?k=TopSecret"`), "icon_url"},
		{base(`,"icon_url":"https:/u:TopSecret@x.example.com/a.png"`), "icon_url"},
		{base(`,"icon_url":"https://u:TopSecret%zz@x.example.com/a.png"`), "icon_url"},
		{base(`,"app_id":"api.example/x?k=TopSecret"`), "app_id"},
		{base(`,"app_id":"%zzTopSecret"`), "app_id"},
		{base(`,"allowed_tenants":["72f988bf-86f1-41af-91ab-2d7cd011db47"]`), "allowed_tenants"},
		{base(`,"useCommonEndpoint":true,"allowed_tenants":["x"]`), "allowed_tenants[0]"},
	} {
		o, err := azuread.ParseOptions(json.RawMessage(c.doc))
		if err == nil {
			o.Defaults()
			err = o.Validate()
		}
		var oe *azuread.OptionError
		if !errors.As(err, &oe) || oe.Property != c.prop {
			t.Errorf("%s: %v, want an error on %q", c.doc, err, c.prop)
			continue
		}
		if strings.Contains(err.Error(), "TopSecret") {
			t.Errorf("%s: error carries the secret", c.doc)
		}
	}
	for _, ok := range []string{
		base(`,"authority_host":"http://localhost:8443","graph_host":"http://[::1]:9000/graph"`),
		base(`,"authority_host":"https://login.microsoftonline.us","graph_host":"https://graph.microsoft.us"`),
		base(`,"useCommonEndpoint":true,"allowed_tenants":["72f988bf-86f1-41af-91ab-2d7cd011db47"]`),
		base(`,"identity_api":"azure-active-directory-v1.0","app_id":"api://0f0c1b6e-9a6f-4c55-9bbc-1a2b3c4d5e6f","waad_protocol":"ws-federation"`),
		base(`,"tenantId":"72F988BF-86F1-41AF-91AB-2D7CD011DB47","domain_aliases":["xn--bcher-kva.example"]`),
	} {
		o, err := azuread.ParseOptions(json.RawMessage(ok))
		if err == nil {
			o.Defaults()
			err = o.Validate()
		}
		if err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}
