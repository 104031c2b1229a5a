package management_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestResourceServerValidation: an API's properties are checked as Auth0's
// schema checks them (CreateResourceServerRequestContent,
// ResourceServerScope: no other properties, lengths in characters), with
// its wording, and a refused write changes nothing.
func TestResourceServerValidation(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			const aud = "https://orders.example.com/"
			rs := "/api/v2/resource-servers/" + a.must(201, "POST", "/api/v2/resource-servers", map[string]any{
				"identifier": aud, "scopes": []map[string]string{{"value": "read:orders"}},
			})["id"].(string)
			scope := func(item any) map[string]any { return map[string]any{"scopes": []any{item}} }
			long := func(n int) string { return strings.Repeat("x", n) }
			for _, tc := range []struct {
				name, method, path string
				body               map[string]any
				message            string
			}{
				{"scope with another property", "PATCH", rs, scope(map[string]any{"value": "write:orders", "admin": true}),
					"Payload validation error: 'Additional properties not allowed: admin' on property scopes[0]."},
				{"scope without value", "PATCH", rs, scope(map[string]any{"description": "Write"}),
					"Payload validation error: 'Missing required property: value' on property scopes[0]."},
				{"scope value empty", "PATCH", rs, scope(map[string]any{"value": ""}),
					"Payload validation error: 'String is too short (0 chars), minimum 1' on property scopes[0].value."},
				{"scope value number", "PATCH", rs, scope(map[string]any{"value": 1}),
					"Payload validation error: 'Expected type string but found type number' on property scopes[0].value."},
				{"scope value too long", "PATCH", rs, scope(map[string]any{"value": long(281)}),
					"Payload validation error: 'String is too long (281 chars), maximum 280' on property scopes[0].value."},
				{"scope value with a no-break space", "PATCH", rs, scope(map[string]any{"value": "read:orders\u00a0admin"}),
					"on property scopes[0].value."},
				{"scope value with a carriage return", "PATCH", rs, scope(map[string]any{"value": "read:orders\radmin"}),
					"on property scopes[0].value."},
				{"scope description too long", "PATCH", rs, scope(map[string]any{"value": "w", "description": long(501)}),
					"Payload validation error: 'String is too long (501 chars), maximum 500' on property scopes[0].description."},
				{"name too long", "PATCH", rs, map[string]any{"name": long(201)},
					"Payload validation error: 'String is too long (201 chars), maximum 200' on property name."},
				{"name with <", "PATCH", rs, map[string]any{"name": "a<b"},
					"Payload validation error: 'String does not match pattern ^[^<>]+$' on property name."},
				{"name empty", "PATCH", rs, map[string]any{"name": ""},
					"Payload validation error: 'String does not match pattern ^[^<>]+$' on property name."},
				{"token_lifetime above the maximum", "PATCH", rs, map[string]any{"token_lifetime": 2592001},
					"Payload validation error: 'Value 2592001 is greater than maximum 2592000' on property token_lifetime."},
				{"token_lifetime_for_web negative", "PATCH", rs, map[string]any{"token_lifetime_for_web": -1},
					"Payload validation error: 'Value -1 is less than minimum 0' on property token_lifetime_for_web."},
				{"enforce_policies true", "PATCH", rs, map[string]any{"enforce_policies": true},
					"Payload validation error: 'Gatehouse has no role-based access control: enforce_policies must be false' on property enforce_policies."},
				{"enforce_policies not a boolean", "PATCH", rs, map[string]any{"enforce_policies": "false"},
					"Payload validation error: 'Expected type boolean but found type string' on property enforce_policies."},
				{"token_dialect unknown", "PATCH", rs, map[string]any{"token_dialect": "jwt"},
					`Payload validation error: 'No enum match for: "jwt" (expected one of access_token, access_token_authz, rfc9068_profile, rfc9068_profile_authz)' on property token_dialect.`},
				{"token_dialect Gatehouse does not issue", "PATCH", rs, map[string]any{"token_dialect": "rfc9068_profile"},
					`Payload validation error: 'Gatehouse issues the access_token dialect only, got "rfc9068_profile"' on property token_dialect.`},
				{"identifier empty", "POST", "/api/v2/resource-servers", map[string]any{"identifier": ""},
					"Payload validation error: 'String is too short (0 chars), minimum 1' on property identifier."},
				{"identifier too long", "POST", "/api/v2/resource-servers", map[string]any{"identifier": "urn:" + long(597)},
					"Payload validation error: 'String is too long (601 chars), maximum 600' on property identifier."},
			} {
				t.Run(tc.name, func(t *testing.T) { refusedChangesNothing(t, a, tc.method, tc.path, tc.body, tc.message) })
			}

			// What Auth0's deploy tools send on every write: the defaults of
			// enforce_policies and token_dialect are accepted and answered.
			got := a.must(200, "PATCH", rs, map[string]any{"enforce_policies": false, "token_dialect": "access_token", "token_lifetime": 600, "token_lifetime_for_web": 600})
			if got["enforce_policies"] != false || got["token_dialect"] != "access_token" || got["token_lifetime"] != float64(600) {
				t.Errorf("API with the default dialect: %v", got)
			}

			// The limits count characters, not bytes.
			name := strings.Repeat("é", 200)
			value := "read:" + strings.Repeat("é", 275)
			desc := strings.Repeat("ü", 500)
			got = a.must(200, "PATCH", rs, map[string]any{"name": name, "scopes": []map[string]string{{"value": value, "description": desc}}})
			scopes, _ := got["scopes"].([]any)
			if got["name"] != name || len(scopes) != 1 || scopes[0].(map[string]any)["value"] != value || scopes[0].(map[string]any)["description"] != desc {
				t.Errorf("API at the limits: %v", got)
			}
		})
	}
}

