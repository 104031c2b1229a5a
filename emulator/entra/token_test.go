package entra_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/emulator/entra"
)

const (
	v1Token = "/" + tenantID + "/oauth2/token"
	v2Token = "/" + tenantID + "/oauth2/v2.0/token"
)

func with(f url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, v := range f {
		out[k] = slices.Clone(v)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			out.Del(kv[i])
			continue
		}
		out.Set(kv[i], kv[i+1])
	}
	return out
}

var tsRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z$`)

// checkSTSError asserts Entra's error body exactly: the key set, the
// description's AADSTS prefix and trailer lines, and JSON types.
func checkSTSError(t *testing.T, r response, status int, errStr string, code int, suberror string) {
	t.Helper()
	checkSTSErrorCodes(t, r, status, errStr, []int{code}, suberror)
}

// checkSTSErrorCodes is checkSTSError for a body whose error_codes list a
// wrapper code before the specific one: the description names each in
// turn, and error_uri the last.
func checkSTSErrorCodes(t *testing.T, r response, status int, errStr string, wantCodes []int, suberror string) {
	t.Helper()
	code := wantCodes[len(wantCodes)-1]
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.raw)
	}
	want := []string{"error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id", "error_uri"}
	if suberror != "" {
		want = append(want, "suberror")
	}
	if _, ok := r.body["claims"]; ok {
		want = append(want, "claims")
	}
	if _, ok := r.body["password_change_url"]; ok {
		want = append(want, "password_change_url")
	}
	var got []string
	for k := range r.body {
		got = append(got, k)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("keys = %v, want %v", got, want)
	}
	if r.body["error"] != errStr {
		t.Errorf("error = %v, want %s", r.body["error"], errStr)
	}
	codes, _ := r.body["error_codes"].([]any)
	if len(codes) != len(wantCodes) {
		t.Errorf("error_codes = %#v, want %v as numbers", r.body["error_codes"], wantCodes)
	}
	desc, _ := r.body["error_description"].(string)
	rest := desc
	for i, c := range wantCodes {
		if i < len(codes) && codes[i] != json.Number(itoa(c)) {
			t.Errorf("error_codes = %#v, want %v as numbers", r.body["error_codes"], wantCodes)
		}
		sep := " AADSTS" + itoa(c) + ": "
		if i == 0 {
			sep = sep[1:]
		}
		at := strings.Index(rest, sep)
		if at < 0 || i == 0 && at != 0 {
			t.Errorf("error_description = %q, want AADSTS%d in turn", desc, c)
			break
		}
		rest = rest[at+len(sep):]
	}
	ts, _ := r.body["timestamp"].(string)
	trailer := "\r\nTrace ID: " + r.body["trace_id"].(string) + "\r\nCorrelation ID: " + r.body["correlation_id"].(string) + "\r\nTimestamp: " + ts
	if !strings.HasSuffix(desc, trailer) {
		t.Errorf("error_description = %q", desc)
	}
	if !tsRE.MatchString(ts) {
		t.Errorf("timestamp = %q", ts)
	}
	if r.body["error_uri"] != "https://login.microsoftonline.com/error?code="+itoa(code) {
		t.Errorf("error_uri = %v", r.body["error_uri"])
	}
	if suberror != "" && r.body["suberror"] != suberror {
		t.Errorf("suberror = %v, want %s", r.body["suberror"], suberror)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestTokenErrors(t *testing.T) {
	e := newEnv(t)
	api := apiURI + "/API.Access openid"
	pw := passwordV2(api)
	user := func(upn, password string) url.Values { return with(pw, "username", upn, "password", password) }
	cases := []struct {
		name     string
		method   string
		path     string
		form     url.Values
		status   int
		err      string
		code     int
		suberror string
	}{
		{"bad password", "", v2Token, user(alice, "nope"), 400, "invalid_grant", 50126, ""},
		{"unknown user", "", v2Token, user("nobody@contoso.com", "x"), 400, "invalid_grant", 50034, ""},
		{"user of another tenant", "", v2Token, user("mallory@fabrikam.onmicrosoft.com", "Mallory-Passw0rd!"), 400, "invalid_grant", 50034, ""},
		{"locked, right password", "", v2Token, user("bob@contoso.com", "Bob-Passw0rd!"), 400, "unauthorized_client", 50053, ""},
		{"password expired", "", v2Token, user("carol@contoso.com", "Carol-Passw0rd!"), 400, "user_password_expired", 50055, "user_password_expired"},
		{"disabled", "", v2Token, user("ivan@contoso.com", "Ivan-Passw0rd!"), 400, "invalid_grant", 50057, ""},
		{"disabled, wrong password", "", v2Token, user("ivan@contoso.com", "x"), 400, "invalid_grant", 50126, ""},
		{"mfa required", "", v2Token, user("dave@contoso.com", "Dave-Passw0rd!"), 400, "invalid_grant", 50076, "basic_action"},
		{"mfa registration", "", v2Token, user("erin@contoso.com", "Erin-Passw0rd!"), 400, "invalid_grant", 50079, "basic_action"},
		{"conditional access", "", v2Token, user("frank@contoso.com", "Frank-Passw0rd!"), 400, "invalid_grant", 53003, "message_only"},
		{"password with trailing space", "", v2Token, user(alice, alicePassword+" "), 400, "invalid_grant", 50126, ""},
		{"passwordless", "", v2Token, user("heidi@contoso.com", "anything"), 400, "invalid_grant", 50056, ""},
		{"no consent", "", v2Token, with(pw, "client_id", unconsentedID, "client_secret", ""), 400, "invalid_grant", 65001, "consent_required"},
		{"scope not consented", "", v2Token, with(pw, "scope", "User.Read.All"), 400, "invalid_grant", 65001, "consent_required"},
		{"unknown client", "", v2Token, with(pw, "client_id", "00000000-1111-4222-8333-444444444444"), 400, "unauthorized_client", 700016, ""},
		{"client of another tenant", "", "/" + otherTenantID + "/oauth2/v2.0/token", pw, 400, "unauthorized_client", 700016, ""},
		{"confidential without secret", "", v2Token, with(pw, "client_id", confID, "client_secret", ""), 401, "invalid_client", 7000218, ""},
		{"wrong secret", "", v2Token, with(pw, "client_secret", "wrong"), 401, "invalid_client", 7000215, ""},
		{"expired secret", "", v2Token, with(pw, "client_id", confID, "client_secret", expiredSecret), 401, "invalid_client", 7000222, ""},
		{"public client with secret", "", v2Token, with(pw, "client_id", unconsentedID, "client_secret", "x"), 401, "invalid_client", 700025, ""},
		{"unknown tenant", "", "/nowhere.example/oauth2/v2.0/token", pw, 400, "invalid_request", 90002, ""},
		{"unverified domain", "", "/fabrikam.example/oauth2/v2.0/token", pw, 400, "invalid_request", 90002, ""},
		{"missing username", "", v2Token, with(pw, "username", ""), 400, "invalid_request", 90014, ""},
		{"missing password", "", v2Token, with(pw, "password", ""), 400, "invalid_request", 90014, ""},
		{"missing client_id", "", v2Token, with(pw, "client_id", ""), 400, "invalid_request", 900144, ""},
		{"v2 password grant without scope", "", v2Token, with(pw, "scope", ""), 400, "invalid_request", 900144, ""},
		{"missing grant_type", "", v2Token, with(pw, "grant_type", ""), 400, "invalid_request", 900144, ""},
		{"v1 unknown resource", "", v1Token, with(passwordV1("api://nothing-here"), ""), 400, "invalid_resource", 500011, ""},
		{"v2 unknown resource", "", v2Token, with(pw, "scope", "api://nothing-here/x"), 400, "invalid_resource", 500011, ""},
		{"v1 missing resource", "", v1Token, with(passwordV1(apiURI), "resource", ""), 400, "invalid_request", 900144, ""},
		{"two resources", "", v2Token, with(pw, "scope", apiURI+"/API.Access User.Read"), 400, "invalid_scope", 28000, ""},
		{"two resources' .default", "", v2Token, with(pw, "scope", apiURI+"/.default https://graph.microsoft.com/.default openid"), 400, "invalid_scope", 70011, ""},
		{".default with a named scope", "", v2Token, with(pw, "scope", "https://graph.microsoft.com/.default User.Read openid"), 400, "invalid_scope", 70011, ""},
		{".default with another resource's scope", "", v2Token, with(pw, "scope", apiURI+"/API.Access https://graph.microsoft.com/.default"), 400, "invalid_scope", 70011, ""},
		{"password on /common v2", "", "/common/oauth2/v2.0/token", pw, 400, "invalid_request", 9001023, ""},
		{"password on /consumers v2", "", "/consumers/oauth2/v2.0/token", pw, 400, "invalid_request", 9001023, ""},
		{"password on /organizations v1", "", "/organizations/oauth2/token", passwordV1(apiURI), 400, "invalid_request", 90002, ""},
		{"client credentials on /common", "", "/common/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {confID}, "client_secret": {confSecret}, "scope": {"https://graph.microsoft.com/.default"}}, 400, "invalid_request", 50059, ""},
		{"client credentials without scope", "", v2Token, url.Values{"grant_type": {"client_credentials"}, "client_id": {confID}, "client_secret": {confSecret}}, 400, "invalid_request", 90014, ""},
		{"client credentials without secret", "", v2Token, url.Values{"grant_type": {"client_credentials"}, "client_id": {nativeID}, "scope": {"https://graph.microsoft.com/.default"}}, 401, "invalid_client", 7000218, ""},
		{"malformed refresh token", "", v2Token, url.Values{"grant_type": {"refresh_token"}, "client_id": {nativeID}, "refresh_token": {"garbage"}}, 400, "invalid_request", 9002313, ""},
		{"unknown code", "", v2Token, url.Values{"grant_type": {"authorization_code"}, "client_id": {nativeID}, "code": {"garbage"}, "redirect_uri": {nativeRedirect}}, 400, "invalid_request", 9002313, ""},
		{"unsupported grant", "", v2Token, with(pw, "grant_type", "urn:nope"), 400, "unsupported_grant_type", 70003, ""},
		{"GET on token endpoint", http.MethodGet, v2Token, nil, 400, "invalid_request", 900561, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r response
			if tc.method == http.MethodGet {
				r = e.get(tc.path, "")
			} else {
				r = e.postForm(tc.path, tc.form)
			}
			checkSTSError(t, r, tc.status, tc.err, tc.code, tc.suberror)
		})
	}
}

// TestNoCloudPassword: Entra's answers for users whose password it cannot
// check, word for word. A passwordless user gets 50056 whatever the
// password (MicrosoftDocs/azure-docs#49763); a federated one, without cloud
// password validation, the wrapped 50126 of the HDInsight ESP
// troubleshooting doc (reference §1.4), right password or not. A locked
// account is locked first.
func TestNoCloudPassword(t *testing.T) {
	e := newEnv(t)
	pw := passwordV2(apiURI + "/API.Access")
	const noPassword = "AADSTS50056: Invalid or missing password: password does not exist in the directory for this user.\r\n"
	const federated = "AADSTS70002: Error validating credentials. AADSTS50126: Invalid username or password\r\n"
	for _, tc := range []struct {
		user, password string
		codes          []int
		desc           string
	}{
		{"heidi@contoso.com", "anything", []int{50056}, noPassword},
		{"grace@corp.contoso.com", "Grace-Passw0rd!", []int{70002, 50126}, federated},
		{"grace@corp.contoso.com", "wrong", []int{70002, 50126}, federated},
	} {
		r := e.postForm(v2Token, with(pw, "username", tc.user, "password", tc.password))
		checkSTSErrorCodes(t, r, 400, "invalid_grant", tc.codes, "")
		if desc, _ := r.body["error_description"].(string); !strings.HasPrefix(desc, tc.desc) {
			t.Errorf("%s: error_description = %q, want %q…", tc.user, desc, tc.desc)
		}
	}

	dir, err := entra.LoadDirectory(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range dir.Tenants[0].Users {
		if u.UserPrincipalName == "heidi@contoso.com" {
			u.State = entra.StateLocked
		}
	}
	e = newEnvDir(t, dir)
	r := e.postForm(v2Token, with(pw, "username", "heidi@contoso.com", "password", "anything"))
	checkSTSError(t, r, 400, "unauthorized_client", 50053, "")
}

func TestErrorDetails(t *testing.T) {
	e := newEnv(t)
	pw := passwordV2(apiURI + "/API.Access")

	r := e.postForm(v2Token, with(pw, "username", "carol@contoso.com", "password", "Carol-Passw0rd!"), "client-request-id", "11111111-2222-4333-8444-555555555555")
	if r.body["password_change_url"] != "https://portal.microsoftonline.com/ChangePassword.aspx" {
		t.Errorf("password_change_url = %v", r.body["password_change_url"])
	}
	if r.body["correlation_id"] != "11111111-2222-4333-8444-555555555555" {
		t.Errorf("correlation_id does not echo client-request-id: %v", r.body["correlation_id"])
	}

	r = e.postForm(v2Token, with(pw, "username", "frank@contoso.com", "password", "Frank-Passw0rd!"))
	var claims map[string]any
	if err := json.Unmarshal([]byte(r.body["claims"].(string)), &claims); err != nil || claims["access_token"] == nil {
		t.Errorf("claims = %v (%v)", r.body["claims"], err)
	}

	r = e.postForm(v2Token, with(pw, "username", "dave@contoso.com", "password", "Dave-Passw0rd!"))
	if !strings.Contains(r.body["error_description"].(string), "'"+apiAppID+"'") {
		t.Errorf("50076 does not name the resource: %v", r.body["error_description"])
	}
	if e.srv.Count("error:AADSTS50076") != 1 {
		t.Errorf("error counter = %d", e.srv.Count("error:AADSTS50076"))
	}
}

func TestPasswordV2(t *testing.T) {
	e := newEnv(t)
	r := e.postForm(v2Token, passwordV2(apiURI+"/API.Access openid profile email offline_access"))
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	for _, k := range []string{"expires_in", "ext_expires_in"} {
		if _, ok := r.body[k].(json.Number); !ok {
			t.Errorf("%s = %#v, want a JSON number", k, r.body[k])
		}
	}
	for _, k := range []string{"expires_on", "not_before", "resource"} {
		if _, ok := r.body[k]; ok {
			t.Errorf("v2 response has v1 field %s", k)
		}
	}
	if r.body["token_type"] != "Bearer" || r.body["refresh_token"] == nil || r.body["id_token"] == nil {
		t.Errorf("response = %s", r.raw)
	}
	// Only Graph tokens list the OpenID scopes, which are Graph's.
	if r.body["scope"] != apiURI+"/API.Access" {
		t.Errorf("scope = %v", r.body["scope"])
	}
	if r.header.Get("Cache-Control") != "no-store, no-cache" {
		t.Errorf("Cache-Control = %q", r.header.Get("Cache-Control"))
	}

	// The API asks for v1 access tokens, so the v2 endpoint still issues one.
	h, at := e.verify(r.body["access_token"].(string), "/"+tenantID+"/discovery/keys")
	want := map[string]any{
		"aud": apiURI, "iss": "http://" + e.hs.Listener.Addr().String() + "/" + tenantID + "/", "ver": "1.0", "tid": tenantID,
		"oid": aliceID, "upn": alice, "unique_name": alice, "appid": nativeID, "appidacr": "1", "scp": "API.Access",
		"name": "Alice Adams", "given_name": "Alice", "family_name": "Adams", "ipaddr": "127.0.0.1", "acr": "1",
	}
	for k, v := range want {
		if at[k] != v {
			t.Errorf("access token %s = %v, want %v", k, at[k], v)
		}
	}
	if h.ExtraHeaders["x5t"] != h.KeyID {
		t.Errorf("v1 token header x5t = %v, kid %v", h.ExtraHeaders["x5t"], h.KeyID)
	}
	groups, _ := at["groups"].([]any)
	if len(groups) != 8 { // alice's transitive security groups
		t.Errorf("groups = %v", at["groups"])
	}
	if amr, _ := at["amr"].([]any); len(amr) != 1 || amr[0] != "pwd" {
		t.Errorf("amr = %v", at["amr"])
	}

	h, id := e.verify(r.body["id_token"].(string), "/"+tenantID+"/discovery/v2.0/keys")
	want = map[string]any{
		"aud": nativeID, "iss": e.base + "/" + tenantID + "/v2.0", "ver": "2.0", "tid": tenantID, "oid": aliceID,
		"preferred_username": alice, "name": "Alice Adams", "email": alice,
	}
	for k, v := range want {
		if id[k] != v {
			t.Errorf("id token %s = %v, want %v", k, id[k], v)
		}
	}
	for _, k := range []string{"upn", "unique_name", "amr"} {
		if _, ok := id[k]; ok {
			t.Errorf("v2 id token has v1 claim %s", k)
		}
	}
	if _, ok := h.ExtraHeaders["x5t"]; ok {
		t.Error("v2 token header carries x5t")
	}
	if id["sub"] == at["sub"] && id["sub"] == "" {
		t.Error("empty sub")
	}
	if exp, _ := id["exp"].(json.Number).Int64(); exp != e.clock.Now().Add(3599*time.Second).Unix() {
		t.Errorf("exp = %v", id["exp"])
	}
}

func TestPasswordV1(t *testing.T) {
	e := newEnv(t)
	r := e.postForm(v1Token, passwordV1(apiURI))
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	for _, k := range []string{"expires_in", "ext_expires_in", "expires_on", "not_before"} {
		if _, ok := r.body[k].(string); !ok {
			t.Errorf("%s = %#v, want a JSON string", k, r.body[k])
		}
	}
	if r.body["resource"] != apiURI || r.body["scope"] != "API.Access" || r.body["refresh_token"] == nil {
		t.Errorf("response = %s", r.raw)
	}
	id := e.unsigned(r.body["id_token"].(string))
	if id["ver"] != "1.0" || id["upn"] != alice || id["unique_name"] != alice || id["aud"] != nativeID || id["iss"] != e.base+"/"+tenantID+"/" {
		t.Errorf("v1 id token = %v", id)
	}
	if _, ok := id["preferred_username"]; ok {
		t.Error("v1 id token has preferred_username")
	}

	// Graph through v1 keeps the resource URI as audience; through v2 it
	// is Graph's appId.
	at := e.token(v1Token, passwordV1("https://graph.microsoft.com"), "access_token")
	if _, c := e.verify(at, "/"+tenantID+"/discovery/keys"); c["aud"] != "https://graph.microsoft.com" || c["scp"] != "Directory.Read.All User.Read email openid profile" {
		t.Errorf("v1 graph token aud=%v scp=%v", c["aud"], c["scp"])
	}
	// Scope names match case-insensitively, as in Microsoft's sample
	// request, and the answer lists every scope granted on Graph, email
	// included, as Microsoft's sample response does.
	r = e.postForm(v2Token, passwordV2("user.read openid profile offline_access"))
	if r.body["scope"] != "Directory.Read.All User.Read profile openid email" {
		t.Errorf("scope = %v", r.body["scope"])
	}
	at = e.graphToken()
	if _, c := e.verify(at, "/"+tenantID+"/discovery/keys"); c["aud"] != graphAppID || c["ver"] != "1.0" {
		t.Errorf("v2 graph token aud=%v ver=%v", c["aud"], c["ver"])
	}
}

func TestTenantForms(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{
		"/contoso.com/oauth2/v2.0/token", "/CONTOSO.onmicrosoft.com/oauth2/v2.0/token", "/organizations/oauth2/v2.0/token",
	} {
		if r := e.postForm(p, passwordV2(apiURI+"/API.Access")); r.status != 200 {
			t.Errorf("%s: %d %s", p, r.status, r.raw)
		}
	}
	// v1 finds the tenant from the user name on /common, its multi-tenant
	// endpoint; "organizations" is an alias of v2 only, which v1 answers as
	// an unknown tenant (panva/openid-client#175).
	if r := e.postForm("/common/oauth2/token", passwordV1(apiURI)); r.status != 200 {
		t.Errorf("v1 common: %d %s", r.status, r.raw)
	} else if c := e.unsigned(r.body["id_token"].(string)); c["tid"] != tenantID {
		t.Errorf("v1 common: tid %v", c["tid"])
	}
	r := e.postForm("/organizations/oauth2/token", passwordV1(apiURI))
	if d, _ := r.body["error_description"].(string); !strings.HasPrefix(d, "AADSTS90002: Tenant 'organizations' not found.") {
		t.Errorf("v1 organizations: %d %s", r.status, r.raw)
	}
	// HTTP Basic client authentication.
	req, _ := http.NewRequest(http.MethodPost, e.base+v2Token, strings.NewReader(with(passwordV2(apiURI+"/API.Access"), "client_id", "", "client_secret", "").Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(nativeID, nativeSecret)
	if r := e.do(req); r.status != 200 {
		t.Errorf("basic auth: %d %s", r.status, r.raw)
	}
}

func TestPublicClientWithoutSecret(t *testing.T) {
	e := newEnv(t)
	r := e.postForm(v2Token, with(passwordV2(apiURI+"/API.Access"), "client_secret", ""))
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if _, c := e.verify(r.body["access_token"].(string), "/"+tenantID+"/discovery/keys"); c["appidacr"] != "0" {
		t.Errorf("appidacr = %v, want 0 for a public client", c["appidacr"])
	}
}

func TestRefreshToken(t *testing.T) {
	e := newEnv(t)
	rt := e.token(v2Token, passwordV2(apiURI+"/API.Access offline_access"), "refresh_token")
	refresh := url.Values{"grant_type": {"refresh_token"}, "client_id": {nativeID}, "client_secret": {nativeSecret}, "refresh_token": {rt}}

	r := e.postForm(v2Token, refresh)
	if r.status != 200 || r.body["refresh_token"] == nil {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	// Same refresh token, another resource.
	at := e.token(v2Token, with(refresh, "scope", "https://graph.microsoft.com/User.Read"), "access_token")
	if _, c := e.verify(at, "/"+tenantID+"/discovery/keys"); c["aud"] != graphAppID || c["scp"] != "Directory.Read.All User.Read email openid profile" {
		t.Errorf("graph via refresh: aud=%v scp=%v", c["aud"], c["scp"])
	}
	checkSTSError(t, e.postForm(v2Token, with(refresh, "client_id", confID, "client_secret", confSecret)), 400, "invalid_grant", 70000, "")

	if err := e.srv.SetAccountEnabled(alice, false); err != nil {
		t.Fatal(err)
	}
	checkSTSError(t, e.postForm(v2Token, refresh), 400, "invalid_grant", 50057, "")
	_ = e.srv.SetAccountEnabled(alice, true)

	e.clock.Advance(91 * 24 * time.Hour)
	checkSTSError(t, e.postForm(v2Token, refresh), 400, "invalid_grant", 70008, "")

	// v2 without offline_access gets no refresh token; v1 always does.
	if r := e.postForm(v2Token, passwordV2(apiURI+"/API.Access")); r.body["refresh_token"] != nil {
		t.Error("refresh token without offline_access")
	}
}

func TestClientCredentials(t *testing.T) {
	e := newEnv(t)
	cc := url.Values{"grant_type": {"client_credentials"}, "client_id": {confID}, "client_secret": {confSecret}, "scope": {"https://graph.microsoft.com/.default"}}
	r := e.postForm(v2Token, cc)
	if r.status != 200 || r.body["refresh_token"] != nil || r.body["id_token"] != nil {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	_, c := e.verify(r.body["access_token"].(string), "/"+tenantID+"/discovery/keys")
	if c["idtyp"] != "app" || c["appid"] != confID || c["scp"] != nil || c["oid"] != c["sub"] {
		t.Errorf("app token claims = %v", c)
	}
	checkSTSError(t, e.postForm(v2Token, with(cc, "scope", "https://graph.microsoft.com/User.Read")), 400, "invalid_scope", 70011, "")
	r = e.postForm(v1Token, url.Values{"grant_type": {"client_credentials"}, "client_id": {confID}, "client_secret": {confSecret}, "resource": {apiURI}})
	if r.status != 200 || r.body["resource"] != apiURI {
		t.Fatalf("v1: %d %s", r.status, r.raw)
	}
	// /me needs a delegated token.
	g := e.get("/v1.0/me", e.token(v2Token, cc, "access_token"))
	if g.status != 400 {
		t.Errorf("app token on /me: %d %s", g.status, g.raw)
	}
}

func TestRuntimeUserState(t *testing.T) {
	e := newEnv(t)
	if err := e.srv.SetUserState(alice, entra.StateLocked); err != nil {
		t.Fatal(err)
	}
	checkSTSError(t, e.postForm(v2Token, passwordV2(apiURI+"/API.Access")), 400, "unauthorized_client", 50053, "")
	_ = e.srv.SetUserState(alice, entra.StateActive)
	if r := e.postForm(v2Token, passwordV2(apiURI+"/API.Access")); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if err := e.srv.SetUserState("nobody@contoso.com", entra.StateLocked); err == nil {
		t.Error("SetUserState accepted an unknown user")
	}
}

func TestReuseTokens(t *testing.T) {
	e := newEnv(t, func(o *entra.Options) { o.ReuseTokens = time.Minute })
	form := passwordV2(apiURI + "/API.Access openid")
	a := e.postForm(v2Token, form)
	e.clock.Advance(10 * time.Second)
	b := e.postForm(v2Token, form)
	if a.body["access_token"] != b.body["access_token"] {
		t.Error("identical grants within the window were signed twice")
	}
	if a.body["expires_in"] == b.body["expires_in"] {
		t.Error("reused token reports its full lifetime")
	}
	// A wrong password is still rejected: reuse happens after the checks.
	checkSTSError(t, e.postForm(v2Token, with(form, "password", "x")), 400, "invalid_grant", 50126, "")
	e.clock.Advance(time.Minute)
	if c := e.postForm(v2Token, form); c.body["access_token"] == a.body["access_token"] {
		t.Error("token reused after the window")
	}
}

func TestGroupsOverage(t *testing.T) {
	var b strings.Builder
	b.WriteString(`tenants:
