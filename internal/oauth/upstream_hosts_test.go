package oauth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/internal/connection/azuread"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestUpstreamHostNotAllowed: a connection's hosts receive its client
// secret and every user's password, so only hosts the operator allows may
// be used. The Management API refuses a relay even with a new client
// secret (the reviewer's exploit), and a connection pointed at the relay
// behind the API's back fails its logins as misconfigured, with the admin
// hint in the log event and in try, and sends the relay nothing.
func TestUpstreamHostNotAllowed(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{})
			var hits atomic.Int64
			relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				http.Error(w, "relay", http.StatusTeapot)
			}))
			t.Cleanup(relay.Close)

			opts := map[string]any{
				"client_id": nativeAppID, "client_secret": nativeSecret, "tenant_domain": "contoso.onmicrosoft.com",
				"authority_host": e.emuURL, "graph_host": e.emuURL, "ext_profile": true,
			}
			id := e.connection(t, "relayed", opts)
			for _, prop := range []string{"authority_host", "graph_host"} {
				moved := map[string]any{}
				for k, v := range opts {
					moved[k] = v
				}
				moved[prop], moved["client_secret"] = relay.URL, "attacker-chosen-secret"
				status, body := e.api(t, "PATCH", "api/v2/connections/"+id, map[string]any{"options": moved})
				msg, _ := body["message"].(string)
				if status != http.StatusBadRequest || body["errorCode"] != "invalid_body" ||
					!strings.HasPrefix(msg, "Payload validation error: '") || !strings.HasSuffix(msg, "' on property options."+prop+".") ||
					!strings.Contains(msg, "GATEHOUSE_UPSTREAM_HOSTS") {
					t.Fatalf("PATCH %s to the relay: %d %v", prop, status, body)
				}
				if status, body := e.api(t, "POST", "api/v2/connections", map[string]any{
					"name": "relayed-" + strings.ReplaceAll(prop, "_", "-"), "strategy": "waad", "options": moved,
				}); status != http.StatusBadRequest || !strings.HasSuffix(body["message"].(string), "on property options."+prop+".") {
					t.Fatalf("POST with %s at the relay: %d %v", prop, status, body)
				}
			}
			if _, got := e.api(t, "GET", "api/v2/connections/"+id, nil); got["options"].(map[string]any)["authority_host"] != e.emuURL {
				t.Fatalf("a refused PATCH changed the connection: %v", got)
			}

			// The database edited directly, as the API would not. Each
			// connection is edited before its first login, so that the
			// token endpoint's cache holds no older row.
			st, err := sqlstore.Open(context.Background(), e.dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			for _, prop := range []string{"authority_host", "graph_host"} {
				name := "edited-" + strings.ReplaceAll(prop, "_", "-")
				id := e.connection(t, name, opts)
				_, err := st.PatchConnection(context.Background(), id, func(c *store.Connection, _ store.ClientLookup) error {
					o := map[string]any{}
					if err := json.Unmarshal(c.Options, &o); err != nil {
						return err
					}
					o[prop] = relay.URL
					c.Options, _ = json.Marshal(o)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				r := e.login(t, name, "alice@contoso.com", "Alice-Passw0rd!", "openid")
				if r.status != http.StatusInternalServerError || r.str("error") != "server_error" {
					t.Fatalf("%s: login %d %s", prop, r.status, r.raw)
				}
				ev := lastEvent(t, e, "fepft")
				d, _ := ev["details"].(map[string]any)
				if hint, _ := d["hint"].(string); d["reason"] != "misconfigured" || !strings.Contains(hint, azuread.UpstreamHostsSetting) {
					t.Fatalf("%s: log event %v", prop, ev)
				}
				status, try := e.api(t, "POST", "api/v2/connections/"+id+"/try", map[string]any{"username": "alice@contoso.com", "password": "Alice-Passw0rd!"})
				d, _ = try["error"].(map[string]any)
				if hint, _ := d["hint"].(string); status != 200 || try["ok"] != false || d["kind"] != "misconfigured" ||
					!strings.Contains(d["message"].(string), "options."+prop) || !strings.Contains(hint, azuread.UpstreamHostsSetting) {
					t.Fatalf("%s: try %d %v", prop, status, try)
				}
			}
			if n := hits.Load(); n != 0 {
				t.Fatalf("the relay received %d requests", n)
			}
		})
	}
}
