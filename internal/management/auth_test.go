package management_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/server/servertest"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/tokens"
)

// foreignToken is a well-formed RS256 token signed by a key Gatehouse does
// not know, with otherwise valid claims.
func foreignToken(t *testing.T, env *servertest.Env, exp time.Time) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "foreign"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(map[string]any{
		"iss": env.URL, "aud": env.URL + "api/v2/", "sub": "x@clients",
		"exp": exp.Unix(), "iat": time.Now().Unix(), "scope": "read:tenant_settings",
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestBearerCheck(t *testing.T) {
	env := servertest.Start(t, storetest.SQLite)
	good := env.ManagementToken(t)
	narrow := env.ManagementToken(t, "read:clients")
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + parts[1] + "x." + parts[2]
	cases := []struct {
		name, header string
		status       int
		message      string
	}{
		{"no header", "", 401, "Missing authentication"},
		{"not bearer", "Basic abc", 400, "Bad HTTP authentication header format"},
		{"empty bearer", "Bearer ", 400, "Bad HTTP authentication header format"},
		{"garbage", "Bearer not-a-jwt", 401, "Invalid token"},
		{"tampered", "Bearer " + tampered, 401, "Invalid token"},
		{"foreign key", "Bearer " + foreignToken(t, env, time.Now().Add(time.Hour)), 401, "Invalid token"},
		{"insufficient scope", "Bearer " + narrow, 403, "Insufficient scope, expected any of: read:tenant_settings"},
		{"good", "Bearer " + good, 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", env.URL+"api/v2/tenants/settings", nil)
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, c.status, body)
			}
			if c.message == "" {
				return
			}
			if body["statusCode"] != float64(c.status) || body["error"] != http.StatusText(c.status) || body["message"] != c.message {
				t.Errorf("body %v", body)
			}
			if c.status == 403 && body["errorCode"] != "insufficient_scope" {
				t.Errorf("errorCode %v", body["errorCode"])
			}
		})
	}
}

func TestBearerCheckExpired(t *testing.T) {
	env := servertest.Start(t, storetest.SQLite)
	status, _, _ := env.Do(t, "GET", "api/v2/tenants/settings", foreignToken(t, env, time.Now().Add(-time.Hour)), nil)
	if status != 401 {
		t.Fatalf("expired foreign token: %d", status)
	}
}

func TestTenantSettings(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			env := servertest.Start(t, backend)
			tok := env.ManagementToken(t)
			status, _, raw := env.Do(t, "PATCH", "api/v2/tenants/settings", tok, map[string]any{"friendly_name": "Contoso", "support_email": "help@contoso.example"})
			if status != 200 {
				t.Fatalf("%d %s", status, raw)
			}
			bad := []struct {
				name    string
				body    any
				status  int
				message string
			}{
				{"unknown property", map[string]any{"friendly_name": "X", "colour": "red"}, 400, "Payload validation error: 'Additional properties not allowed: colour'."},
				{"wrong type", map[string]any{"friendly_name": 7}, 400, "Payload validation error: 'Expected type string but found type number' on property friendly_name."},
				{"unknown default directory", map[string]any{"default_directory": "nope"}, 400, `Payload validation error: 'The connection "nope" does not exist' on property default_directory.`},
				{"not an object", `[1,2]`, 400, "Payload validation error: 'Invalid JSON body'."},
				{"malformed", `{"friendly_name":`, 400, "Payload validation error: 'Invalid JSON body'."},
			}
			for _, c := range bad {
				t.Run(c.name, func(t *testing.T) {
					status, _, raw := env.Do(t, "PATCH", "api/v2/tenants/settings", tok, c.body)
					var body map[string]any
					_ = json.Unmarshal(raw, &body)
					if status != c.status || body["message"] != c.message || body["errorCode"] != "invalid_body" {
						t.Errorf("%d %v", status, body)
					}
				})
			}
			// Nothing above changed anything.
			status, _, raw = env.Do(t, "GET", "api/v2/tenants/settings", tok, nil)
			var got map[string]any
			_ = json.Unmarshal(raw, &got)
			if status != 200 || got["friendly_name"] != "Contoso" || got["support_email"] != "help@contoso.example" || len(got) != 2 {
				t.Fatalf("settings after rejected patches: %d %v", status, got)
			}
			// null removes a setting; fields filters the answer.
			status, _, _ = env.Do(t, "PATCH", "api/v2/tenants/settings", tok, map[string]any{"support_email": nil})
			status2, _, raw := env.Do(t, "GET", "api/v2/tenants/settings?fields=friendly_name&include_fields=true", tok, nil)
			got = nil
			_ = json.Unmarshal(raw, &got)
			if status != 200 || status2 != 200 || len(got) != 1 || got["friendly_name"] != "Contoso" {
				t.Fatalf("after null patch: %d %d %v", status, status2, got)
			}
			// Wrong content type.
			req, _ := http.NewRequest("PATCH", env.URL+"api/v2/tenants/settings", strings.NewReader(`friendly_name=x`))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 415 {
				t.Errorf("form body: %d", resp.StatusCode)
			}
		})
	}
}

