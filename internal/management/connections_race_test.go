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

// TestConnectionConcurrentCreates: creations of one name at once make one
// connection; the others answer Auth0's 409.
func TestConnectionConcurrentCreates(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			const n = 8
			statuses := make([]int, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					status, _, v := a.call("POST", "/api/v2/connections", map[string]any{"name": "contoso", "strategy": "waad",
						"options": map[string]any{"client_id": "abc", "tenant_domain": "contoso.onmicrosoft.com"}})
					if status != 201 {
						errorIs(t, status, v, 409, "connection_conflict", "A connection with the same name already exists")
					}
					statuses[i] = status
				})
			}
			wg.Wait()
			if created := slices.Index(statuses, 201); created < 0 || slices.Index(statuses[created+1:], 201) >= 0 {
				t.Errorf("statuses %v, want one 201", statuses)
			}
			if got := a.list("/api/v2/connections?name=contoso"); len(got) != 1 {
				t.Errorf("%d connections named contoso", len(got))
			}
		})
	}
}

// TestConnectionConcurrentEnablements: clients enabled one by one at once,
// while the connection's other properties are patched, all stay enabled.
func TestConnectionConcurrentEnablements(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			conn := a.must(201, "POST", "/api/v2/connections", map[string]any{"name": "contoso", "strategy": "waad",
				"options": map[string]any{"client_id": "abc", "tenant_domain": "contoso.onmicrosoft.com"}})
			path := "/api/v2/connections/" + conn["id"].(string)
			var ids []string
			for i := range 8 {
				ids = append(ids, a.must(201, "POST", "/api/v2/clients", map[string]any{"name": fmt.Sprint("app", i), "app_type": "native"})["client_id"].(string))
			}
			var wg sync.WaitGroup
			for i, id := range ids {
				wg.Go(func() {
					a.must(204, "PATCH", path+"/clients", []map[string]any{{"client_id": id, "status": true}})
				})
				wg.Go(func() {
					a.must(200, "PATCH", path, map[string]any{"metadata": map[string]any{"n": fmt.Sprint(i)}})
				})
			}
			wg.Wait()
			slices.Sort(ids)
			if got := a.must(200, "GET", path, nil); !jsonEqual(got["enabled_clients"], ids) {
				t.Errorf("enabled_clients %v, want %v", got["enabled_clients"], ids)
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
