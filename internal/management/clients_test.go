package management_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // raw reads of PostgreSQL rows
	_ "modernc.org/sqlite"             // raw reads of SQLite rows

	"github.com/gatehouse/gatehouse/internal/server/servertest"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// api is a running Gatehouse and an all-scopes Management API token.
type api struct {
	*servertest.Env
	t     *testing.T
	token string
}

func start(t *testing.T, backend string, opts ...servertest.Option) *api {
	t.Helper()
	env := servertest.Start(t, backend, opts...)
	return &api{Env: env, t: t, token: env.ManagementToken(t)}
}

// call sends a request with the all-scopes token and decodes a JSON answer.
func (a *api) call(method, path string, body any) (int, http.Header, any) {
	a.t.Helper()
	return a.callWith(a.token, method, path, body)
}

func (a *api) callWith(token, method, path string, body any) (int, http.Header, any) {
	a.t.Helper()
	status, h, raw := a.Do(a.t, method, path, token, body)
	var v any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &v); err != nil {
			a.t.Fatalf("%s %s: body is not JSON: %q", method, path, raw)
		}
	}
	return status, h, v
}

// must sends a request that must answer want and returns the object.
func (a *api) must(want int, method, path string, body any) map[string]any {
	a.t.Helper()
	status, _, v := a.call(method, path, body)
	if status != want {
		a.t.Fatalf("%s %s: status %d, want %d; body %v", method, path, status, want, v)
	}
	m, _ := v.(map[string]any)
	return m
}

// list returns a bare-array listing.
func (a *api) list(path string) []any {
	a.t.Helper()
	status, _, v := a.call("GET", path, nil)
	arr, ok := v.([]any)
	if status != http.StatusOK || !ok {
		a.t.Fatalf("GET %s: %d %v", path, status, v)
	}
	return arr
}

// errorIs checks an Auth0 error body.
func errorIs(t *testing.T, status int, v any, wantStatus int, wantCode, wantMessagePart string) {
	t.Helper()
	m, _ := v.(map[string]any)
	if status != wantStatus || m == nil {
		t.Fatalf("status %d, want %d; body %v", status, wantStatus, v)
	}
	if m["statusCode"] != float64(wantStatus) || m["error"] != http.StatusText(wantStatus) {
		t.Errorf("error body %v", m)
	}
	if wantCode != "" && m["errorCode"] != wantCode {
		t.Errorf("errorCode %v, want %s (%v)", m["errorCode"], wantCode, m["message"])
	}
	if msg, _ := m["message"].(string); !strings.Contains(msg, wantMessagePart) {
		t.Errorf("message %q does not contain %q", msg, wantMessagePart)
	}
}

// openDB opens the test server's database directly.
func (a *api) openDB() *sql.DB {
	a.t.Helper()
	driver, dsn := "pgx", a.Config.Database
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		driver, dsn = "sqlite", path
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		a.t.Fatal(err)
	}
	return db
}

// rawRows returns every row of a table as text, straight from the
// database, to prove what is (not) stored in clear. For SQLite it adds
// the database file and its write-ahead log, which hold every byte written.
func (a *api) rawRows(table string) string {
	a.t.Helper()
	db := a.openDB()
	defer db.Close()
	if path, ok := strings.CutPrefix(a.Config.Database, "sqlite:"); ok {
		var all []byte
		for _, p := range []string{path, path + "-wal"} {
			b, _ := os.ReadFile(p)
			all = append(all, b...)
		}
		return string(all) + a.rowsText(db, "SELECT * FROM "+table)
	}
	return a.rowsText(db, "SELECT row_to_json(t)::text FROM "+table+" t")
}

func (a *api) rowsText(db *sql.DB, query string) string {
	a.t.Helper()
	rows, err := db.QueryContext(context.Background(), query)
	if err != nil {
		a.t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var sb strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			a.t.Fatal(err)
		}
		for _, v := range vals {
			switch x := v.(type) {
			case []byte:
				sb.Write(x)
			case string:
				sb.WriteString(x)
			}
			sb.WriteByte('\n')
		}
	}
	return sb.String()
}

var (
	clientIDRE     = regexp.MustCompile(`^[A-Za-z0-9]{32}$`)
	clientSecretRE = regexp.MustCompile(`^[A-Za-z0-9_-]{64}$`)
)

