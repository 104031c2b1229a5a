package management_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestConcurrentRotations: rotations sent at once through the real handler
// each answer 201 with a key the store holds, and leave exactly one current
// and one next key, both published, the current one first and signing the
// tokens issued afterwards. Revocations racing them, of the previous key
// and of the key current when they were sent, never revoke a key that is
// current or next at the end, nor leave a revoked key published.
func TestConcurrentRotations(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			if status, _, raw := a.Do(t, "POST", "api/v2/keys/signing/rotate", a.token, nil); status != http.StatusCreated {
				t.Fatalf("rotate: %d %s", status, raw)
			}
			// The token in use carries the key the rotations make previous
			// and the revocations below revoke.
			token := a.ManagementToken(t)
			previous := kidOf(t, a.token)
			wasCurrent := kidOf(t, token)
			const n = 6
			var wg sync.WaitGroup
			kids := make([]string, n)
			for i := range n {
				wg.Go(func() {
					switch i {
					case 2:
						if status, _, raw := a.Do(t, "PUT", "api/v2/keys/signing/"+previous+"/revoke", token, nil); status != http.StatusOK {
							t.Errorf("revoke the previous key: %d %s", status, raw)
						}
						return
					case 5:
						// Current when sent, previous once a rotation won:
						// refused or revoked, whichever the store saw.
						status, _, raw := a.Do(t, "PUT", "api/v2/keys/signing/"+wasCurrent+"/revoke", token, nil)
						if status != http.StatusOK && status != http.StatusBadRequest {
							t.Errorf("revoke the key current when sent: %d %s", status, raw)
						}
						return
					}
					status, _, raw := a.Do(t, "POST", "api/v2/keys/signing/rotate", token, nil)
					if status != http.StatusCreated {
						t.Errorf("rotate: %d %s", status, raw)
						return
					}
					var k struct{ Kid string }
					_ = json.Unmarshal(raw, &k)
					kids[i] = k.Kid
				})
			}
			wg.Wait()
			token = a.ManagementToken(t)
			_, _, raw := a.Do(t, "GET", "api/v2/keys/signing", token, nil)
			var keys []map[string]any
			if err := json.Unmarshal(raw, &keys); err != nil {
				t.Fatalf("list: %v %s", err, raw)
			}
			var current, next []string
			stored := map[string]bool{}
			for _, k := range keys {
				kid := k["kid"].(string)
				stored[kid] = true
				if k["current"] == true {
					current = append(current, kid)
				}
				if k["next"] == true {
					next = append(next, kid)
				}
				if (k["current"] == true || k["next"] == true) && k["revoked"] == true {
					t.Errorf("key %s is revoked and still current or next: %v", kid, k)
				}
				if kid == wasCurrent && k["revoked"] == true && slices.Contains(jwksKids(t, a.Env), kid) {
					t.Errorf("the revoked key %s is still published", kid)
				}
				if kid == previous && k["revoked"] != true {
					t.Errorf("the revoked key %s is not revoked: %v", kid, k)
				}
			}
			if len(current) != 1 || len(next) != 1 {
				t.Fatalf("current %v, next %v: want one of each", current, next)
			}
			for i, kid := range kids {
				if i != 2 && i != 5 && !stored[kid] {
					t.Errorf("rotation %d answered key %q, not in the store", i, kid)
				}
			}
			published := jwksKids(t, a.Env)
			if len(published) == 0 || published[0] != current[0] || !slices.Contains(published, next[0]) || slices.Contains(published, previous) {
				t.Errorf("JWKS %v: want current %s first, next %s, and not the revoked %s", published, current[0], next[0], previous)
			}
			if kidOf(t, token) != current[0] {
				t.Errorf("a new token is signed by %s, not the current key %s", kidOf(t, token), current[0])
			}
		})
	}
}