// TestResourceServerWebLifetime: token_lifetime_for_web cannot be greater
// than token_lifetime (Auth0's rule); a write that would make it so is a
// 400 on the property the request sent and changes nothing. A new API that
// does not name token_lifetime_for_web gets the default, 7200, lowered to
// its token_lifetime.
func TestResourceServerWebLifetime(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			created := a.must(201, "POST", "/api/v2/resource-servers", map[string]any{"identifier": "urn:orders", "token_lifetime": 3600, "token_lifetime_for_web": 1800})
			rs := "/api/v2/resource-servers/" + created["id"].(string)
			const msg = "Payload validation error: 'token_lifetime_for_web (%d) cannot be greater than token_lifetime (%d)%s' on property %s."
			const hint = "; send a lower token_lifetime_for_web with it"
			for _, tc := range []struct {
				name, method, path string
				body               map[string]any
				message            string
			}{
				{"create, both", "POST", "/api/v2/resource-servers", map[string]any{"identifier": "urn:new", "token_lifetime": 600, "token_lifetime_for_web": 601},
					fmt.Sprintf(msg, 601, 600, "", "token_lifetime_for_web")},
				{"create, web above the default lifetime", "POST", "/api/v2/resource-servers", map[string]any{"identifier": "urn:new", "token_lifetime_for_web": 86401},
					fmt.Sprintf(msg, 86401, 86400, "", "token_lifetime_for_web")},
				{"update, web", "PATCH", rs, map[string]any{"token_lifetime_for_web": 3601},
					fmt.Sprintf(msg, 3601, 3600, "", "token_lifetime_for_web")},
				{"update, lifetime below the stored web", "PATCH", rs, map[string]any{"token_lifetime": 1799},
					fmt.Sprintf(msg, 1800, 1799, hint, "token_lifetime")},
				{"update, both", "PATCH", rs, map[string]any{"token_lifetime": 60, "token_lifetime_for_web": 120},
					fmt.Sprintf(msg, 120, 60, "", "token_lifetime_for_web")},
			} {
				t.Run(tc.name, func(t *testing.T) { refusedChangesNothing(t, a, tc.method, tc.path, tc.body, tc.message) })
			}
			for _, tc := range []struct {
				name, method, path string
				body               map[string]any
				lifetime, web      float64
			}{
				{"equal", "PATCH", rs, map[string]any{"token_lifetime_for_web": 3600}, 3600, 3600},
				{"both lowered together", "PATCH", rs, map[string]any{"token_lifetime": 60, "token_lifetime_for_web": 30}, 60, 30},
				{"other properties only", "PATCH", rs, map[string]any{"name": "Orders"}, 60, 30},
				{"create, default web", "POST", "/api/v2/resource-servers", map[string]any{"identifier": "urn:default"}, 86400, 7200},
				{"create, default web lowered", "POST", "/api/v2/resource-servers", map[string]any{"identifier": "urn:short", "token_lifetime": 600}, 600, 600},
			} {
				want := 200
				if tc.method == "POST" {
					want = 201
				}
				got := a.must(want, tc.method, tc.path, tc.body)
				if got["token_lifetime"] != tc.lifetime || got["token_lifetime_for_web"] != tc.web {
					t.Errorf("%s: token_lifetime %v, token_lifetime_for_web %v; want %v, %v", tc.name, got["token_lifetime"], got["token_lifetime_for_web"], tc.lifetime, tc.web)
				}
			}
		})
	}
}