// TestClientLifecycle walks every /clients route on every backend.
func TestClientLifecycle(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			created := a.must(201, "POST", "/api/v2/clients", map[string]any{
				"name": "My Native app", "app_type": "native", "description": "seed app",
				"callbacks":       []string{"com.example.app://example.eu.auth0.com/ios/com.example.app/callback"},
				"client_metadata": map[string]string{"team": "mobile"},
				"logo_uri":        "https://example.com/logo.png",
			})
			id, _ := created["client_id"].(string)
			secret, _ := created["client_secret"].(string)
			if !clientIDRE.MatchString(id) || !clientSecretRE.MatchString(secret) {
				t.Fatalf("client_id %q / client_secret %q are not Auth0-shaped", id, secret)
			}
			want := map[string]any{
				"name": "My Native app", "description": "seed app", "app_type": "native",
				"token_endpoint_auth_method": "none", "is_first_party": true, "oidc_conformant": false,
				"is_token_endpoint_ip_header_trusted": false, "sso_disabled": false, "cross_origin_authentication": false,
				"custom_login_page_on": true, "logo_uri": "https://example.com/logo.png",
			}
			for k, v := range want {
				if created[k] != v {
					t.Errorf("%s = %v, want %v", k, created[k], v)
				}
			}
			if g := created["grant_types"]; !jsonEqual(g, []string{"authorization_code", "implicit", "refresh_token"}) {
				t.Errorf("grant_types %v", g)
			}
			if j := created["jwt_configuration"]; !jsonEqual(j, map[string]any{"alg": "RS256", "lifetime_in_seconds": 36000, "secret_encoded": false}) {
				t.Errorf("jwt_configuration %v", j)
			}
			if r := created["refresh_token"]; !jsonEqual(r, map[string]any{"rotation_type": "non-rotating", "expiration_type": "non-expiring", "leeway": 0, "token_lifetime": 2592000, "infinite_token_lifetime": true, "idle_token_lifetime": 1296000, "infinite_idle_token_lifetime": true}) {
				t.Errorf("refresh_token %v", r)
			}

			got := a.must(200, "GET", "/api/v2/clients/"+id, nil)
			if got["client_secret"] != secret {
				t.Errorf("read:client_keys caller does not see the secret")
			}
			noKeys := a.ManagementToken(t, "read:clients", "update:clients")
			_, _, v := a.callWith(noKeys, "GET", "/api/v2/clients/"+id, nil)
			if _, ok := v.(map[string]any)["client_secret"]; ok {
				t.Errorf("client_secret returned without read:client_keys")
			}
			_, _, v = a.callWith(noKeys, "GET", "/api/v2/clients", nil)
			for _, c := range v.([]any) {
				if _, ok := c.(map[string]any)["client_secret"]; ok {
					t.Errorf("listing returns client_secret without read:client_keys")
				}
			}

			fields := a.must(200, "GET", "/api/v2/clients/"+id+"?fields=name,app_type&include_fields=true", nil)
			if len(fields) != 2 || fields["name"] != "My Native app" {
				t.Errorf("fields: %v", fields)
			}

			patched := a.must(200, "PATCH", "/api/v2/clients/"+id, map[string]any{
				"grant_types":       []string{"password", "http://auth0.com/oauth/grant-type/password-realm", "refresh_token"},
				"jwt_configuration": map[string]any{"lifetime_in_seconds": 600},
				"description":       "changed",
			})
			if patched["description"] != "changed" || !jsonEqual(patched["jwt_configuration"], map[string]any{"alg": "RS256", "lifetime_in_seconds": 600, "secret_encoded": false}) {
				t.Errorf("patched %v", patched)
			}
			if patched["name"] != "My Native app" || patched["logo_uri"] != "https://example.com/logo.png" {
				t.Errorf("PATCH lost fields it did not name: %v", patched)
			}

			// Without update:client_keys the secret cannot be set.
			status, _, v := a.callWith(noKeys, "PATCH", "/api/v2/clients/"+id, map[string]any{"client_secret": strings.Repeat("s", 40)})
			errorIs(t, status, v, 403, "insufficient_scope", "update:client_keys")
			set := a.must(200, "PATCH", "/api/v2/clients/"+id, map[string]any{"client_secret": strings.Repeat("s", 40)})
			if set["client_secret"] != strings.Repeat("s", 40) {
				t.Errorf("client_secret not set: %v", set["client_secret"])
			}

			rotated := a.must(200, "POST", "/api/v2/clients/"+id+"/rotate-secret", nil)
			if s, _ := rotated["client_secret"].(string); !clientSecretRE.MatchString(s) || s == secret {
				t.Errorf("rotate-secret gave %q", s)
			}

			a.must(204, "DELETE", "/api/v2/clients/"+id, nil)
			status, _, v = a.call("GET", "/api/v2/clients/"+id, nil)
			errorIs(t, status, v, 404, "inexistent_client", "The client does not exist")
			for _, m := range []string{"PATCH", "DELETE"} {
				status, _, v = a.call(m, "/api/v2/clients/"+id, map[string]any{})
				errorIs(t, status, v, 404, "inexistent_client", "The client does not exist")
			}
			status, _, v = a.call("POST", "/api/v2/clients/"+id+"/rotate-secret", nil)
			errorIs(t, status, v, 404, "inexistent_client", "")
		})
	}
}

