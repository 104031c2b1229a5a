package management_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// inputCase is one refused request: what it sends, where the state it
// must leave alone is read, and the property the error must name.
type inputCase struct {
	name, method, path, read, body, prop string
}

// refuse sends each case and checks Auth0's 400 invalid_body naming the
// property, that the state read before and after is the same, and that
// each refusal left a fapi event (a handler that panicked would leave a
// 500 in OAuth's format and no event).
func (a *api) refuse(t *testing.T, cases []inputCase) {
	t.Helper()
	fapi := func() int {
		t.Helper()
		var events []any
		status, _, raw := a.Do(t, "GET", "/api/v2/logs?q=type:fapi&per_page=100", a.token, nil)
		if err := json.Unmarshal(raw, &events); status != http.StatusOK || err != nil {
			t.Fatalf("logs: %d %s", status, raw)
		}
		return len(events)
	}
	before := fapi()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, want := a.Do(t, "GET", tc.read, a.token, nil)
			status, _, got := a.call(tc.method, tc.path, tc.body)
			errorIs(t, status, got, http.StatusBadRequest, "invalid_body", "on property "+tc.prop+".")
			if _, _, after := a.Do(t, "GET", tc.read, a.token, nil); string(after) != string(want) {
				t.Errorf("a refused %s %s changed %s:\n%s\n%s", tc.method, tc.path, tc.read, want, after)
			}
		})
	}
	if got := fapi() - before; got != len(cases) {
		t.Errorf("%d fapi events for %d refused writes", got, len(cases))
	}
}

// TestWrongTypedFields: a property of the wrong JSON type, null included,
// is refused with Auth0's payload validation error on every endpoint,
// never a panic.
func TestWrongTypedFields(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			appID := seedApp(a)
			conn := a.must(201, "POST", "/api/v2/connections", seedConnection(appID))["id"].(string)
			const aud = "https://orders.example.com/"
			rs := a.must(201, "POST", "/api/v2/resource-servers", map[string]any{"identifier": aud, "scopes": []map[string]string{{"value": "read:orders"}}})["id"].(string)
			m2m := a.must(201, "POST", "/api/v2/clients", map[string]any{"name": "batch", "app_type": "non_interactive"})["client_id"].(string)
			grant := a.must(201, "POST", "/api/v2/client-grants", map[string]any{"client_id": m2m, "audience": aud, "scope": []string{"read:orders"}})["id"].(string)
			a.must(204, "DELETE", "/api/v2/client-grants/"+grant, nil)
			grant = a.must(201, "POST", "/api/v2/client-grants", map[string]any{"client_id": m2m, "audience": aud, "scope": []string{"read:orders"}})["id"].(string)

			newGrant := func(scope string) string {
				return fmt.Sprintf(`{"client_id":%q,"audience":%q,"scope":%s}`, appID, aud, scope)
			}
			const grants = "/api/v2/client-grants"
			g := grants + "/" + grant
			c := "/api/v2/clients/" + m2m
			cn := "/api/v2/connections/" + conn
			r := "/api/v2/resource-servers/" + rs
			a.refuse(t, []inputCase{
				{"grant scope string", "POST", grants, grants, newGrant(`"read:orders"`), "scope"},
				{"grant scope null", "POST", grants, grants, newGrant(`null`), "scope"},
				{"grant scope object", "POST", grants, grants, newGrant(`{"read:orders":true}`), "scope"},
				{"grant scope item", "POST", grants, grants, newGrant(`["read:orders",7]`), "scope[1]"},
				{"grant client_id number", "POST", grants, grants, fmt.Sprintf(`{"client_id":1,"audience":%q,"scope":[]}`, aud), "client_id"},
				{"patch grant scope null", "PATCH", g, g, `{"scope":null}`, "scope"},
				{"patch grant scope string", "PATCH", g, g, `{"scope":"read:orders"}`, "scope"},
				{"patch grant scope item null", "PATCH", g, g, `{"scope":[null]}`, "scope[0]"},
				{"client callbacks string", "POST", "/api/v2/clients", "/api/v2/clients", `{"name":"x","callbacks":"https://a.example.com/cb"}`, "callbacks"},
				{"client name null", "POST", "/api/v2/clients", "/api/v2/clients", `{"name":null}`, "name"},
				{"patch client grant_types null", "PATCH", c, c, `{"grant_types":null}`, "grant_types"},
				{"patch client web_origins item", "PATCH", c, c, `{"web_origins":[{}]}`, "web_origins[0]"},
				{"patch client allowed_origins item", "PATCH", c, c, `{"allowed_origins":["https://a.example.com",1]}`, "allowed_origins[1]"},
				{"patch client jwt lifetime string", "PATCH", c, c, `{"jwt_configuration":{"lifetime_in_seconds":"60"}}`, "jwt_configuration.lifetime_in_seconds"},
				{"patch client metadata number", "PATCH", c, c, `{"client_metadata":{"k":1}}`, "client_metadata.k"},
				{"connection enabled_clients string", "PATCH", cn, cn, fmt.Sprintf(`{"enabled_clients":%q}`, appID), "enabled_clients"},
				{"connection realms null", "PATCH", cn, cn, `{"realms":null}`, "realms"},
				{"connection realms item", "PATCH", cn, cn, `{"realms":[1]}`, "realms[0]"},
				{"connection options array", "PATCH", cn, cn, `{"options":[]}`, "options"},
				{"connection clients status string", "PATCH", cn + "/clients", cn, fmt.Sprintf(`[{"client_id":%q,"status":"false"}]`, appID), "[0].status"},
				{"resource server scopes object", "PATCH", r, r, `{"scopes":{"value":"x"}}`, "scopes"},
				{"resource server scope description", "PATCH", r, r, `{"scopes":[{"value":"read:orders","description":1}]}`, "scopes[0].description"},
				{"resource server name null", "PATCH", r, r, `{"name":null}`, "name"},
				{"tenant friendly_name number", "PATCH", "/api/v2/tenants/settings", "/api/v2/tenants/settings", `{"friendly_name":1}`, "friendly_name"},
			})
		})
	}
}

