package management_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestConnectionConcurrentPatches: a PATCH of one property, sent while
// another administrator changes the options and rotates the secret, does
// not write back the options and secret it read before them. Otherwise
// the rotation (or a narrowed allowed_tenants) would answer 200 and be
// undone at once.
func TestConnectionConcurrentPatches(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			clientID := seedApp(a)
			created := a.must(201, "POST", "/api/v2/connections", seedConnection(clientID))
			id := created["id"].(string)
			for i := range 100 {
				icon := fmt.Sprintf("https://contoso.example.com/logo%d.png", i)
				secret := a.secretEnc(id)
				var wg sync.WaitGroup
				wg.Go(func() {
					a.must(200, "PATCH", "/api/v2/connections/"+id, map[string]any{"options": withSecret(
						changed(created["options"], map[string]any{"icon_url": icon}), fmt.Sprint(seedSecret, i))})
				})
				wg.Go(func() {
					a.must(200, "PATCH", "/api/v2/connections/"+id, map[string]any{"metadata": map[string]any{"round": fmt.Sprint(i)}})
				})
				wg.Wait()
				got := a.must(200, "GET", "/api/v2/connections/"+id, nil)
				if got["options"].(map[string]any)["icon_url"] != icon || !jsonEqual(got["metadata"], map[string]any{"round": fmt.Sprint(i)}) {
					t.Fatalf("round %d: a PATCH was undone: %v", i, got)
				}
				if slices.Equal(a.secretEnc(id), secret) {
					t.Fatalf("round %d: the rotated secret was undone", i)
				}
			}
		})
	}
}

// TestConnectionPatchesBeyondThePool: more PATCHes at once than the
// store has connections to PostgreSQL all complete. Each holds one in its
// transaction while it checks the enabled clients; reading them through
// another would leave every PATCH waiting for a connection the others
// hold, or for a lock held by one of them.
func TestConnectionPatchesBeyondThePool(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			clientID := seedApp(a)
			id := a.must(201, "POST", "/api/v2/connections", seedConnection(clientID))["id"].(string)
			// Bounded, so that stuck PATCHes are given up and their
			// requests end rather than hang the test.
			hc := &http.Client{Timeout: 20 * time.Second}
			var wg sync.WaitGroup
			for i := range 30 {
				wg.Go(func() {
					body := strings.NewReader(fmt.Sprintf(`{"metadata":{"n":"%d"}}`, i))
					req, _ := http.NewRequest("PATCH", a.URL+"api/v2/connections/"+id, body)
					req.Header.Set("Authorization", "Bearer "+a.token)
					req.Header.Set("Content-Type", "application/json")
					resp, err := hc.Do(req)
					if err != nil {
						t.Errorf("PATCH %d: %v", i, err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Errorf("PATCH %d: %s", i, resp.Status)
					}
				})
			}
			wg.Wait()
		})
	}
}