// TestClientSecretRotationAtTokenEndpoint: a confidential client's secret
// works at /oauth/token until it is rotated, then only the new one does.
func TestClientSecretRotationAtTokenEndpoint(t *testing.T) {
	a := start(t, storetest.SQLite)
	c := a.must(201, "POST", "/api/v2/clients", map[string]any{"name": "m2m", "app_type": "non_interactive"})
	id, old := c["client_id"].(string), c["client_secret"].(string)
	token := func(secret string) int {
		resp, err := http.PostForm(a.URL+"oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}, "audience": {a.URL + "api/v2/"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// The client authenticates (403: no client grant for the Management
	// API) rather than failing authentication (401).
	if s := token(old); s != 403 {
		t.Fatalf("old secret before rotation: %d", s)
	}
	fresh := a.must(200, "POST", "/api/v2/clients/"+id+"/rotate-secret", nil)["client_secret"].(string)
	if s := token(old); s != 401 {
		t.Errorf("old secret after rotation: %d, want 401", s)
	}
	if s := token(fresh); s != 403 {
		t.Errorf("new secret: %d, want 403", s)
	}
}

// TestClientDefaults pins Auth0's per-app-type grant_types and
// token_endpoint_auth_method.
func TestClientDefaults(t *testing.T) {
	a := start(t, storetest.SQLite)
	public := []string{"authorization_code", "implicit", "refresh_token"}
	confidential := []string{"authorization_code", "implicit", "refresh_token", "client_credentials"}
	for _, c := range []struct {
		appType string
		grants  []string
		method  string
	}{
		{"native", public, "none"},
		{"spa", public, "none"},
		{"regular_web", confidential, "client_secret_post"},
		{"non_interactive", confidential, "client_secret_post"},
		{"", confidential, "client_secret_post"},
	} {
		t.Run("app_type="+c.appType, func(t *testing.T) {
			body := map[string]any{"name": "app"}
			if c.appType != "" {
				body["app_type"] = c.appType
			}
			got := a.must(201, "POST", "/api/v2/clients", body)
			if !jsonEqual(got["grant_types"], c.grants) || got["token_endpoint_auth_method"] != c.method {
				t.Errorf("grant_types %v, token_endpoint_auth_method %v", got["grant_types"], got["token_endpoint_auth_method"])
			}
			if _, ok := got["client_secret"].(string); !ok {
				t.Errorf("no client_secret on create (Auth0 gives every app one)")
			}
		})
	}
}

// TestClientValidation: every bad body is a 400 naming the property, and
// nothing is stored.
func TestClientValidation(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			existing := a.must(201, "POST", "/api/v2/clients", map[string]any{"name": "existing", "app_type": "regular_web"})
			before := a.list("/api/v2/clients")
			cases := []struct {
				name string
				body any
				msg  string
			}{
				{"missing name", map[string]any{"app_type": "native"}, "Missing required property: name"},
				{"empty name", map[string]any{"name": " "}, "on property name"},
				{"name with <", map[string]any{"name": "<script>"}, "on property name"},
				{"name not a string", map[string]any{"name": 7}, "'Expected type string but found type number' on property name"},
				{"unknown property", map[string]any{"name": "x", "bogus": 1, "alsobogus": 2}, "Additional properties not allowed: alsobogus,bogus"},
				{"client_secret on create", map[string]any{"name": "x", "client_secret": strings.Repeat("a", 40)}, "Additional properties not allowed: client_secret"},
				{"description too long", map[string]any{"name": "x", "description": strings.Repeat("d", 141)}, "on property description"},
				{"bad app_type", map[string]any{"name": "x", "app_type": "mainframe"}, `No enum match for: "mainframe"`},
				{"bad grant", map[string]any{"name": "x", "grant_types": []string{"implicit", "magic"}}, "on property grant_types[1]"},
				{"grant not a string", map[string]any{"name": "x", "grant_types": []any{1}}, "on property grant_types[0]"},
				{"public client_credentials", map[string]any{"name": "x", "app_type": "native", "grant_types": []string{"client_credentials"}}, "on property grant_types"},
				{"none with client_credentials", map[string]any{"name": "x", "token_endpoint_auth_method": "none", "grant_types": []string{"client_credentials"}}, "on property grant_types"},
				{"bad auth method", map[string]any{"name": "x", "token_endpoint_auth_method": "private_key_jwt"}, "on property token_endpoint_auth_method"},
				{"bool as string", map[string]any{"name": "x", "is_first_party": "yes"}, "'Expected type boolean but found type string' on property is_first_party"},
				{"jwt alg", map[string]any{"name": "x", "jwt_configuration": map[string]any{"alg": "HS256"}}, "on property jwt_configuration.alg"},
				{"jwt lifetime type", map[string]any{"name": "x", "jwt_configuration": map[string]any{"lifetime_in_seconds": "10"}}, "on property jwt_configuration.lifetime_in_seconds"},
				{"jwt lifetime fraction", map[string]any{"name": "x", "jwt_configuration": map[string]any{"lifetime_in_seconds": 1.5}}, "on property jwt_configuration.lifetime_in_seconds"},
				{"jwt lifetime range", map[string]any{"name": "x", "jwt_configuration": map[string]any{"lifetime_in_seconds": 0}}, "on property jwt_configuration.lifetime_in_seconds"},
				{"jwt unknown", map[string]any{"name": "x", "jwt_configuration": map[string]any{"kid": "k"}}, "Additional properties not allowed: kid' on property jwt_configuration"},
				{"refresh rotation", map[string]any{"name": "x", "refresh_token": map[string]any{"rotation_type": "sometimes"}}, "on property refresh_token.rotation_type"},
				{"refresh expiration", map[string]any{"name": "x", "refresh_token": map[string]any{"expiration_type": "never"}}, "on property refresh_token.expiration_type"},
				{"refresh leeway", map[string]any{"name": "x", "refresh_token": map[string]any{"leeway": -1}}, "on property refresh_token.leeway"},
				{"metadata value type", map[string]any{"name": "x", "client_metadata": map[string]any{"k": 1}}, "on property client_metadata.k"},
				{"metadata too many", map[string]any{"name": "x", "client_metadata": manyKeys(11)}, "on property client_metadata"},
				{"metadata too long", map[string]any{"name": "x", "client_metadata": map[string]any{"k": strings.Repeat("v", 256)}}, "on property client_metadata.k"},
				{"callbacks not array", map[string]any{"name": "x", "callbacks": "https://a.example.com"}, "on property callbacks"},
				{"kept property type", map[string]any{"name": "x", "logo_uri": 1}, "on property logo_uri"},
				{"not an object", []any{1}, "Invalid JSON body"},
				{"null", "null", "found type null"},
				{"malformed", `{"name":`, "Invalid JSON body"},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					status, _, v := a.call("POST", "/api/v2/clients", c.body)
					errorIs(t, status, v, 400, "invalid_body", c.msg)
				})
			}
			// PATCH refuses the same way and leaves the client as it was.
			id := existing["client_id"].(string)
			for _, body := range []map[string]any{
				{"app_type": "mainframe"},
				{"callbacks": []string{"https://ok.example.com", "https://a.example.com/#frag"}},
				{"token_endpoint_auth_method": "none"},
				{"client_secret": "short"},
				{"name": ""},
			} {
				status, _, v := a.call("PATCH", "/api/v2/clients/"+id, body)
				errorIs(t, status, v, 400, "invalid_body", "on property")
			}
			if after := a.must(200, "GET", "/api/v2/clients/"+id, nil); !jsonEqual(after, existing) {
				t.Errorf("a refused PATCH changed the client:\n%v\n%v", existing, after)
			}
			if after := a.list("/api/v2/clients"); !jsonEqual(after, before) {
				t.Errorf("a refused POST stored something: %d clients before, %d after", len(before), len(after))
			}
		})
	}
}

