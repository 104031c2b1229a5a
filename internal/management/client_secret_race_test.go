package management_test

import (
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestRotateSecretRacingPatch: a secret rotation and a PATCH of other
// properties sent at once both take effect, whichever the store sees
// first. The PATCH must not write back the secret it read (the rotated,
// perhaps leaked, one would work again and the new one would not), and
// the rotation must not write back the properties it read.
func TestRotateSecretRacingPatch(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			c := a.must(201, "POST", "/api/v2/clients", map[string]any{"name": "m2m", "app_type": "non_interactive"})
			id, old := c["client_id"].(string), c["client_secret"].(string)
			// 403 (no client grant for the Management API) is an
			// authenticated client; 401 is a refused secret.
			token := func(secret string) int {
				resp, err := http.PostForm(a.URL+"oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}, "audience": {a.URL + "api/v2/"}})
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			for i := range 40 {
				var (
					wg    sync.WaitGroup
					fresh string
				)
				desc := fmt.Sprintf("round %d", i)
				wg.Go(func() {
					status, _, v := a.call("POST", "/api/v2/clients/"+id+"/rotate-secret", nil)
					if m, _ := v.(map[string]any); status == http.StatusOK {
						fresh, _ = m["client_secret"].(string)
					} else {
						t.Errorf("rotate-secret: %d %v", status, v)
					}
				})
				wg.Go(func() {
					if status, _, v := a.call("PATCH", "/api/v2/clients/"+id, map[string]any{"description": desc}); status != http.StatusOK {
						t.Errorf("PATCH: %d %v", status, v)
					}
				})
				wg.Wait()
				if t.Failed() {
					return
				}
				if s := token(old); s != http.StatusUnauthorized {
					t.Fatalf("round %d: the rotated secret answers %d, want 401", i, s)
				}
				if s := token(fresh); s != http.StatusForbidden {
					t.Fatalf("round %d: the secret rotate-secret answered is refused (%d)", i, s)
				}
				if got := a.must(200, "GET", "/api/v2/clients/"+id, nil)["description"]; got != desc {
					t.Fatalf("round %d: description %v, want %q", i, got, desc)
				}
				old = fresh
			}
		})
	}
}

// TestConcurrentPatchesOfAClient: two PATCHes of different properties
// sent at once both take effect. Each reads the client, changes its
// properties and writes it back; without a check that the client is still
// the one it read, the later write silently undid the earlier, e.g. a
// switch to private_key_jwt undone by a PATCH of the callbacks, and the
// retired secret accepted again.
func TestConcurrentPatchesOfAClient(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			id := a.must(201, "POST", "/api/v2/clients", map[string]any{"name": "m2m", "app_type": "non_interactive"})["client_id"].(string)
			for i := range 40 {
				var wg sync.WaitGroup
				desc, round := fmt.Sprintf("round %d", i), fmt.Sprint(i)
				for _, body := range []map[string]any{{"description": desc}, {"client_metadata": map[string]any{"round": round}}} {
					wg.Go(func() {
						if status, _, v := a.call("PATCH", "/api/v2/clients/"+id, body); status != http.StatusOK {
							t.Errorf("PATCH %v: %d %v", body, status, v)
						}
					})
				}
				wg.Wait()
				if t.Failed() {
					return
				}
				c := a.must(200, "GET", "/api/v2/clients/"+id, nil)
				if md, _ := c["client_metadata"].(map[string]any); c["description"] != desc || md["round"] != round {
					t.Fatalf("round %d: description %v, client_metadata %v: a PATCH was lost", i, c["description"], c["client_metadata"])
				}
			}
		})
	}
}
