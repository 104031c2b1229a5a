package oauth_test

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/server/servertest"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestRepeatedParameters: a parameter given twice is refused in a JSON
// body as in a form body, before the client is looked up and before
// Entra is called, so that a proxy in front and Gatehouse cannot act on
// different values of one request.
func TestRepeatedParameters(t *testing.T) {
	e := newEnv(t, storetest.SQLite, envOptions{})
	realm := "http://auth0.com/oauth/grant-type/password-realm"
	jsonBody := func(pairs ...string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := 0; i < len(pairs); i += 2 {
			if i > 0 {
				b.WriteString(",")
			}
			k, _ := json.Marshal(pairs[i])
			v, _ := json.Marshal(pairs[i+1])
			b.Write(k)
			b.WriteString(":")
			b.Write(v)
		}
		b.WriteString("}")
		return b.String()
	}
	login := []string{"grant_type", realm, "client_id", e.clientID, "realm", "contoso-v2", "username", "alice@contoso.com"}
	form := func(extra string) string {
		v := url.Values{}
		for i := 0; i < len(login); i += 2 {
			v.Set(login[i], login[i+1])
		}
		return v.Encode() + extra
	}
	before := e.emu.Count("token")
	for _, tc := range []struct {
		name, contentType, body string
		desc                    string
	}{
		{"form, password twice", "application/x-www-form-urlencoded", form("&password=a&password=Alice-Passw0rd!"), "Parameter password must not be repeated."},
		{"json, password twice", "application/json", jsonBody(append(login, "password", "a", "password", "Alice-Passw0rd!")...), "Parameter password must not be repeated."},
		{"json, username twice", "application/json", jsonBody(append(login, "password", "Alice-Passw0rd!", "username", "bob@contoso.com")...), "Parameter username must not be repeated."},
		{"json, client_id twice", "application/json", jsonBody(append(login, "password", "Alice-Passw0rd!", "client_id", "someone-else")...), "Parameter client_id must not be repeated."},
		{"json, repeat spelled with an escape", "application/json", strings.TrimSuffix(jsonBody(append(login, "password", "a")...), "}") + `,"pass\u0077ord":"Alice-Passw0rd!"}`, "Parameter password must not be repeated."},
		{"json, null then a value", "application/json", strings.Replace(jsonBody(append(login, "password", "Alice-Passw0rd!")...), "{", `{"password":null,`, 1), "Parameter password must not be repeated."},
		{"json, trailing data", "application/json", jsonBody(append(login, "password", "Alice-Passw0rd!")...) + `{"password":"x"}`, "Malformed JSON body."},
		{"json, not an object", "application/json", `[{"grant_type":"password"}]`, "Malformed JSON body."},
		{"json, null", "application/json", `null`, "Malformed JSON body."},
		{"json, nested object", "application/json", strings.Replace(jsonBody(login...), "{", `{"password":{"value":"x"},`, 1), "Parameter password must be a string."},
	} {
		req, _ := http.NewRequest("POST", e.url+"oauth/token", strings.NewReader(tc.body))
		req.Header.Set("Content-Type", tc.contentType)
		resp, err := e.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, body := readAnswer(resp)
		if resp.StatusCode != 400 || body["error"] != "invalid_request" || body["error_description"] != tc.desc || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, raw)
		}
	}
	if n := e.emu.Count("token") - before; n != 0 {
		t.Errorf("%d refused requests reached Entra", n)
	}
	r := e.login(t, "contoso-v2", "alice@contoso.com", "Alice-Passw0rd!", "openid")
	if r.status != 200 {
		t.Errorf("a single set of parameters: %d %s", r.status, r.raw)
	}
}

