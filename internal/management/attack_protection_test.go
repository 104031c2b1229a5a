package management_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/server/servertest"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestAttackProtectionSettings: Auth0's defaults, partial PATCH, and
// every rejection is a 4xx that changes nothing.
func TestAttackProtectionSettings(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			env := servertest.Start(t, b)
			tok := env.ManagementToken(t)
			const bf = "api/v2/attack-protection/brute-force-protection"
			const sit = "api/v2/attack-protection/suspicious-ip-throttling"
			get := func(path string) string {
				t.Helper()
				status, _, body := env.Do(t, "GET", path, tok, nil)
				if status != http.StatusOK {
					t.Fatalf("GET %s: %d %s", path, status, body)
				}
				return strings.TrimSpace(string(body))
			}
			if got, want := get(bf), `{"enabled":true,"shields":["block","user_notification"],"allowlist":[],"mode":"count_per_identifier_and_ip","max_attempts":10}`; got != want {
				t.Fatalf("brute-force defaults:\n got %s\nwant %s", got, want)
			}
			if got, want := get(sit), `{"enabled":true,"shields":["admin_notification","block"],"allowlist":[],"stage":{"pre-login":{"max_attempts":100,"rate":864000},"pre-user-registration":{"max_attempts":50,"rate":1200}}}`; got != want {
				t.Fatalf("suspicious IP defaults:\n got %s\nwant %s", got, want)
			}
			status, _, body := env.Do(t, "PATCH", bf, tok, map[string]any{"max_attempts": 3, "allowlist": []string{"10.0.0.0/8", "2001:db8::1"}})
			want := `{"enabled":true,"shields":["block","user_notification"],"allowlist":["10.0.0.0/8","2001:db8::1"],"mode":"count_per_identifier_and_ip","max_attempts":3}`
			if status != http.StatusOK || strings.TrimSpace(string(body)) != want || get(bf) != want {
				t.Fatalf("PATCH: %d %s", status, body)
			}
			for _, tc := range []struct {
				name, path string
				body       any
				status     int
			}{
				{"max_attempts 0", bf, `{"max_attempts":0}`, 400},
				{"max_attempts 101", bf, `{"max_attempts":101}`, 400},
				{"max_attempts as string", bf, `{"max_attempts":"5"}`, 400},
				{"fractional max_attempts", bf, `{"max_attempts":2.5}`, 400},
				{"unknown mode", bf, `{"mode":"count_per_ip"}`, 400},
				{"unknown shield", bf, `{"shields":["admin_notification"]}`, 400},
				{"bad allowlist entry", bf, `{"allowlist":["not-an-ip"]}`, 400},
				{"unknown property", bf, `{"enabled":true,"foo":1}`, 400},
				{"not an object", bf, `[1]`, 400},
				{"null", bf, `null`, 400},
				{"malformed JSON", bf, `{"enabled":`, 400},
				{"unknown stage", sit, `{"stage":{"pre-everything":{"max_attempts":1,"rate":1}}}`, 400},
				{"zero rate", sit, `{"stage":{"pre-login":{"rate":0}}}`, 400},
				{"too many allowlist entries", sit, `{"allowlist":[` + strings.Repeat(`"10.0.0.1",`, 100) + `"10.0.0.2"]}`, 400},
			} {
				t.Run(tc.name, func(t *testing.T) {
					before := get(tc.path)
					status, _, body := env.Do(t, "PATCH", tc.path, tok, tc.body)
					if status != tc.status || !strings.Contains(string(body), `"errorCode":"invalid_body"`) {
						t.Fatalf("PATCH %s: %d %s, want %d invalid_body", tc.body, status, body, tc.status)
					}
					if after := get(tc.path); after != before {
						t.Fatalf("a refused PATCH changed the settings:\n%s\n%s", before, after)
					}
				})
			}
			// Content type and scope are enforced.
			req := `{"enabled":false}`
			if status, _, _ := env.Do(t, "PATCH", bf, env.ManagementToken(t, "read:attack_protection"), req); status != http.StatusForbidden {
				t.Fatalf("PATCH with read scope only: %d", status)
			}
			if status, _, _ := env.Do(t, "GET", bf, env.ManagementToken(t, "read:users"), nil); status != http.StatusForbidden {
				t.Fatalf("GET without read:attack_protection: %d", status)
			}
		})
	}
}

func TestUserBlocksErrors(t *testing.T) {
	env := servertest.Start(t, storetest.SQLite)
	tok := env.ManagementToken(t)
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "api/v2/user-blocks", 400},
		{"DELETE", "api/v2/user-blocks", 400},
		{"GET", "api/v2/user-blocks?identifier=" + strings.Repeat("a", 600), 400},
		{"GET", "api/v2/user-blocks/waad%7Cnobody", 404},
		{"DELETE", "api/v2/user-blocks/waad%7Cnobody", 404},
		{"GET", "api/v2/user-blocks?identifier=nobody@example.com", 200},
		{"DELETE", "api/v2/user-blocks?identifier=nobody@example.com", 204},
	} {
		if status, _, body := env.Do(t, tc.method, tc.path, tok, nil); status != tc.status {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, status, body, tc.status)
		}
	}
}
