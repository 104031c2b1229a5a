package entra_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/emulator/entra"
)

func checkGraphError(t *testing.T, r response, status int, code, message string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d: %s", r.status, status, r.raw)
	}
	errObj, _ := r.body["error"].(map[string]any)
	if errObj["code"] != code || (message != "" && errObj["message"] != message) {
		t.Errorf("error = %v, want %s %q", errObj, code, message)
	}
	inner, _ := errObj["innerError"].(map[string]any)
	if inner["date"] == nil || inner["request-id"] == nil || inner["client-request-id"] == nil {
		t.Errorf("innerError = %v", inner)
	}
	// Headers and body agree; a caller that sent no client-request-id
	// gets the request-id in both, as in Graph's captured errors.
	if r.header.Get("request-id") != inner["request-id"] || r.header.Get("client-request-id") != inner["client-request-id"] {
		t.Errorf("headers request-id %q client-request-id %q, body %v", r.header.Get("request-id"), r.header.Get("client-request-id"), inner)
	}
}

func TestGraphErrorRequestIDs(t *testing.T) {
	e := newEnv(t)
	r := e.get("/v1.0/me", "")
	checkGraphError(t, r, 401, "InvalidAuthenticationToken", "Access token is empty.")
	if inner := r.body["error"].(map[string]any)["innerError"].(map[string]any); inner["client-request-id"] != inner["request-id"] {
		t.Errorf("without client-request-id: %v", inner)
	}
	req, _ := http.NewRequest(http.MethodGet, e.base+"/v1.0/me", nil)
	req.Header.Set("client-request-id", "0b1c2d3e-4f50-4617-8283-94a5b6c7d8e9")
	r = e.do(req)
	checkGraphError(t, r, 401, "InvalidAuthenticationToken", "")
	if r.header.Get("client-request-id") != "0b1c2d3e-4f50-4617-8283-94a5b6c7d8e9" {
		t.Errorf("client-request-id not echoed: %v", r.header)
	}
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestGraphMe(t *testing.T) {
	e := newEnv(t)
	tok := e.graphToken()
	r := e.get("/v1.0/me", tok)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	want := []string{"@odata.context", "businessPhones", "displayName", "givenName", "id", "jobTitle", "mail", "mobilePhone",
		"officeLocation", "preferredLanguage", "surname", "userPrincipalName"}
	if got := keysOf(r.body); !slices.Equal(got, want) {
		t.Errorf("default properties = %v", got)
	}
	if r.body["id"] != aliceID || r.body["jobTitle"] != "Identity Engineer" {
		t.Errorf("me = %s", r.raw)
	}
	if r.body["@odata.context"] != e.base+"/v1.0/$metadata#users/$entity" {
		t.Errorf("context = %v", r.body["@odata.context"])
	}

	r = e.get("/v1.0/me?$select=displayName,department,mail", tok)
	if got := keysOf(r.body); !slices.Equal(got, []string{"@odata.context", "department", "displayName", "mail"}) || r.body["department"] != "Platform" {
		t.Errorf("$select = %s", r.raw)
	}
	if !strings.Contains(r.body["@odata.context"].(string), "users(displayName,department,mail)") {
		t.Errorf("$select context = %v", r.body["@odata.context"])
	}
	checkGraphError(t, e.get("/v1.0/me?$select=shoeSize", tok), 400, "BadRequest", "Could not find a property named 'shoeSize' on type 'microsoft.graph.user'.")

	// Unset properties are null, not absent.
	judy := e.token(v2Token, with(passwordV2("https://graph.microsoft.com/.default"), "username", "judy@contoso.onmicrosoft.com", "password", "Judy-Passw0rd!"), "access_token")
	if r := e.get("/v1.0/me", judy); r.body["jobTitle"] != nil || !strings.Contains(r.raw, `"jobTitle":null`) {
		t.Errorf("unset jobTitle = %s", r.raw)
	}
}

func TestGraphTokenChecks(t *testing.T) {
	e := newEnv(t)
	apiToken := e.token(v2Token, passwordV2(apiURI+"/API.Access"), "access_token")
	graph := e.graphToken()
	tampered := graph[:len(graph)-4] + "AAAA"
	// The confidential app was only consented User.Read on Graph.
	userRead := e.token(v2Token, url.Values{"grant_type": {"password"}, "client_id": {confID}, "client_secret": {confSecret},
		"username": {alice}, "password": {alicePassword}, "scope": {"https://graph.microsoft.com/.default"}}, "access_token")

	cases := []struct {
		name, method, path, token, body string
		status                          int
		code, message                   string
	}{
		{"no token", "GET", "/v1.0/me", "", "", 401, "InvalidAuthenticationToken", "Access token is empty."},
		{"not a JWT", "GET", "/v1.0/me", "abc", "", 401, "InvalidAuthenticationToken", ""},
		{"bad signature", "GET", "/v1.0/me", tampered, "", 401, "InvalidAuthenticationToken", "Access token validation failure."},
		{"API audience", "GET", "/v1.0/me", apiToken, "", 401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience."},
		{"getMemberGroups needs more than User.Read", "POST", "/v1.0/me/getMemberGroups", userRead, `{"securityEnabledOnly":true}`, 403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."},
		{"getByIds needs Directory.Read.All", "POST", "/v1.0/directoryObjects/getByIds", userRead, `{"ids":["` + aliceID + `"]}`, 403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."},
		{"getMemberGroups without body", "POST", "/v1.0/me/getMemberGroups", graph, `{}`, 400, "Request_BadRequest", ""},
		{"$top out of range", "GET", "/v1.0/me/memberOf?$top=1000", graph, "", 400, "Request_BadRequest", "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive."},
		{"bad skiptoken", "GET", "/v1.0/me/memberOf?$skiptoken=zz", graph, "", 400, "Request_BadRequest", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r response
			if tc.method == "GET" {
				r = e.get(tc.path, tc.token)
			} else {
				r = e.postJSON(tc.path, tc.token, tc.body)
			}
			checkGraphError(t, r, tc.status, tc.code, tc.message)
		})
	}
	// User.Read may list memberOf but not read groups: limited information.
	if r := e.get("/v1.0/me/memberOf", userRead); r.status != 200 {
		t.Errorf("memberOf with User.Read: %d", r.status)
	} else {
		for _, v := range r.body["value"].([]any) {
			o := v.(map[string]any)
			name, named := o["displayName"]
			if o["@odata.type"] != "#microsoft.graph.group" || o["id"] == nil || !named || name != nil || o["securityEnabled"] != nil {
				t.Errorf("memberOf with User.Read: %v, want only @odata.type and id set", o)
			}
		}
	}

	e.clock.Advance(time.Hour)
	checkGraphError(t, e.get("/v1.0/me", graph), 401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
}

// collect follows @odata.nextLink to the end and returns ids and pages.
func (e *env) collect(path, token string) ([]string, int) {
	e.t.Helper()
	var ids []string
	pages := 0
	for path != "" {
		r := e.get(path, token)
		if r.status != 200 {
			e.t.Fatalf("%s: %d %s", path, r.status, r.raw)
		}
		pages++
		for _, v := range r.body["value"].([]any) {
			ids = append(ids, v.(map[string]any)["id"].(string))
		}
		next, _ := r.body["@odata.nextLink"].(string)
		if next != "" && !strings.HasPrefix(next, e.base+"/v1.0/") {
			e.t.Fatalf("nextLink %q is not absolute on the emulator", next)
		}
		path = strings.TrimPrefix(next, e.base)
	}
	return ids, pages
}

func TestGraphMemberOfPaging(t *testing.T) {
	e := newEnv(t, func(o *entra.Options) { o.GraphPageSize = 3 })
	tok := e.graphToken()

	direct, pages := e.collect("/v1.0/me/memberOf", tok)
	if len(direct) != 6 || pages != 2 {
		t.Errorf("memberOf: %d groups in %d pages", len(direct), pages)
	}
	all, pages := e.collect("/v1.0/me/transitiveMemberOf", tok)
	if len(all) != 10 || pages != 4 {
		t.Errorf("transitiveMemberOf: %d groups in %d pages", len(all), pages)
	}
	for _, id := range direct {
		if !slices.Contains(all, id) {
			t.Errorf("direct group %s missing from transitive", id)
		}
	}
	if !slices.Contains(all, "b0000000-0000-4000-8000-000000000001") { // All Staff, three levels up
		t.Error("nested group missing")
	}
	if _, pages := e.collect("/v1.0/me/transitiveMemberOf?$top=4", tok); pages != 3 {
		t.Errorf("$top=4: %d pages", pages)
	}
	// $select survives paging.
	r := e.get("/v1.0/me/memberOf?$select=displayName&$top=2", tok)
	next := r.body["@odata.nextLink"].(string)
	if u, _ := url.Parse(next); u.Query().Get("$select") != "displayName" || u.Query().Get("$top") != "2" {
		t.Errorf("nextLink = %s", next)
	}
	first := r.body["value"].([]any)[0].(map[string]any)
	if got := keysOf(first); !slices.Equal(got, []string{"@odata.type", "displayName"}) || first["@odata.type"] != "#microsoft.graph.group" {
		t.Errorf("selected group = %v", first)
	}
}

// A server-side cap wins over $top, as Graph may return fewer objects than
// asked for; the client still gets everything by following nextLink.
func TestGraphMaxPageSize(t *testing.T) {
	e := newEnv(t, func(o *entra.Options) { o.GraphMaxPageSize = 3 })
	all, pages := e.collect("/v1.0/me/transitiveMemberOf?$top=999", e.graphToken())
	if len(all) != 10 || pages != 4 {
		t.Errorf("transitiveMemberOf with $top=999 and a cap of 3: %d groups in %d pages", len(all), pages)
	}
}

func TestGraphFunctions(t *testing.T) {
	e := newEnv(t)
	tok := e.graphToken()
	var ids []string
	r := e.postJSON("/v1.0/me/getMemberGroups", tok, `{"securityEnabledOnly":true}`)
	for _, v := range r.body["value"].([]any) {
		ids = append(ids, v.(string))
	}
	if len(ids) != 8 || !strings.HasSuffix(r.body["@odata.context"].(string), "$metadata#Collection(Edm.String)") {
		t.Errorf("security groups = %v", r.raw)
	}
	r = e.postJSON("/v1.0/me/getMemberGroups", tok, `{"securityEnabledOnly":false}`)
	if n := len(r.body["value"].([]any)); n != 10 {
		t.Errorf("all groups = %d", n)
	}

	body, _ := json.Marshal(map[string]any{"ids": []string{aliceID, "b0000000-0000-4000-8000-000000000009", "ffffffff-0000-4000-8000-000000000000"}})
	r = e.postJSON("/v1.0/directoryObjects/getByIds", tok, string(body))
	vals := r.body["value"].([]any)
	if len(vals) != 2 || vals[0].(map[string]any)["@odata.type"] != "#microsoft.graph.user" || vals[1].(map[string]any)["mail"] != "seattle@contoso.com" {
		t.Errorf("getByIds = %s", r.raw)
	}
	body, _ = json.Marshal(map[string]any{"ids": []string{aliceID, "b0000000-0000-4000-8000-000000000009"}, "types": []string{"group"}})
	if r = e.postJSON("/v1.0/directoryObjects/getByIds", tok, string(body)); len(r.body["value"].([]any)) != 1 {
		t.Errorf("getByIds types=group: %s", r.raw)
	}
}

func TestLegacyGraph(t *testing.T) {
	e := newEnv(t, func(o *entra.Options) { o.GraphPageSize = 4 })
	legacy := e.token(v1Token, passwordV1("https://graph.windows.net"), "access_token")

	// Retired, as the example directory says and Entra does since 2025.
	r := e.get("/me?api-version=1.6", legacy)
	odata, _ := r.body["odata.error"].(map[string]any)
	if r.status != 403 || odata["code"] != "Authentication_Unauthorized" {
		t.Fatalf("retired: %d %s", r.status, r.raw)
	}
	if msg, _ := odata["message"].(map[string]any); msg["lang"] != "en" || !strings.Contains(msg["value"].(string), "https://aka.ms/AzureADGraphMigration") {
		t.Errorf("retired message = %v", odata["message"])
	}

	e.srv.SetLegacyGraph(entra.LegacyGraphServed)
	r = e.get("/me?api-version=1.6", legacy)
	if r.status != 200 || r.body["objectId"] != aliceID || r.body["objectType"] != "User" || r.body["odata.type"] != "Microsoft.DirectoryServices.User" {
		t.Fatalf("served /me: %d %s", r.status, r.raw)
	}
	r = e.get("/"+tenantID+"/me/memberOf?api-version=1.6", legacy)
	if r.status != 200 || len(r.body["value"].([]any)) != 4 || r.body["odata.nextLink"] == nil {
		t.Fatalf("memberOf: %d %s", r.status, r.raw)
	}
	next := r.body["odata.nextLink"].(string)
	r = e.get("/"+tenantID+"/"+next+"&api-version=1.6", legacy)
	if r.status != 200 || len(r.body["value"].([]any)) != 2 || r.body["odata.nextLink"] != nil {
		t.Errorf("second page: %d %s", r.status, r.raw)
	}
	g := r.body["value"].([]any)[0].(map[string]any)
	if g["objectType"] != "Group" || g["odata.type"] != "Microsoft.DirectoryServices.Group" {
		t.Errorf("group = %v", g)
	}

	for name, tc := range map[string]struct {
		path, token, code string
		status            int
	}{
		"Graph token":      {"/me?api-version=1.6", e.graphToken(), "Authentication_MissingOrMalformed", 401},
		"no api-version":   {"/me", legacy, "Request_BadRequest", 400},
		"no token":         {"/me?api-version=1.6", "", "Authentication_MissingOrMalformed", 401},
		"other tenant URL": {"/" + otherTenantID + "/me?api-version=1.6", legacy, "Authentication_MissingOrMalformed", 401},
	} {
		r := e.get(tc.path, tc.token)
		odata, _ := r.body["odata.error"].(map[string]any)
		if r.status != tc.status || odata["code"] != tc.code {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
	}
	e.clock.Advance(2 * time.Hour)
	r = e.get("/me?api-version=1.6", legacy)
	if odata, _ := r.body["odata.error"].(map[string]any); r.status != 401 || odata["code"] != "Authentication_ExpiredToken" {
		t.Errorf("expired: %d %s", r.status, r.raw)
	}
}

func TestUserInfo(t *testing.T) {
	e := newEnv(t)
	r := e.postForm(v2Token, passwordV2("https://graph.microsoft.com/User.Read openid profile"))
	_, id := e.verify(r.body["id_token"].(string), "/"+tenantID+"/discovery/v2.0/keys")
	meta := e.get("/"+tenantID+"/v2.0/.well-known/openid-configuration", "")
	ui := e.get(strings.TrimPrefix(meta.body["userinfo_endpoint"].(string), e.base), r.body["access_token"].(string))
	if ui.status != 200 || ui.body["sub"] != id["sub"] || ui.body["email"] != alice || ui.body["name"] != "Alice Adams" {
		t.Errorf("userinfo = %d %s", ui.status, ui.raw)
	}
	api := e.token(v2Token, passwordV2(apiURI+"/API.Access"), "access_token")
	checkGraphError(t, e.get("/oidc/userinfo", api), 401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
}

// Graph's memberOf holds directory roles and administrative units next to
// groups, told apart by @odata.type (user-list-memberof.md, reference
// §5.1); a client that assumes only groups must be caught here.
func TestGraphMemberOfRolesAndUnits(t *testing.T) {
	dir, err := entra.LoadDirectory(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	tn := dir.Tenants[0]
	tn.DirectoryRoles = []*entra.DirectoryRole{
		{ID: "c0000000-0000-4000-8000-000000000001", DisplayName: "Global Reader", RoleTemplateID: "f2ef992c-3afb-46b9-b7cf-a126ee74c451", Members: []string{alice}},
		// Held through the role-assignable group Privileged Access, which
		// Alice is in only through Gatehouse Admins.
		{ID: "c0000000-0000-4000-8000-000000000002", DisplayName: "Security Reader", RoleTemplateID: "5d6b6bb7-de71-4623-b4af-96380a352509", Members: []string{"b0000000-0000-4000-8000-00000000000d"}},
	}
	tn.AdministrativeUnits = []*entra.AdminUnit{
		{ID: "d0000000-0000-4000-8000-000000000001", DisplayName: "Seattle", Members: []string{alice}},
	}
	e := newEnvDir(t, dir)
	tok := e.graphToken()

	types := func(path string) map[string]int {
		t.Helper()
		r := e.get(path, tok)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", path, r.status, r.raw)
		}
		n := map[string]int{}
		for _, v := range r.body["value"].([]any) {
			o := v.(map[string]any)
			n[o["@odata.type"].(string)]++
			if o["id"] == "c0000000-0000-4000-8000-000000000001" && o["roleTemplateId"] != "f2ef992c-3afb-46b9-b7cf-a126ee74c451" {
				t.Errorf("role %v", o)
			}
		}
		return n
	}
	direct := types("/v1.0/me/memberOf")
	if direct["#microsoft.graph.group"] != 6 || direct["#microsoft.graph.directoryRole"] != 1 || direct["#microsoft.graph.administrativeUnit"] != 1 {
		t.Errorf("memberOf types %v", direct)
	}
	all := types("/v1.0/me/transitiveMemberOf")
	if all["#microsoft.graph.group"] != 10 || all["#microsoft.graph.directoryRole"] != 2 || all["#microsoft.graph.administrativeUnit"] != 1 {
		t.Errorf("transitiveMemberOf types %v", all)
	}
	// A group property selected on the polymorphic collection is left out
	// of roles and units, not refused; an unknown property is refused.
	r := e.get("/v1.0/me/memberOf?$select=id,securityEnabled", tok)
	if r.status != 200 {
		t.Fatalf("$select=securityEnabled: %d %s", r.status, r.raw)
	}
	for _, v := range r.body["value"].([]any) {
		o := v.(map[string]any)
		_, has := o["securityEnabled"]
		if has != (o["@odata.type"] == "#microsoft.graph.group") {
			t.Errorf("selected %v", o)
		}
	}
	checkGraphError(t, e.get("/v1.0/me/memberOf?$select=bogus", tok), 400, "BadRequest", "Could not find a property named 'bogus' on type 'microsoft.graph.directoryObject'.")
}