// TestBearerCheckDeletedClient: a Management API token stops working when
// the application it was issued to is deleted, rather than for the rest
// of its lifetime, so deleting a leaked machine-to-machine application
// shuts it out at once.
func TestBearerCheckDeletedClient(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			c := a.must(201, "POST", "/api/v2/clients", map[string]any{"name": "leaky job", "app_type": "non_interactive"})
			id, secret := c["client_id"].(string), c["client_secret"].(string)
			a.must(201, "POST", "/api/v2/client-grants", map[string]any{"client_id": id, "audience": a.URL + "api/v2/", "scope": []string{"read:tenant_settings"}})
			resp, err := http.PostForm(a.URL+"oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}, "audience": {a.URL + "api/v2/"}})
			if err != nil {
				t.Fatal(err)
			}
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&tok)
			resp.Body.Close()
			if resp.StatusCode != 200 || tok.AccessToken == "" {
				t.Fatalf("token: %d", resp.StatusCode)
			}
			if status, _, raw := a.Do(t, "GET", "api/v2/tenants/settings", tok.AccessToken, nil); status != 200 {
				t.Fatalf("before the deletion: %d %s", status, raw)
			}
			a.must(204, "DELETE", "/api/v2/clients/"+id, nil)
			status, h, raw := a.Do(t, "GET", "api/v2/tenants/settings", tok.AccessToken, nil)
			var body map[string]any
			_ = json.Unmarshal(raw, &body)
			if status != 401 || body["message"] != "Invalid token" || h.Get("WWW-Authenticate") == "" {
				t.Errorf("after the deletion: %d %s", status, raw)
			}
			if status, _, raw := a.Do(t, "GET", "api/v2/tenants/settings", a.token, nil); status != 200 {
				t.Errorf("another application's token: %d %s", status, raw)
			}
		})
	}
}

// TestBearerCheckFollowsGrant: a Management API token is worth at most
// what its application's client grant allows now. Taking a scope out of
// the grant takes it from the tokens already issued, and deleting the
// grant shuts them out, at once rather than when they expire.
func TestBearerCheckFollowsGrant(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			c := a.must(201, "POST", "/api/v2/clients", map[string]any{"name": "reporting job", "app_type": "non_interactive"})
			id, secret := c["client_id"].(string), c["client_secret"].(string)
			g := a.must(201, "POST", "/api/v2/client-grants", map[string]any{"client_id": id, "audience": a.URL + "api/v2/", "scope": []string{"read:tenant_settings", "read:clients"}})
			status, body := ccToken(t, a.Env, id, secret, a.URL+"api/v2/", "")
			tok, _ := body["access_token"].(string)
			if status != 200 || tok == "" {
				t.Fatalf("token: %d %v", status, body)
			}
			expect := func(step string, settings, clients int) {
				t.Helper()
				for path, want := range map[string]int{"api/v2/tenants/settings": settings, "api/v2/clients": clients} {
					status, h, raw := a.Do(t, "GET", path, tok, nil)
					if status != want {
						t.Errorf("%s: GET %s: %d %s, want %d", step, path, status, raw, want)
					}
					switch status {
					case 401:
						if m := decode(t, raw); m["message"] != "Invalid token" || h.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
							t.Errorf("%s: GET %s: %s", step, path, raw)
						}
					case 403:
						if m := decode(t, raw); m["errorCode"] != "insufficient_scope" {
							t.Errorf("%s: GET %s: %s", step, path, raw)
						}
					}
				}
			}
			expect("granted", 200, 200)
			a.must(200, "PATCH", "/api/v2/client-grants/"+g["id"].(string), map[string]any{"scope": []string{"read:clients"}})
			expect("scope taken out of the grant", 403, 200)
			a.must(204, "DELETE", "/api/v2/client-grants/"+g["id"].(string), nil)
			expect("grant deleted", 401, 401)
			// A new grant gives back no more than the token held and the
			// grant allows.
			a.must(201, "POST", "/api/v2/client-grants", map[string]any{"client_id": id, "audience": a.URL + "api/v2/", "scope": []string{"read:tenant_settings", "read:users"}})
			expect("granted again, in part", 200, 403)
			if status, _, raw := a.Do(t, "GET", "api/v2/users", tok, nil); status != 403 {
				t.Errorf("a scope the token never held: %d %s", status, raw)
			}
		})
	}
}