// TestClientURLs pins callback, logout URL and web origin rules: custom
// schemes for native apps, no fragments, Auth0's wildcard rules.
func TestClientURLs(t *testing.T) {
	a := start(t, storetest.SQLite)
	cases := []struct {
		appType, prop, url string
		ok                 bool
	}{
		{"native", "callbacks", "com.example.app://callback", true},
		{"native", "callbacks", "com.example.app:/oauth2redirect", true},
		{"native", "callbacks", "https://example.com/callback", true},
		{"native", "callbacks", "http://localhost:3000/callback", true},
		{"native", "allowed_logout_urls", "com.example.app://logout", true},
		{"native", "web_origins", "capacitor://localhost", true},
		{"spa", "callbacks", "com.example.app://callback", false},
		{"regular_web", "callbacks", "myapp://callback", false},
		{"native", "callbacks", "javascript:alert(1)", false},
		{"native", "callbacks", "data:text/html,hi", false},
		{"native", "callbacks", "com.example.app:", false},
		{"native", "callbacks", "/relative/path", false},
		{"native", "callbacks", "example.com/callback", false},
		{"regular_web", "callbacks", "https://example.com/cb#section", false},
		{"native", "callbacks", "com.example.app://callback#x", false},
		{"regular_web", "callbacks", "https://user:pw@example.com/cb", false},
		{"regular_web", "callbacks", "https://*.example.com/callback", true},
		{"regular_web", "callbacks", "https://prefix-*-suffix.example.com/callback", true},
		{"regular_web", "callbacks", "https://*.com/callback", false},
		{"regular_web", "callbacks", "https://sub.*.example.com/callback", false},
		{"regular_web", "callbacks", "https://*.*.example.com/callback", false},
		{"regular_web", "callbacks", "https://example.com/*", false},
		{"native", "callbacks", "com.example.*://callback", false},
		{"native", "callbacks", "com.example.app://*.example.com/cb", false},
		{"regular_web", "allowed_logout_urls", "https://*.example.com/logout", true},
		{"regular_web", "allowed_logout_urls", "https://example.com/bye#x", false},
		{"spa", "web_origins", "https://app.example.com", true},
		{"spa", "web_origins", "https://*.example.com", true},
		{"spa", "web_origins", "https://app.example.com/path", false},
		{"spa", "web_origins", "https://app.example.com?q=1", false},
		{"spa", "allowed_origins", "https://app.example.com", true},
		{"spa", "allowed_origins", "https://*.example.com", true},
		{"native", "allowed_origins", "capacitor://localhost", true},
		{"spa", "allowed_origins", "capacitor://localhost", false},
		{"spa", "allowed_origins", "https://user:pw@app.example.com", false},
		{"spa", "allowed_origins", "https://app.example.com/path", false},
		{"spa", "allowed_origins", "https://app.example.com#x", false},
		{"spa", "allowed_origins", "https://*.com", false},
		{"spa", "allowed_origins", "javascript:alert(1)", false},
		{"spa", "allowed_origins", "app.example.com", false},
	}
	for _, c := range cases {
		t.Run(c.appType+" "+c.prop+" "+c.url, func(t *testing.T) {
			status, _, v := a.call("POST", "/api/v2/clients", map[string]any{"name": "u", "app_type": c.appType, c.prop: []string{c.url}})
			if c.ok {
				if status != 201 {
					t.Fatalf("refused: %d %v", status, v)
				}
				return
			}
			errorIs(t, status, v, 400, "invalid_body", "on property "+c.prop+"[0]")
		})
	}
}

