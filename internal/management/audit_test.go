package management_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/server/servertest"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestWritesAreAudited: each write leaves sapi or fapi with the caller,
// route and status; reads leave nothing; no body reaches the log.
func TestWritesAreAudited(t *testing.T) {
	env := servertest.Start(t, storetest.SQLite)
	tok := env.ManagementToken(t)
	status, _, raw := env.Do(t, "POST", "api/v2/clients", tok, map[string]any{"name": "audited"})
	var c map[string]any
	if err := json.Unmarshal(raw, &c); status != http.StatusCreated || err != nil {
		t.Fatalf("create: %d %s", status, raw)
	}
	if status, _, _ := env.Do(t, "PATCH", "api/v2/clients/nope", tok, map[string]any{"name": "x"}); status != http.StatusNotFound {
		t.Fatalf("patch unknown: %d", status)
	}
	env.Do(t, "GET", "api/v2/clients", tok, nil)

	events := func(typ string) []map[string]any {
		t.Helper()
		_, _, raw := env.Do(t, "GET", "api/v2/logs?q=type:"+typ, tok, nil)
		if strings.Contains(string(raw), c["client_secret"].(string)) {
			t.Fatal("the tenant log holds a client secret")
		}
		var es []map[string]any
		if err := json.Unmarshal(raw, &es); err != nil {
			t.Fatalf("logs: %s", raw)
		}
		return es
	}
	check := func(e map[string]any, method, path, route string, code float64) {
		t.Helper()
		d, _ := e["details"].(map[string]any)
		req, _ := d["request"].(map[string]any)
		resp, _ := d["response"].(map[string]any)
		if e["client_id"] != env.AdminID || e["ip"] == nil || req["method"] != method || req["path"] != path || req["route"] != route || resp["statusCode"] != code {
			t.Errorf("event %v, want %s %s (%s) answered %v by %s", e, method, path, route, code, env.AdminID)
		}
	}
	ok := events("sapi")
	if len(ok) != 1 {
		t.Fatalf("sapi events: %v, want the one create", ok)
	}
	check(ok[0], "POST", "/api/v2/clients", "/api/v2/clients", 201)
	failed := events("fapi")
	if len(failed) != 1 {
		t.Fatalf("fapi events: %v, want the one failed patch", failed)
	}
	check(failed[0], "PATCH", "/api/v2/clients/nope", "/api/v2/clients/{id}", 404)
}
