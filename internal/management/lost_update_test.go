package management_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// racePatches sends, in each of 40 rounds, the PATCHes bodies(i) of path
// at once, then GETs path: lost names what a PATCH set that is not there,
// or is "". A PATCH that read the document, changed its own properties
// and wrote the whole of it back undid another sent at the same time.
func racePatches(t *testing.T, a *api, path string, bodies func(i int) []map[string]any, lost func(i int, got map[string]any) string) {
	t.Helper()
	for i := range 40 {
		var wg sync.WaitGroup
		for _, body := range bodies(i) {
			wg.Go(func() {
				if status, _, v := a.call("PATCH", path, body); status != http.StatusOK {
					t.Errorf("PATCH %s %v: %d %v", path, body, status, v)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		if what := lost(i, a.must(200, "GET", path, nil)); what != "" {
			t.Fatalf("round %d: %s: a PATCH was lost", i, what)
		}
	}
}

// TestConcurrentPatchesOfAResourceServer: an admin turning
// allow_offline_access off while another changes token_lifetime must not
// find refresh tokens allowed again.
func TestConcurrentPatchesOfAResourceServer(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			id := a.must(201, "POST", "/api/v2/resource-servers", map[string]any{"identifier": "urn:race", "token_lifetime_for_web": 60})["id"].(string)
			racePatches(t, a, "/api/v2/resource-servers/"+id,
				func(i int) []map[string]any {
					return []map[string]any{{"allow_offline_access": i%2 == 0}, {"token_lifetime": 3600 + i}}
				},
				func(i int, got map[string]any) string {
					if got["allow_offline_access"] != (i%2 == 0) || got["token_lifetime"] != float64(3600+i) {
						return fmt.Sprintf("allow_offline_access %v, token_lifetime %v", got["allow_offline_access"], got["token_lifetime"])
					}
					return ""
				})
		})
	}
}

// TestConcurrentPatchesOfTenantSettings: two PATCHes of different
// settings sent at once both take effect.
func TestConcurrentPatchesOfTenantSettings(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			racePatches(t, a, "/api/v2/tenants/settings",
				func(i int) []map[string]any {
					return []map[string]any{{"friendly_name": fmt.Sprint("Acme ", i)}, {"support_email": fmt.Sprintf("help%d@acme.example", i)}}
				},
				func(i int, got map[string]any) string {
					if got["friendly_name"] != fmt.Sprint("Acme ", i) || got["support_email"] != fmt.Sprintf("help%d@acme.example", i) {
						return fmt.Sprintf("friendly_name %v, support_email %v", got["friendly_name"], got["support_email"])
					}
					return ""
				})
		})
	}
}

// TestConcurrentPatchesOfAttackProtection: an admin turning brute-force
// protection on while another edits its allowlist must not find it off.
func TestConcurrentPatchesOfAttackProtection(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			for _, path := range []string{"/api/v2/attack-protection/brute-force-protection", "/api/v2/attack-protection/suspicious-ip-throttling"} {
				racePatches(t, a, path,
					func(i int) []map[string]any {
						return []map[string]any{{"enabled": i%2 == 0}, {"allowlist": []string{fmt.Sprintf("10.0.0.%d", i)}}}
					},
					func(i int, got map[string]any) string {
						list, _ := got["allowlist"].([]any)
						if got["enabled"] != (i%2 == 0) || !slices.Equal(list, []any{fmt.Sprintf("10.0.0.%d", i)}) {
							return fmt.Sprintf("%s: enabled %v, allowlist %v", path, got["enabled"], got["allowlist"])
						}
						return ""
					})
			}
		})
	}
}