// TestAllowedOriginsCredentials: allowed_origins follows the web origin
// rules, so a URL holding credentials is refused with a 400 that does not
// echo them, and nothing is stored. A value stored before the rule still
// loads, is answered as stored, and does not block writes to other
// properties; sending allowed_origins again checks the new list.
func TestAllowedOriginsCredentials(t *testing.T) {
	const secret = "TopSecretPw"
	bad := "https://admin:" + secret + "@app.example.com"
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			before := a.list("/api/v2/clients")
			status, _, v := a.call("POST", "/api/v2/clients", map[string]any{"name": "spa", "app_type": "spa", "allowed_origins": []string{"https://ok.example.com", bad}})
			errorIs(t, status, v, 400, "invalid_body", `'URL "https://app.example.com" must not contain credentials' on property allowed_origins[1].`)
			if strings.Contains(fmt.Sprint(v), secret) {
				t.Errorf("the refusal echoes the credentials: %v", v)
			}
			if after := a.list("/api/v2/clients"); len(after) != len(before) {
				t.Errorf("a refused POST stored a client: %d before, %d after", len(before), len(after))
			}

			id := a.must(201, "POST", "/api/v2/clients", map[string]any{"name": "spa", "app_type": "spa", "allowed_origins": []string{"https://ok.example.com"}})["client_id"].(string)
			status, _, v = a.call("PATCH", "/api/v2/clients/"+id, map[string]any{"allowed_origins": []string{bad}})
			errorIs(t, status, v, 400, "invalid_body", "on property allowed_origins[0]")
			if strings.Contains(fmt.Sprint(v), secret) {
				t.Errorf("the refusal echoes the credentials: %v", v)
			}
			if got := a.must(200, "GET", "/api/v2/clients/"+id, nil)["allowed_origins"]; !jsonEqual(got, []any{"https://ok.example.com"}) {
				t.Errorf("a refused PATCH changed allowed_origins: %v", got)
			}

			// A value stored before the rule, written as an older release did.
			other, err := sqlstore.Open(t.Context(), a.Config.Database, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			old := &store.Client{ClientID: "oldclientxxxxxxxxxxxxxxxxxxxxxxx", Name: "old", AppType: "spa", TokenEndpointAuthMethod: "none",
				IsFirstParty: true, Extra: json.RawMessage(`{"allowed_origins":["` + bad + `"]}`)}
			if err := other.CreateClient(t.Context(), old); err != nil {
				t.Fatal(err)
			}
			path := "/api/v2/clients/" + old.ClientID
			if got := a.must(200, "GET", path, nil)["allowed_origins"]; !jsonEqual(got, []any{bad}) {
				t.Errorf("stored allowed_origins answered as %v", got)
			}
			if got := a.must(200, "PATCH", path, map[string]any{"name": "renamed"}); got["name"] != "renamed" || !jsonEqual(got["allowed_origins"], []any{bad}) {
				t.Errorf("PATCH of another property: %v", got)
			}
			status, _, v = a.call("PATCH", path, map[string]any{"allowed_origins": []string{bad}})
			errorIs(t, status, v, 400, "invalid_body", "on property allowed_origins[0]")
			if got := a.must(200, "PATCH", path, map[string]any{"allowed_origins": []string{"https://app.example.com"}}); !jsonEqual(got["allowed_origins"], []any{"https://app.example.com"}) {
				t.Errorf("corrected allowed_origins: %v", got["allowed_origins"])
			}
			if strings.Contains(a.Logs.String(), secret) {
				t.Errorf("the credentials were logged")
			}
		})
	}
}