- id: 11111111-2222-4333-8444-555555555555
  domains: [{id: big.example, isVerified: true}]
  users: [{id: 21111111-2222-4333-8444-555555555555, userPrincipalName: u@big.example, password: p}]
  applications:
  - {appId: 31111111-2222-4333-8444-555555555555, isFallbackPublicClient: true, groupMembershipClaims: All}
  oauth2PermissionGrants:
  - {clientId: 31111111-2222-4333-8444-555555555555, consentType: AllPrincipals, resourceId: https://graph.microsoft.com, scope: User.Read openid profile}
  groups:
`)
	for i := range 201 {
		b.WriteString("  - {id: 4111111" + string(rune('0'+i/100)) + "-2222-4333-8444-5555555555" + pad2(i%100) + ", members: [u@big.example]}\n")
	}
	dir, err := entra.ParseDirectory([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvDir(t, dir)
	id := e.token("/11111111-2222-4333-8444-555555555555/oauth2/v2.0/token", url.Values{"grant_type": {"password"},
		"client_id": {"31111111-2222-4333-8444-555555555555"}, "username": {"u@big.example"}, "password": {"p"}, "scope": {"openid profile"}}, "id_token")
	_, c := e.verify(id, "/11111111-2222-4333-8444-555555555555/discovery/v2.0/keys")
	if _, ok := c["groups"]; ok {
		t.Error("groups claim present past the overage limit")
	}
	names, _ := c["_claim_names"].(map[string]any)
	sources, _ := c["_claim_sources"].(map[string]any)
	if names["groups"] != "src1" || sources["src1"] == nil {
		t.Errorf("overage claims = %v %v", c["_claim_names"], c["_claim_sources"])
	}
}

func pad2(i int) string {
	if i < 10 {
		return "0" + itoa(i)
	}
	return itoa(i)
}

func TestDirectoryValidation(t *testing.T) {
	bad := map[string]string{
		"no tenants":     `tenants: []`,
		"bad tenant id":  `tenants: [{id: x}]`,
		"unknown state":  `tenants: [{id: 11111111-2222-4333-8444-555555555555, domains: [{id: a.example}], users: [{id: 21111111-2222-4333-8444-555555555555, userPrincipalName: u@a.example, state: sleepy}]}]`,
		"foreign domain": `tenants: [{id: 11111111-2222-4333-8444-555555555555, domains: [{id: a.example}], users: [{id: 21111111-2222-4333-8444-555555555555, userPrincipalName: u@b.example}]}]`,
		"unknown member": `tenants: [{id: 11111111-2222-4333-8444-555555555555, groups: [{id: 21111111-2222-4333-8444-555555555555, members: [ghost]}]}]`,
		"unknown field":  `tenants: [{id: 11111111-2222-4333-8444-555555555555, colour: red}]`,
		"legacy mode":    `{legacyGraph: maybe, tenants: [{id: 11111111-2222-4333-8444-555555555555}]}`,
		"fault endpoint": `{faults: {nowhere: {status: 500}}, tenants: [{id: 11111111-2222-4333-8444-555555555555}]}`,
	}
	for name, doc := range bad {
		if _, err := entra.ParseDirectory([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// An API that asks for v2.0 access tokens gets them from both endpoints
// (reference §2.2): aud is its appId and the issuer the v2.0 one.
func TestAccessTokenVersion2(t *testing.T) {
	b, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := entra.ParseDirectory([]byte(strings.Replace(string(b), "requestedAccessTokenVersion: 1", "requestedAccessTokenVersion: 2", 1)))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvDir(t, dir)
	for _, path := range []string{v1Token, v2Token} {
		form := passwordV2(apiURI + "/API.Access")
		if path == v1Token {
			form = passwordV1(apiURI)
		}
		h, c := e.verify(e.token(path, form, "access_token"), "/"+tenantID+"/discovery/v2.0/keys")
		if c["ver"] != "2.0" || c["aud"] != apiAppID || c["iss"] != e.base+"/"+tenantID+"/v2.0" || c["azp"] != nativeID ||
			c["preferred_username"] != alice || c["upn"] != nil || c["appid"] != nil || c["scp"] != "API.Access" {
			t.Errorf("%s: v2 access token = %v", path, c)
		}
		if _, ok := h.ExtraHeaders["x5t"]; ok {
			t.Errorf("%s: v2 access token carries x5t", path)
		}
	}
}

func TestAllowCloudPasswordValidation(t *testing.T) {
	b, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(b), "    displayName: Contoso\n", "    displayName: Contoso\n    allowCloudPasswordValidation: true\n", 1)
	dir, err := entra.ParseDirectory([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvDir(t, dir)
	form := with(passwordV2(apiURI+"/API.Access"), "username", "grace@corp.contoso.com", "password", "Grace-Passw0rd!")
	if r := e.postForm(v2Token, form); r.status != 200 {
		t.Errorf("federated user with cloud password validation: %d %s", r.status, r.raw)
	}
	// Entra checks the password then, and a wrong one is a plain 50126.
	checkSTSError(t, e.postForm(v2Token, with(form, "password", "wrong")), 400, "invalid_grant", 50126, "")
}
