package management_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestClientGrantValidation: a grant's strings are checked as Auth0's
// schema checks them (CreateClientGrantRequestContent,
// UpdateClientGrantRequestContent), in its wording, and a refused write
// changes nothing.
func TestClientGrantValidation(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			const aud = "https://orders.example.com/"
			a.must(201, "POST", "/api/v2/resource-servers", map[string]any{"identifier": aud, "scopes": []map[string]string{{"value": "read:orders"}}})
			m2m := a.must(201, "POST", "/api/v2/clients", map[string]any{"name": "batch", "app_type": "non_interactive"})["client_id"].(string)
			g := "/api/v2/client-grants/" + a.must(201, "POST", "/api/v2/client-grants", map[string]any{"client_id": m2m, "audience": aud, "scope": []string{"read:orders"}})["id"].(string)
			other := a.must(201, "POST", "/api/v2/clients", map[string]any{"name": "other", "app_type": "non_interactive"})["client_id"].(string)
			for _, tc := range []struct {
				name, method, path, body, message string
			}{
				{"client_id empty", "POST", "/api/v2/client-grants", fmt.Sprintf(`{"client_id":"","audience":%q,"scope":[]}`, aud),
					"Payload validation error: 'String is too short (0 chars), minimum 1' on property client_id."},
				{"audience empty", "POST", "/api/v2/client-grants", fmt.Sprintf(`{"client_id":%q,"audience":"","scope":[]}`, other),
					"Payload validation error: 'String is too short (0 chars), minimum 1' on property audience."},
				{"scope item empty", "POST", "/api/v2/client-grants", fmt.Sprintf(`{"client_id":%q,"audience":%q,"scope":["read:orders",""]}`, other, aud),
					"Payload validation error: 'String is too short (0 chars), minimum 1' on property scope[1]."},
				{"scope item too long", "PATCH", g, fmt.Sprintf(`{"scope":[%q]}`, strings.Repeat("s", 281)),
					"Payload validation error: 'String is too long (281 chars), maximum 280' on property scope[0]."},
				{"patch with nothing", "PATCH", g, `{}`,
					"Payload validation error: 'Too few properties defined (0), minimum 1'."},
				{"patch of immutable properties", "PATCH", g, fmt.Sprintf(`{"scope":[],"client_id":%q,"audience":"urn:x"}`, other),
					"Payload validation error: 'Additional properties not allowed: audience,client_id'."},
			} {
				t.Run(tc.name, func(t *testing.T) {
					_, _, before := a.Do(t, "GET", "/api/v2/client-grants", a.token, nil)
					status, _, v := a.call(tc.method, tc.path, tc.body)
					errorIs(t, status, v, http.StatusBadRequest, "invalid_body", tc.message)
					if _, _, after := a.Do(t, "GET", "/api/v2/client-grants", a.token, nil); string(after) != string(before) {
						t.Errorf("a refused write changed the grants:\n%s\n%s", before, after)
					}
				})
			}
		})
	}
}

// TestClientGrantCheckpointPaging: GET /api/v2/client-grants pages by
// checkpoint (from, take) as Auth0 does, the way node-auth0 v5 and later
// list grants: {"client_grants":[...],"next":"..."} until next is absent.
func TestClientGrantCheckpointPaging(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			const aud = "https://orders.example.com/"
			a.must(201, "POST", "/api/v2/resource-servers", map[string]any{"identifier": aud, "scopes": []map[string]string{{"value": "read:orders"}}})
			want := map[string]bool{}
			for i := range 5 {
				c := a.must(201, "POST", "/api/v2/clients", map[string]any{"name": fmt.Sprintf("batch-%d", i), "app_type": "non_interactive"})["client_id"].(string)
				want[a.must(201, "POST", "/api/v2/client-grants", map[string]any{"client_id": c, "audience": aud, "scope": []string{"read:orders"}})["id"].(string)] = true
			}
			seen := map[string]bool{}
			path, pages := "/api/v2/client-grants?take=2&audience="+aud, 0
			for {
				page := a.must(200, "GET", path, nil)
				items, ok := page["client_grants"].([]any)
				if !ok || len(items) > 2 {
					t.Fatalf("page %d: %v", pages, page)
				}
				for _, it := range items {
					id := it.(map[string]any)["id"].(string)
					if seen[id] {
						t.Errorf("grant %s listed twice", id)
					}
					seen[id] = true
				}
				pages++
				next, ok := page["next"].(string)
				if !ok {
					break
				}
				path = "/api/v2/client-grants?take=2&audience=" + aud + "&from=" + next
			}
			if pages != 3 || len(seen) != len(want) {
				t.Errorf("%d pages, %d grants, want 3 pages of the %d grants", pages, len(seen), len(want))
			}
			status, _, v := a.call("GET", "/api/v2/client-grants?take=101", nil)
			errorIs(t, status, v, http.StatusBadRequest, "invalid_query_string", "on property take.")
		})
	}
}