// TestClientListPaging covers page, per_page, include_totals and the
// app_type / is_first_party filters.
func TestClientListPaging(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			// The bootstrap admin application is the first client.
			a.sixClients("spa")
			all := a.list("/api/v2/clients")
			if len(all) != 7 {
				t.Fatalf("%d clients, want 7", len(all))
			}
			page := a.list("/api/v2/clients?page=1&per_page=3")
			if len(page) != 3 || !jsonEqual(page, all[3:6]) {
				t.Errorf("page 1 of 3: %v", names(page))
			}
			env := a.must(200, "GET", "/api/v2/clients?page=2&per_page=3&include_totals=true", nil)
			if env["start"] != 6.0 || env["limit"] != 3.0 || env["length"] != 1.0 || env["total"] != 7.0 || len(env["clients"].([]any)) != 1 {
				t.Errorf("envelope %v", env)
			}
			if spa := a.list("/api/v2/clients?app_type=spa"); len(spa) != 3 {
				t.Errorf("app_type=spa: %v", names(spa))
			}
			// No global client: is_global=true selects none, false all.
			if global := a.list("/api/v2/clients?is_global=true"); len(global) != 0 {
				t.Errorf("is_global=true: %v", names(global))
			}
			if notGlobal := a.list("/api/v2/clients?is_global=false"); !jsonEqual(notGlobal, all) {
				t.Errorf("is_global=false: %v", names(notGlobal))
			}
			env = a.must(200, "GET", "/api/v2/clients?app_type=native&is_first_party=true&include_totals=true&per_page=1", nil)
			if env["total"] != 2.0 || env["length"] != 1.0 {
				t.Errorf("filtered envelope %v", env)
			}
			for q, msg := range map[string]string{
				"per_page=101":       "'Value 101 is greater than maximum 100' on property per_page",
				"per_page=0":         "on property per_page",
				"page=-1":            "on property page",
				"page=x":             "on property page",
				"include_totals=yes": "on property include_totals",
				"is_first_party=1":   "on property is_first_party",
				"is_global=1":        "on property is_global",
				"q=client_grant.allow_any_organization%3Atrue": "'Gatehouse has no organizations: q is not supported' on property q",
			} {
				status, _, v := a.call("GET", "/api/v2/clients?"+q, nil)
				errorIs(t, status, v, 400, "invalid_query_string", msg)
			}
			if got := a.list("/api/v2/clients?page=9&per_page=100"); len(got) != 0 {
				t.Errorf("page 9 of 100: %v", names(got))
			}
			status, _, v := a.call("GET", "/api/v2/clients?page=10&per_page=100", nil)
			errorIs(t, status, v, 400, "invalid_paging",
				"Requesting page 10 exceeds the allowed maximum of 1000 records. To fetch results beyond 1000, use the checkpoint pagination method.")
		})
	}
}

// clientIDs returns the client_id of each listed client.
func clientIDs(items []any) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.(map[string]any)["client_id"].(string))
	}
	return out
}

// walkClients follows GET /api/v2/clients by checkpoint from query q
// (which holds take and any filters) to the last page.
func (a *api) walkClients(token, q string) []any {
	a.t.Helper()
	var all []any
	from := ""
	for range 2000 {
		status, _, v := a.callWith(token, "GET", "/api/v2/clients?"+q+from, nil)
		page, _ := v.(map[string]any)
		if status != http.StatusOK || page == nil {
			a.t.Fatalf("GET /api/v2/clients?%s%s: %d, not a checkpoint page: %.200v", q, from, status, v)
		}
		for _, k := range []string{"start", "limit", "length", "total"} {
			if _, ok := page[k]; ok {
				a.t.Fatalf("checkpoint page has offset field %s: %v", k, page)
			}
		}
		all = append(all, page["clients"].([]any)...)
		next, ok := page["next"].(string)
		if !ok {
			return all
		}
		from = "&from=" + url.QueryEscape(next)
	}
	a.t.Fatalf("checkpoint walk of %s does not end", q)
	return nil
}

