package oauth_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestTryCountsAttempts: `try` posts a password to Entra like a login, so
// attack protection counts it like one. Without that, any holder of
// update:connections could test passwords without limit and lock users
// out at Entra. Wrong passwords through `try` and through the token
// endpoint share one count; a blocked try reaches no one upstream and
// says how to lift the block; a right password resets the count.
func TestTryCountsAttempts(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{})
			if status, body := e.api(t, "PATCH", "api/v2/attack-protection/brute-force-protection", map[string]any{"max_attempts": 3}); status != 200 {
				t.Fatalf("brute-force settings: %d %v", status, body)
			}
			_, conns := e.apiRaw(t, "GET", "api/v2/connections?name=contoso-v2", nil)
			var list []map[string]any
			if err := json.Unmarshal(conns, &list); err != nil || len(list) != 1 {
				t.Fatalf("connections: %s", conns)
			}
			try := func(user, password string) map[string]any {
				t.Helper()
				status, body := e.api(t, "POST", "api/v2/connections/"+list[0]["id"].(string)+"/try", map[string]any{"username": user, "password": password})
				if status != 200 {
					t.Fatalf("try: %d %v", status, body)
				}
				return body
			}
			tokenCalls := func() int64 { return e.emu.Counters()["token:password"] }

			// Right password first: it leaves nothing counted.
			if res := try("alice@contoso.com", "Alice-Passw0rd!"); res["ok"] != true {
				t.Fatalf("right password: %v", res)
			}
			// Two wrong passwords through try, one through the token endpoint:
			// the third failure in all reaches the limit of 3.
			for i := range 2 {
				if res := try("alice@contoso.com", "Wrong-Passw0rd!"); res["ok"] != false || errorOf(res)["code"] != "AADSTS50126" {
					t.Fatalf("wrong password %d: %v", i+1, res)
				}
			}
			if r := e.login(t, "contoso-v2", "alice@contoso.com", "Wrong-Passw0rd!", "openid"); r.status != 403 {
				t.Fatalf("wrong password at the token endpoint: %d %s", r.status, r.raw)
			}
			before := tokenCalls()
			res := try("Alice@Contoso.com", "Alice-Passw0rd!")
			d := errorOf(res)
			hint, _ := d["hint"].(string)
			if res["ok"] != false || d["kind"] != "too_many_attempts" || !strings.Contains(hint, "identifier="+url.QueryEscape("Alice@Contoso.com")) || res["user_id"] != nil {
				t.Errorf("blocked try: %v", res)
			}
			if n := tokenCalls() - before; n != 0 {
				t.Errorf("a blocked try sent the password to Entra %d times", n)
			}
			if r := e.login(t, "contoso-v2", "alice@contoso.com", "Alice-Passw0rd!", "openid"); r.status != 429 {
				t.Errorf("login after the try block: %d %s", r.status, r.raw)
			}

			// Unblocked, a right password through try resets the count:
			// two more failures do not block.
			if status, _ := e.apiRaw(t, "DELETE", "api/v2/user-blocks?identifier=alice%40contoso.com", nil); status != 204 {
				t.Fatalf("unblock: %d", status)
			}
			if res := try("alice@contoso.com", "Wrong-Passw0rd!"); errorOf(res)["code"] != "AADSTS50126" {
				t.Fatalf("wrong password after unblock: %v", res)
			}
			if res := try("alice@contoso.com", "Alice-Passw0rd!"); res["ok"] != true {
				t.Fatalf("right password after unblock: %v", res)
			}
			for i := range 2 {
				if res := try("alice@contoso.com", "Wrong-Passw0rd!"); errorOf(res)["code"] != "AADSTS50126" {
					t.Errorf("wrong password %d after a success: %v", i+1, res)
				}
			}
		})
	}
}

func errorOf(res map[string]any) map[string]any {
	d, _ := res["error"].(map[string]any)
	return d
}
