package oauth_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/oauth"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestNoCloudPasswordAnswers: a passwordless user gets its own answer
// (AADSTS50056); a user of a federated domain, refused with 50126 since
// Entra cannot tell a wrong password from one it may not check, keeps
// invalid_grant with a description true of both, counts as a failed
// attempt as a wrong password does, and its fp event records the realm.
// An unknown user of the federated domain gets the same description, so
// the answer tells nothing about which accounts exist.
func TestNoCloudPasswordAnswers(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{})
			if status, body := e.api(t, "PATCH", "api/v2/attack-protection/brute-force-protection", map[string]any{"max_attempts": 2}); status != 200 {
				t.Fatalf("brute-force settings: %d %v", status, body)
			}
			canary := "canary-Passw0rd-" + t.Name()
			for _, tc := range []struct {
				user, password  string
				status          int
				code, desc, typ string
				aadsts, realm   string
			}{
				{"heidi@contoso.com", canary, 403, "access_denied",
					"This account has no password that can be checked (passwordless or federated sign-in). Use interactive sign-in.", "fepft", "AADSTS50056", ""},
				{"grace@corp.contoso.com", "Grace-Passw0rd!", 403, "invalid_grant", oauth.FederatedDescription, "fp", "AADSTS50126", "Federated"},
				{"nobody@corp.contoso.com", canary, 403, "invalid_grant", oauth.FederatedDescription, "fu", "AADSTS50034", "Federated"},
				{"alice@contoso.com", canary, 403, "invalid_grant", "Wrong email or password.", "fp", "AADSTS50126", "Managed"},
			} {
				r := e.login(t, "contoso-v2", tc.user, tc.password, "openid")
				if r.status != tc.status || r.str("error") != tc.code || r.str("error_description") != tc.desc || strings.Contains(r.raw, "AADSTS") {
					t.Errorf("%s: %d %s", tc.user, r.status, r.raw)
				}
				ev := lastEvent(t, e, "")
				d, _ := ev["details"].(map[string]any)
				if realm, _ := d["realm"].(string); ev["type"] != tc.typ || ev["user_name"] != tc.user || d["error_code"] != tc.aadsts || realm != tc.realm {
					t.Errorf("%s: log event %v", tc.user, ev)
				}
				if hint, _ := d["hint"].(string); tc.aadsts == "AADSTS50126" && strings.Contains(hint, "AllowCloudPasswordValidation=true") != (tc.realm == "Federated") {
					t.Errorf("%s: hint %q", tc.user, hint)
				}
			}
			// One lookup per domain, whatever the number of refusals.
			if n := e.emu.Count("userrealm"); n != 2 {
				t.Errorf("%d user realm lookups for 2 domains", n)
			}

			// try shows the lookup and what to do; it is grace's second
			// failed attempt, as try counts them.
			_, conns := e.apiRaw(t, "GET", "api/v2/connections?name=contoso-v2", nil)
			var list []map[string]any
			_ = json.Unmarshal(conns, &list)
			status, try := e.api(t, "POST", "api/v2/connections/"+list[0]["id"].(string)+"/try",
				map[string]any{"username": "grace@corp.contoso.com", "password": "Grace-Passw0rd!"})
			d, _ := try["error"].(map[string]any)
			steps, _ := try["steps"].([]any)
			var last map[string]any
			if len(steps) > 0 {
				last, _ = steps[len(steps)-1].(map[string]any)
			}
			if status != 200 || d["code"] != "AADSTS50126" || !strings.Contains(d["hint"].(string), "AllowCloudPasswordValidation=true") ||
				last["name"] != "user realm" || last["detail"] != "account type Federated" {
				t.Errorf("try: %d %v", status, try)
			}

			// Federated refusals are failed attempts: the limit of 2 applies.
			if r := e.login(t, "contoso-v2", "grace@corp.contoso.com", "Grace-Passw0rd!", "openid"); r.status != 429 {
				t.Errorf("federated user past the limit: %d %s", r.status, r.raw)
			}
		})
	}
}