// TestClientCheckpointPaging covers from/take on GET /api/v2/clients, with
// filters, fields and secrets, and its errors.
func TestClientCheckpointPaging(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			a.sixClients("regular_web")
			all := a.list("/api/v2/clients")
			want := clientIDs(all)
			for _, take := range []int{1, 3, 7, 50} {
				if got := clientIDs(a.walkClients(a.token, fmt.Sprintf("take=%d", take))); !slices.Equal(got, want) {
					t.Errorf("take=%d walk %v, want %v", take, got, want)
				}
			}
			// from alone takes 50; take alone starts at the beginning.
			first := a.must(200, "GET", "/api/v2/clients?take=2", nil)
			if got := clientIDs(first["clients"].([]any)); !slices.Equal(got, want[:2]) {
				t.Errorf("take=2: %v", got)
			}
			rest := a.must(200, "GET", "/api/v2/clients?from="+url.QueryEscape(first["next"].(string)), nil)
			if got := clientIDs(rest["clients"].([]any)); !slices.Equal(got, want[2:]) || rest["next"] != nil {
				t.Errorf("from without take: %v next %v", got, rest["next"])
			}
			// Page sizes may change mid-walk.
			mid := a.must(200, "GET", "/api/v2/clients?take=3&from="+url.QueryEscape(first["next"].(string)), nil)
			if got := clientIDs(mid["clients"].([]any)); !slices.Equal(got, want[2:5]) {
				t.Errorf("take 2 then 3: %v", got)
			}
			// A from that is no multiple of take starts there too.
			odd := base64.RawURLEncoding.EncodeToString([]byte("o1:1"))
			if got := a.must(200, "GET", "/api/v2/clients?take=4&from="+odd, nil); !slices.Equal(clientIDs(got["clients"].([]any)), want[1:5]) || got["next"] == nil {
				t.Errorf("take=4 from offset 1: %v", got)
			}
			// The items are those of offset paging, include_totals and
			// page/per_page do not apply.
			if got := a.walkClients(a.token, "take=4&include_totals=true&page=3&per_page=1"); !jsonEqual(got, all) {
				t.Errorf("checkpoint items differ from offset items")
			}

			// Filters walk the matching clients only.
			var web []string
			for _, c := range all {
				if c.(map[string]any)["app_type"] == "regular_web" {
					web = append(web, c.(map[string]any)["client_id"].(string))
				}
			}
			if got := clientIDs(a.walkClients(a.token, "take=2&app_type=regular_web")); len(web) != 3 || !slices.Equal(got, web) {
				t.Errorf("app_type=regular_web walk %v, want %v", got, web)
			}
			if got := clientIDs(a.walkClients(a.token, "take=1&app_type=native,spa&is_first_party=true")); !slices.Equal(got, []string{want[1], want[3]}) {
				t.Errorf("native first-party walk %v", got)
			}

			// fields shape each item; secrets need read:client_keys.
			for _, c := range a.walkClients(a.token, "take=3&fields=client_id,name&include_fields=true") {
				if m := c.(map[string]any); len(m) != 2 || m["client_id"] == nil || m["name"] == nil {
					t.Errorf("fields: %v", m)
				}
			}
			withSecret := 0
			for _, c := range a.walkClients(a.token, "take=3") {
				if _, ok := c.(map[string]any)["client_secret"]; ok {
					withSecret++
				}
			}
			if withSecret == 0 {
				t.Errorf("no client_secret for a read:client_keys caller")
			}
			for _, c := range a.walkClients(a.ManagementToken(t, "read:clients"), "take=3") {
				if _, ok := c.(map[string]any)["client_secret"]; ok {
					t.Errorf("checkpoint listing returns client_secret without read:client_keys")
				}
			}

			// A checkpoint past the end is an empty last page.
			for _, o := range []string{"o1:100", "o1:999999999"} {
				past := base64.RawURLEncoding.EncodeToString([]byte(o))
				if got := a.must(200, "GET", "/api/v2/clients?take=5&from="+past, nil); len(got["clients"].([]any)) != 0 || got["next"] != nil {
					t.Errorf("past the end (%s): %v", o, got)
				}
			}

			for q, msg := range map[string]string{
				"take=101": "'Value 101 is greater than maximum 100' on property take",
				"take=0":   "'Value 0 is less than minimum 1' on property take",
				"take=x":   "'Expected type integer but found type string' on property take",
				"take=-1":  "on property take",
				"from=@@":  "'Invalid checkpoint' on property from",
				"from=" + base64.RawURLEncoding.EncodeToString([]byte("o1:-1")):       "'Invalid checkpoint' on property from",
				"from=" + base64.RawURLEncoding.EncodeToString([]byte("x1:5")):        "'Invalid checkpoint' on property from",
				"from=" + base64.RawURLEncoding.EncodeToString([]byte("o1:")):         "'Invalid checkpoint' on property from",
				"take=2&from=" + base64.RawURLEncoding.EncodeToString([]byte("o1:a")): "'Invalid checkpoint' on property from",
				"take=2&is_first_party=yes":                                           "on property is_first_party",
			} {
				status, _, v := a.call("GET", "/api/v2/clients?"+q, nil)
				errorIs(t, status, v, 400, "invalid_query_string", msg)
			}
		})
	}
}