// TestResourceServerIdentifiersFilter: GET /api/v2/resource-servers
// narrowed with Auth0's identifiers parameter (repeated, at most 10)
// answers only the APIs it names, paged over them.
func TestResourceServerIdentifiersFilter(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			for _, id := range []string{"urn:a", "urn:b", "urn:c"} {
				a.must(201, "POST", "/api/v2/resource-servers", map[string]any{"identifier": id})
				// Creation times are kept to the millisecond.
				time.Sleep(2 * time.Millisecond)
			}
			identifiersOf := func(items []any) []string {
				var out []string
				for _, it := range items {
					out = append(out, it.(map[string]any)["identifier"].(string))
				}
				return out
			}
			for _, tc := range []struct {
				query string
				want  []string
			}{
				{"identifiers=urn:c&identifiers=urn:a", []string{"urn:a", "urn:c"}},
				{"identifiers=urn:b&identifiers=urn:nope&identifiers=urn:b", []string{"urn:b"}},
				{"identifiers=urn:nope", nil},
				{"identifiers=urn:a&identifiers=urn:b&identifiers=urn:c&per_page=2&page=1", []string{"urn:c"}},
			} {
				if got := identifiersOf(a.list("/api/v2/resource-servers?" + tc.query)); strings.Join(got, " ") != strings.Join(tc.want, " ") {
					t.Errorf("%s: %v, want %v", tc.query, got, tc.want)
				}
			}
			page := a.must(200, "GET", "/api/v2/resource-servers?include_totals=true&per_page=1&identifiers=urn:a&identifiers=urn:b", nil)
			if page["total"] != 2.0 || len(page["resource_servers"].([]any)) != 1 {
				t.Errorf("with totals: %v", page)
			}
			status, _, v := a.call("GET", "/api/v2/resource-servers?identifiers=1&identifiers=2&identifiers=3&identifiers=4&identifiers=5&identifiers=6&identifiers=7&identifiers=8&identifiers=9&identifiers=10&identifiers=11", nil)
			errorIs(t, status, v, http.StatusBadRequest, "invalid_query_string", "Array is too long (11), maximum 10")
		})
	}
}

// refusedChangesNothing sends a write the API must refuse with 400
// invalid_body and message, and checks that the APIs are as before.
func refusedChangesNothing(t *testing.T, a *api, method, path string, body any, message string) {
	t.Helper()
	_, _, before := a.Do(t, "GET", "/api/v2/resource-servers", a.token, nil)
	status, _, v := a.call(method, path, body)
	errorIs(t, status, v, http.StatusBadRequest, "invalid_body", message)
	if _, _, after := a.Do(t, "GET", "/api/v2/resource-servers", a.token, nil); string(after) != string(before) {
		t.Errorf("a refused write changed the APIs:\n%s\n%s", before, after)
	}
}