// TestOneClientAuthenticationMethod: a secret in the Authorization header
// and another in the body is refused whichever of them is right (RFC 6749
// §2.3), at the token and revocation endpoints alike.
func TestOneClientAuthenticationMethod(t *testing.T) {
	env := servertest.Start(t, storetest.SQLite)
	aud := url.QueryEscape(env.URL + "api/v2/")
	form := "application/x-www-form-urlencoded"
	right, wrong := [2]string{env.AdminID, env.AdminSecret}, [2]string{env.AdminID, "WRONG"}
	body := func(secret string) string {
		return "grant_type=client_credentials&audience=" + aud + "&client_secret=" + url.QueryEscape(secret)
	}
	for _, c := range []tokenCase{
		{name: "right Basic, wrong body secret", contentType: form, body: body("WRONG"), basic: right},
		{name: "wrong Basic, right body secret", contentType: form, body: body(env.AdminSecret), basic: wrong},
		{name: "right secret in both", contentType: form, body: body(env.AdminSecret), basic: right},
		{name: "json body", contentType: "application/json", body: `{"grant_type":"client_credentials","audience":"` + env.URL + `api/v2/","client_secret":"WRONG"}`, basic: right},
	} {
		status, h, b := post(t, env, c)
		if status != 401 || b["error"] != "access_denied" || b["error_description"] != "Unauthorized" || h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %d %v %v", c.name, status, b["error"], b["error_description"])
		}
	}
	if status, _, b := post(t, env, tokenCase{contentType: form, body: "grant_type=client_credentials&audience=" + aud, basic: right}); status != 200 {
		t.Errorf("Basic alone: %d %v", status, b["error_description"])
	}

	req, _ := http.NewRequest("POST", env.URL+"oauth/revoke", strings.NewReader("token=x&client_secret=WRONG"))
	req.Header.Set("Content-Type", form)
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(env.AdminID)+":"+url.QueryEscape(env.AdminSecret))))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(string(raw), `"access_denied"`) {
		t.Errorf("revoke with both: %d %s", resp.StatusCode, raw)
	}
}

// TestTokenCheckOrder pins the order docs/errors.md gives for the
// checks before Entra: each request has two faults, and the answer is
// the earlier check's. None of them reaches Entra.
func TestTokenCheckOrder(t *testing.T) {
	e := newEnv(t, storetest.SQLite, envOptions{})
	_, spa := e.api(t, "POST", "api/v2/clients", map[string]any{"name": "spa", "app_type": "native", "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code"}})
	realmGrant := "http://auth0.com/oauth/grant-type/password-realm"
	base := url.Values{"grant_type": {realmGrant}, "client_id": {e.clientID}, "realm": {"contoso-v2"},
		"username": {"alice@contoso.com"}, "password": {"Alice-Passw0rd!"}}
	// with returns base with each of kv's parameters set, or removed when
	// its value is empty.
	with := func(kv ...string) url.Values {
		f := url.Values{}
		for k, v := range base {
			f[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				f.Del(kv[i])
			} else {
				f.Set(kv[i], kv[i+1])
			}
		}
		return f
	}
	before := e.emu.Count("token")
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		code   string
		desc   string
	}{
		{"grant type before client", with("grant_type", "urn:example:magic", "client_id", "nope"), 400, "unsupported_grant_type", "Grant type not supported"},
		{"missing grant type before client", with("grant_type", "", "client_id", "nope"), 400, "invalid_request", "Missing required parameter: grant_type"},
		{"client before username", with("client_id", "nope", "username", ""), 401, "access_denied", "Unauthorized"},
		{"client before password", with("client_id", "nope", "password", ""), 401, "access_denied", "Unauthorized"},
		{"client before realm", with("client_id", "nope", "realm", ""), 401, "access_denied", "Unauthorized"},
		{"grant allowed before username", with("client_id", spa["client_id"].(string), "username", ""), 403, "unauthorized_client",
			"Grant type '" + realmGrant + "' not allowed for the client."},
		{"username before realm", with("username", "", "realm", "nope"), 400, "invalid_request", "Missing required parameter: username"},
		{"password before realm", with("password", "", "realm", "nope"), 400, "invalid_request", "Missing required parameter: password"},
		{"username before default directory", with("grant_type", "password", "realm", "", "username", ""), 400, "invalid_request", "Missing required parameter: username"},
		{"default directory before audience", with("grant_type", "password", "realm", "", "audience", "https://nowhere.example/"), 500, "server_error",
			"Authorization server not configured with default connection."},
		{"audience before connection", with("audience", "https://nowhere.example/", "realm", "nope"), 403, "access_denied",
			"Service not enabled within domain: https://nowhere.example/"},
	} {
		r := e.token(t, tc.form)
		if r.status != tc.status || r.str("error") != tc.code || r.str("error_description") != tc.desc {
			t.Errorf("%s: %d %s", tc.name, r.status, r.raw)
		}
	}
	if n := e.emu.Count("token") - before; n != 0 {
		t.Errorf("%d requests reached Entra", n)
	}
}