// TestClientPagingBeyondOffsetLimit: with more clients than offset paging
// reaches, checkpoint paging lists every one of them.
func TestClientPagingBeyondOffsetLimit(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			other, err := sqlstore.Open(t.Context(), a.Config.Database, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			want := []string{a.AdminID}
			for i := range 1010 {
				c := &store.Client{ClientID: fmt.Sprintf("bulk%04dxxxxxxxxxxxxxxxxxxxxxxxxxxxx", i)[:32], Name: fmt.Sprintf("bulk-%04d", i),
					AppType: "spa", TokenEndpointAuthMethod: "none", IsFirstParty: true}
				if err := other.CreateClient(t.Context(), c); err != nil {
					t.Fatal(err)
				}
				want = append(want, c.ClientID)
			}
			status, _, v := a.call("GET", "/api/v2/clients?page=10&per_page=100&include_totals=true", nil)
			errorIs(t, status, v, 400, "invalid_paging", "use the checkpoint pagination method")
			if got := clientIDs(a.walkClients(a.token, "take=100")); !slices.Equal(got, want) {
				t.Errorf("take=100 walk: %d clients, want %d in creation order", len(got), len(want))
			}
			if got := clientIDs(a.walkClients(a.token, "take=100&app_type=spa")); !slices.Equal(got, want[1:]) {
				t.Errorf("app_type=spa walk: %d clients, want %d", len(got), len(want)-1)
			}
		})
	}
}

// TestClientSecretAtRest: no client secret is stored in clear.
func TestClientSecretAtRest(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			c := a.must(201, "POST", "/api/v2/clients", map[string]any{"name": "web", "app_type": "regular_web"})
			rotated := a.must(200, "POST", "/api/v2/clients/"+c["client_id"].(string)+"/rotate-secret", nil)
			rows := a.rawRows("clients")
			if !strings.Contains(rows, c["client_id"].(string)) {
				t.Fatalf("raw scan did not see the client row")
			}
			for _, s := range []string{c["client_secret"].(string), rotated["client_secret"].(string), a.AdminSecret} {
				if strings.Contains(rows, s) {
					t.Errorf("a client secret is stored in clear")
				}
				if strings.Contains(a.Logs.String(), s) {
					t.Errorf("a client secret was logged")
				}
			}
		})
	}
}

// TestScopes: every route needs its scope and a token.
func TestScopes(t *testing.T) {
	a := start(t, storetest.SQLite)
	routes := []struct{ method, path, scope string }{
		{"POST", "/api/v2/clients", "create:clients"},
		{"GET", "/api/v2/clients", "read:clients"},
		{"GET", "/api/v2/clients/x", "read:clients"},
		{"PATCH", "/api/v2/clients/x", "update:clients"},
		{"DELETE", "/api/v2/clients/x", "delete:clients"},
		{"POST", "/api/v2/clients/x/rotate-secret", "update:client_keys"},
		{"POST", "/api/v2/connections", "create:connections"},
		{"GET", "/api/v2/connections", "read:connections"},
		{"GET", "/api/v2/connections/x", "read:connections"},
		{"PATCH", "/api/v2/connections/x", "update:connections"},
		{"DELETE", "/api/v2/connections/x", "delete:connections"},
		{"GET", "/api/v2/connections/x/clients", "read:connections"},
		{"PATCH", "/api/v2/connections/x/clients", "update:connections"},
	}
	// A token holding every scope but the ones under test.
	others := []string{"read:clients", "create:clients", "update:clients", "delete:clients", "read:client_keys", "update:client_keys", "read:connections", "create:connections", "update:connections", "delete:connections"}
	for _, r := range routes {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			without := slices.DeleteFunc(slices.Clone(others), func(s string) bool { return s == r.scope })
			status, _, v := a.callWith(a.ManagementToken(t, without...), r.method, r.path, map[string]any{})
			errorIs(t, status, v, 403, "insufficient_scope", "Insufficient scope, expected any of: "+r.scope)
			status, _, v = a.callWith("", r.method, r.path, map[string]any{})
			errorIs(t, status, v, 401, "", "Missing authentication")
			// With the scope the route runs (and finds nothing, or
			// refuses the empty body).
			status, _, _ = a.callWith(a.ManagementToken(t, r.scope), r.method, r.path, map[string]any{})
			if status == 401 || status == 403 {
				t.Errorf("with %s: %d", r.scope, status)
			}
		})
	}
}

func manyKeys(n int) map[string]any {
	m := map[string]any{}
	for i := range n {
		m["k"+string(rune('a'+i))] = "v"
	}
	return m
}

func names(items []any) []any {
	var out []any
	for _, it := range items {
		out = append(out, it.(map[string]any)["name"])
	}
	return out
}

// jsonEqual compares two values by their JSON encoding.
func jsonEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		return false
	}
	var va, vb any
	_ = json.Unmarshal(ja, &va)
	_ = json.Unmarshal(jb, &vb)
	ja, _ = json.Marshal(va)
	jb, _ = json.Marshal(vb)
	return bytes.Equal(ja, jb)
}

// sixClients creates app0…app5: native and odd (every second one, from
// app1), first party for app0–app2.
func (a *api) sixClients(odd string) {
	for i := range 6 {
		typ := "native"
		if i%2 == 1 {
			typ = odd
		}
		a.must(201, "POST", "/api/v2/clients", map[string]any{"name": "app" + string(rune('0'+i)), "app_type": typ, "is_first_party": i < 3})
	}
}