// TestBearerCheckFollowsGrantTypes: an application whose grant_types no
// longer list client_credentials would get no Management API token from
// the token endpoint now, so the tokens it already has are refused too,
// until the grant type is listed again.
func TestBearerCheckFollowsGrantTypes(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			c := a.must(201, "POST", "/api/v2/clients", map[string]any{"name": "reporting job", "app_type": "non_interactive",
				"grant_types": []string{"client_credentials"}})
			id, secret := c["client_id"].(string), c["client_secret"].(string)
			a.must(201, "POST", "/api/v2/client-grants", map[string]any{"client_id": id, "audience": a.URL + "api/v2/", "scope": []string{"read:tenant_settings"}})
			status, body := ccToken(t, a.Env, id, secret, a.URL+"api/v2/", "")
			tok, _ := body["access_token"].(string)
			if status != 200 || tok == "" {
				t.Fatalf("token: %d %v", status, body)
			}
			for _, step := range []struct {
				what   string
				grants []string
				want   int
			}{
				{"client_credentials listed", []string{"client_credentials"}, 200},
				{"client_credentials no longer listed", []string{"implicit"}, 401},
				{"client_credentials listed again", []string{"client_credentials"}, 200},
			} {
				a.must(200, "PATCH", "/api/v2/clients/"+id, map[string]any{"grant_types": step.grants})
				status, h, raw := a.Do(t, "GET", "api/v2/tenants/settings", tok, nil)
				if status != step.want {
					t.Errorf("%s: %d %s, want %d", step.what, status, raw, step.want)
				}
				if status == 401 && (decode(t, raw)["message"] != "Invalid token" || h.Get("WWW-Authenticate") != `Bearer error="invalid_token"`) {
					t.Errorf("%s: %d %s", step.what, status, raw)
				}
			}
		})
	}
}

// TestBearerCheckAdminMadeAgain: the configured admin application is made
// again, under its client_id, by the next start after its deletion. A
// token issued to the deleted one must not come back with it: deleting
// the application is how a leaked token is shut out.
func TestBearerCheckAdminMadeAgain(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			old := a.token
			if status, _, raw := a.Do(t, "DELETE", "api/v2/clients/"+a.AdminID, old, nil); status != http.StatusNoContent {
				t.Fatalf("delete the admin application: %d %s", status, raw)
			}
			if status, _, raw := a.Do(t, "GET", "api/v2/tenants/settings", old, nil); status != http.StatusUnauthorized {
				t.Fatalf("token of the deleted application: %d %s", status, raw)
			}
			// A token issued within the replicas' clock leeway of the
			// application's making is taken as its own: the old token must
			// be older.
			time.Sleep(tokens.ReplicaSkew + time.Second)
			// A replica starting, as serve does: it makes the application again.
			srv, err := server.New(t.Context(), a.Config, server.NewLogger(io.Discard, "text", "info"), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			srv.Close()
			if status, _, raw := a.Do(t, "GET", "api/v2/tenants/settings", old, nil); status != http.StatusUnauthorized {
				t.Errorf("token of the deleted application, made again: %d %s", status, raw)
			}
			if status, _, raw := a.Do(t, "GET", "api/v2/tenants/settings", a.ManagementToken(t), nil); status != http.StatusOK {
				t.Errorf("token of the application made again: %d %s", status, raw)
			}
		})
	}
}