// TestBasicChallenge: a client refused after authenticating with the
// Authorization header gets RFC 6749 §5.2's WWW-Authenticate naming the
// Basic scheme, at the token and revocation endpoints, with Auth0's body
// unchanged; a client that sent its secret in the body gets no challenge.
func TestBasicChallenge(t *testing.T) {
	env := servertest.Start(t, storetest.SQLite)
	aud := url.QueryEscape(env.URL + "api/v2/")
	form := "application/x-www-form-urlencoded"
	send := func(path, body, authorization string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", env.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", form)
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(raw)
	}
	basic := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
	}
	const denied = `{"error":"access_denied","error_description":"Unauthorized"}`
	for _, tc := range []struct {
		name, path, body, authorization string
		challenge                       bool
	}{
		{"wrong Basic secret", "oauth/token", "grant_type=client_credentials&audience=" + aud, basic(env.AdminID, "WRONG"), true},
		{"unknown Basic client", "oauth/token", "grant_type=client_credentials&audience=" + aud, basic("ghost", "x"), true},
		{"Basic and a body secret", "oauth/token", "grant_type=client_credentials&audience=" + aud + "&client_secret=x", basic(env.AdminID, env.AdminSecret), true},
		{"malformed Authorization", "oauth/token", "grant_type=client_credentials&audience=" + aud, "Basic !!!", true},
		{"revoke, wrong Basic secret", "oauth/revoke", "token=x", basic(env.AdminID, "WRONG"), true},
		{"revoke, wrong Basic secret and no token", "oauth/revoke", "", basic(env.AdminID, "WRONG"), true},
		{"revoke, unknown client and no token", "oauth/revoke", "client_id=ghost", "", false},
		{"wrong body secret", "oauth/token", "grant_type=client_credentials&audience=" + aud + "&client_id=" + url.QueryEscape(env.AdminID) + "&client_secret=WRONG", "", false},
	} {
		status, h, raw := send(tc.path, tc.body, tc.authorization)
		if status != 401 || strings.TrimSpace(raw) != denied {
			t.Errorf("%s: %d %s", tc.name, status, raw)
		}
		got := h.Get("WWW-Authenticate")
		if tc.challenge != strings.HasPrefix(got, "Basic realm=") {
			t.Errorf("%s: WWW-Authenticate %q, want a Basic challenge: %v", tc.name, got, tc.challenge)
		}
	}
}