// TestNulAndInvalidUTF8: a path, query or body string that is not UTF-8
// text or holds a NUL names nothing and can be stored nowhere. It is
// refused as bad input on both backends alike and changes nothing,
// rather than reaching PostgreSQL, which cannot compare or store it and
// failed the request with a 500.
func TestNulAndInvalidUTF8(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			id := a.must(201, "POST", "/api/v2/clients", map[string]any{"name": "m2m", "app_type": "non_interactive"})["client_id"].(string)
			key, _ := rsa.GenerateKey(rand.Reader, 2048)
			der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
			pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
			for _, tc := range []struct {
				method, path string
				body         any
				status       int
				code         string
			}{
				{"GET", "/api/v2/clients/a%00b", nil, 404, ""},
				{"GET", "/api/v2/clients/a%FFb/credentials", nil, 404, ""},
				{"GET", "/api/v2/clients/" + id + "/credentials/cred_%00", nil, 404, ""},
				{"DELETE", "/api/v2/clients/" + id + "/credentials/cred_%FF", nil, 404, ""},
				{"GET", "/api/v2/client-grants?client_id=a%00b", nil, 400, "invalid_query_string"},
				{"POST", "/api/v2/clients/" + id + "/credentials", map[string]any{"credential_type": "public_key", "pem": pub, "name": "a\x00b"}, 400, "invalid_body"},
				{"PATCH", "/api/v2/clients/" + id, map[string]any{"client_authentication_methods": map[string]any{"private_key_jwt": map[string]any{"credentials": []map[string]string{{"id": "cred_\x00"}}}}}, 400, "invalid_body"},
				{"POST", "/api/v2/client-grants", map[string]any{"client_id": "a\x00", "audience": a.URL + "api/v2/", "scope": []string{}}, 400, "invalid_body"},
				{"PATCH", "/api/v2/clients/" + id, map[string]any{"client_metadata": map[string]any{"k\x00": "v"}}, 400, "invalid_body"},
			} {
				status, _, body := a.call(tc.method, tc.path, tc.body)
				m, _ := body.(map[string]any)
				if status != tc.status || (tc.code != "" && m["errorCode"] != tc.code) {
					t.Errorf("%s %s: %d %v", tc.method, tc.path, status, body)
				}
			}
			if status, _, body := a.call("GET", "/api/v2/clients/"+id+"/credentials", nil); status != 200 || len(body.([]any)) != 0 {
				t.Errorf("credentials after the refusals: %d %v", status, body)
			}
			if status, _, body := a.call("GET", "/api/v2/clients/"+id, nil); status != 200 || body.(map[string]any)["client_authentication_methods"] != nil {
				t.Errorf("client after the refusals: %d %v", status, body)
			}
			if strings.Contains(a.Logs.String(), `"level":"ERROR"`) {
				t.Error("bad input was logged as a server error")
			}
		})
	}
}

// TestRepeatedProperties: an object that gives a property twice, at any
// depth and however the name is spelled, is refused and changes nothing:
// decoding would keep the last silently, while a filter in front may
// have judged the body by the first. The same name in different objects
// is no repeat.
func TestRepeatedProperties(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			id := a.must(201, "POST", "/api/v2/clients", map[string]any{"name": "m2m", "app_type": "non_interactive"})["client_id"].(string)
			_, _, clientsBefore := a.Do(t, "GET", "/api/v2/clients", a.token, nil)
			_, _, settingsBefore := a.Do(t, "GET", "/api/v2/tenants/settings", a.token, nil)
			for _, tc := range []struct{ method, path, body, prop string }{
				{"POST", "/api/v2/clients", `{"name":"first","app_type":"non_interactive","name":"second"}`, "name"},
				{"POST", "/api/v2/clients", `{"name":"first","n\u0061me":"second"}`, "name"},
				{"PATCH", "/api/v2/clients/" + id, `{"client_metadata":{"k":"a","k":"b"}}`, "k"},
				{"PATCH", "/api/v2/clients/" + id, `{"callbacks":[{"x":1,"x":2}]}`, "x"},
				{"PATCH", "/api/v2/tenants/settings", `{"friendly_name":"a","friendly_name":"b"}`, "friendly_name"},
			} {
				status, _, got := a.call(tc.method, tc.path, tc.body)
				errorIs(t, status, got, http.StatusBadRequest, "invalid_body", "Property "+tc.prop+" given more than once")
			}
			if _, _, after := a.Do(t, "GET", "/api/v2/clients", a.token, nil); string(after) != string(clientsBefore) {
				t.Errorf("refused writes changed the clients:\n%s\n%s", clientsBefore, after)
			}
			if _, _, after := a.Do(t, "GET", "/api/v2/tenants/settings", a.token, nil); string(after) != string(settingsBefore) {
				t.Errorf("refused writes changed the settings:\n%s\n%s", settingsBefore, after)
			}
			a.must(201, "POST", "/api/v2/clients", `{"name":"x","app_type":"non_interactive","client_metadata":{"name":"y"}}`)
			a.must(201, "POST", "/api/v2/resource-servers", `{"identifier":"https://api.example.com/","scopes":[{"value":"read"},{"value":"write"}]}`)
		})
	}
}