// TestParametersAreText: a parameter or Basic credential that is not
// UTF-8 text, or holds a NUL, can name no client, API or user. It is
// refused as a malformed request on both backends alike, rather than
// reaching PostgreSQL, which cannot compare it and failed the request with
// a 500 that anyone could trigger (and that operators alert on).
func TestParametersAreText(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			env := servertest.Start(t, backend)
			form, js := "application/x-www-form-urlencoded", "application/json"
			id, secret := url.QueryEscape(env.AdminID), url.QueryEscape(env.AdminSecret)
			for _, tc := range []struct {
				name, path, contentType, body, basic string
				status                               int
				code, desc                           string
			}{
				{"NUL in client_id", "oauth/token", form, "grant_type=client_credentials&client_id=a%00b&client_secret=x&audience=x", "", 400, "invalid_request", "Parameter client_id must be UTF-8 text without NUL characters."},
				{"invalid UTF-8 in client_id", "oauth/token", form, "grant_type=client_credentials&client_id=a%FFb&client_secret=x&audience=x", "", 400, "invalid_request", "Parameter client_id must be UTF-8 text without NUL characters."},
				{"NUL in a JSON client_id", "oauth/token", js, `{"grant_type":"client_credentials","client_id":"a\u0000b","client_secret":"x"}`, "", 400, "invalid_request", "Parameter client_id must be UTF-8 text without NUL characters."},
				{"NUL in a parameter name", "oauth/token", form, "grant_type=client_credentials&client%00id=x", "", 400, "invalid_request", "Malformed form body."},
				{"NUL in audience", "oauth/token", form, "grant_type=client_credentials&client_id=" + id + "&client_secret=" + secret + "&audience=a%00b", "", 400, "invalid_request", "Parameter audience must be UTF-8 text without NUL characters."},
				{"invalid UTF-8 in audience", "oauth/token", form, "grant_type=client_credentials&client_id=" + id + "&client_secret=" + secret + "&audience=a%FFb", "", 400, "invalid_request", "Parameter audience must be UTF-8 text without NUL characters."},
				{"NUL in the Basic client id", "oauth/token", form, "grant_type=client_credentials&audience=x", "a%00b:x", 401, "access_denied", "Unauthorized"},
				{"invalid UTF-8 in the Basic client id", "oauth/token", form, "grant_type=client_credentials&audience=x", "a\xffb:x", 401, "access_denied", "Unauthorized"},
				{"NUL in client_id at revoke", "oauth/revoke", form, "token=x&client_id=a%00b", "", 400, "invalid_request", "Parameter client_id must be UTF-8 text without NUL characters."},
				{"NUL in client_id with a refresh token", "oauth/token", form, "grant_type=refresh_token&client_id=a%00b&refresh_token=x", "", 400, "invalid_request", "Parameter client_id must be UTF-8 text without NUL characters."},
			} {
				req, _ := http.NewRequest("POST", env.URL+tc.path, strings.NewReader(tc.body))
				req.Header.Set("Content-Type", tc.contentType)
				if tc.basic != "" {
					req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(tc.basic)))
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				raw, body := readAnswer(resp)
				if resp.StatusCode != tc.status || body["error"] != tc.code || body["error_description"] != tc.desc {
					t.Errorf("%s: %d %s", tc.name, resp.StatusCode, raw)
				}
			}
			if strings.Contains(env.Logs.String(), `"level":"ERROR"`) {
				t.Errorf("malformed parameters were logged as server errors:\n%s", env.Logs.String())
			}
		})
	}
}

// readAnswer reads and closes resp's body, and decodes it as a JSON object
// when it is one.
func readAnswer(resp *http.Response) ([]byte, map[string]any) {
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	return raw, body
}

// TestLongUsername: a username longer than any directory's (Entra's UPNs
// are at most 113 characters) is refused as a malformed request before
// Entra, on both backends alike. Attack protection counts failures under
// the username in an indexed column, which PostgreSQL cannot index past a
// few kilobytes: such a username failed the login with a 500 that anyone
// could trigger, after it had been sent to Entra. The bound is the one
// the Management API's user-blocks take, so that any username that is
// counted can also be unblocked.
func TestLongUsername(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{})
			// Random, so PostgreSQL cannot compress it below its limit.
			long := func(n int) string {
				return strings.ToLower(hex.EncodeToString(randomBytes(n/2 + 1)))[:n-len("@contoso.com")] + "@contoso.com"
			}
			before := e.emu.Count("token")
			for _, n := range []int{513, 4096, 60000} {
				r := e.login(t, "contoso-v2", long(n), "Alice-Passw0rd!", "openid")
				if r.status != 400 || r.str("error") != "invalid_request" || r.str("error_description") != "Parameter username must be at most 512 bytes." ||
					r.header.Get("Cache-Control") != "no-store" {
					t.Errorf("%d bytes: %d %s", n, r.status, r.raw)
				}
			}
			if n := e.emu.Count("token") - before; n != 0 {
				t.Errorf("%d over-long usernames reached Entra", n)
			}
			if r := e.login(t, "contoso-v2", long(512), "Alice-Passw0rd!", "openid"); r.status != 403 || r.str("error") != "invalid_grant" {
				t.Errorf("512 bytes: %d %s", r.status, r.raw)
			}
			if strings.Contains(e.logs.String(), `"level":"ERROR"`) {
				t.Errorf("a long username was logged as a server error:\n%s", e.logs.String())
			}
		})
	}
}

// TestPostOnly: the token and revocation endpoints answer any other
// method with 405, the Allow header RFC 9110 §15.5.6 requires, and the
// error body and Cache-Control of their other errors. The revocation
// endpoint answered with the router's plain-text 405, cacheable, unlike
// every other error it documents.
func TestPostOnly(t *testing.T) {
	env := servertest.Start(t, storetest.SQLite)
	for _, path := range []string{"oauth/token", "oauth/revoke"} {
		for _, method := range []string{"GET", "PUT", "DELETE", "OPTIONS", "HEAD"} {
			req, _ := http.NewRequest(method, env.URL+path+"?token=x&grant_type=client_credentials", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, body := readAnswer(resp)
			if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" || resp.Header.Get("Cache-Control") != "no-store" ||
				!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
				(method != "HEAD" && (body["error"] != "invalid_request" || !strings.HasSuffix(body["error_description"].(string), " accepts POST only."))) {
				t.Errorf("%s %s: %d %v %s", method, path, resp.StatusCode, resp.Header, raw)
			}
		}
	}
}

// TestRepeatedHeaders: Authorization and Content-Type are single-valued
// (RFC 9110 §11.6.2, §8.3); a request with two of either is refused, as a
// repeated parameter is, rather than acted on by its first while a proxy
// in front may have read the other. Before, the first Authorization
// header authenticated the client whatever the second said.
func TestRepeatedHeaders(t *testing.T) {
	e := newEnv(t, storetest.SQLite, envOptions{})
	r := e.login(t, "contoso-v2", "alice@contoso.com", "Alice-Passw0rd!", "openid")
	if r.status != 200 {
		t.Fatalf("login: %d %s", r.status, r.raw)
	}
	at := r.str("access_token")
	_, c := e.api(t, "POST", "api/v2/clients", map[string]any{"name": "batch", "app_type": "non_interactive", "grant_types": []string{"client_credentials"}})
	id, secret := c["client_id"].(string), c["client_secret"].(string)
	if status, body := e.api(t, "POST", "api/v2/client-grants", map[string]any{"client_id": id, "audience": e.url + "api/v2/", "scope": []string{"read:clients"}}); status != 201 {
		t.Fatalf("client grant: %d %v", status, body)
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
	form := "application/x-www-form-urlencoded"
	cc := "grant_type=client_credentials&audience=" + url.QueryEscape(e.url+"api/v2/")
	before := e.emu.Count("token")
	for _, tc := range []struct {
		name, method, path, body string
		header                   http.Header
		status                   int
		code, desc               string
	}{
		{"two Authorization headers, the right one first", "POST", "oauth/token", cc,
			http.Header{"Content-Type": {form}, "Authorization": {basic, "Basic " + base64.StdEncoding.EncodeToString([]byte("someone:else"))}}, 401, "access_denied", "Unauthorized"},
		{"the same Authorization header twice", "POST", "oauth/token", cc,
			http.Header{"Content-Type": {form}, "Authorization": {basic, basic}}, 401, "access_denied", "Unauthorized"},
		{"two Authorization headers at revoke", "POST", "oauth/revoke", "token=x",
			http.Header{"Content-Type": {form}, "Authorization": {basic, "Bearer x"}}, 401, "access_denied", "Unauthorized"},
		{"two Content-Type headers", "POST", "oauth/token", cc + "&client_id=" + url.QueryEscape(id) + "&client_secret=" + url.QueryEscape(secret),
			http.Header{"Content-Type": {form, "application/json"}}, 400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded or application/json."},
		{"two Content-Type headers, a password login", "POST", "oauth/token",
			url.Values{"grant_type": {"password"}, "client_id": {e.clientID}, "realm": {"contoso-v2"}, "username": {"alice@contoso.com"}, "password": {"Alice-Passw0rd!"}}.Encode(),
			http.Header{"Content-Type": {form, form}}, 400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded or application/json."},
		{"two Authorization headers at userinfo", "GET", "userinfo", "",
			http.Header{"Authorization": {"Bearer " + at, "Bearer x"}}, 401, "", ""},
	} {
		req, _ := http.NewRequest(tc.method, e.url+tc.path, strings.NewReader(tc.body))
		req.Header = tc.header
		resp, err := e.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, body := readAnswer(resp)
		if resp.StatusCode != tc.status || resp.Header.Get("Cache-Control") != "no-store" ||
			(tc.code != "" && (body["error"] != tc.code || body["error_description"] != tc.desc)) {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, raw)
		}
	}
	if n := e.emu.Count("token") - before; n != 0 {
		t.Errorf("%d refused requests reached Entra", n)
	}
}
