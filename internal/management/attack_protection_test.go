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
	// Auth0's scopes: read:users lists, update:users lifts; neither does
	// the other's work.
	for _, tc := range []struct {
		method, path, scope string
	}{
		{"GET", "api/v2/user-blocks?identifier=nobody@example.com", "update:users"},
		{"GET", "api/v2/user-blocks/waad%7Cnobody", "update:users"},
		{"DELETE", "api/v2/user-blocks?identifier=nobody@example.com", "read:users"},
		{"DELETE", "api/v2/user-blocks/waad%7Cnobody", "read:users"},
	} {
		status, _, body := env.Do(t, tc.method, tc.path, env.ManagementToken(t, tc.scope), nil)
		if status != http.StatusForbidden || !strings.Contains(string(body), `"errorCode":"insufficient_scope"`) {
			t.Errorf("%s %s with %s only: %d %s, want 403 insufficient_scope", tc.method, tc.path, tc.scope, status, body)
		}
	}
}

// TestAttackProtectionStrictInput: null and keys in another case were
// once answered 200 and ignored (Go's struct decoding matches keys
// without case); each is now Auth0's 400 naming the property.
func TestAttackProtectionStrictInput(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			a := start(t, b)
			const bf = "/api/v2/attack-protection/brute-force-protection"
			const sit = "/api/v2/attack-protection/suspicious-ip-throttling"
			for _, tc := range []struct {
				name, path, body, message string
			}{
				{"enabled null", bf, `{"enabled":null}`, "'Expected type boolean but found type null' on property enabled."},
				{"max_attempts null", bf, `{"max_attempts":null}`, "'Expected type integer but found type null' on property max_attempts."},
				{"mode null", bf, `{"mode":null}`, "'Expected type string but found type null' on property mode."},
				{"allowlist null", bf, `{"allowlist":null}`, "'Expected type array but found type null' on property allowlist."},
				{"shields null", sit, `{"shields":null}`, "'Expected type array but found type null' on property shields."},
				{"allowlist item", bf, `{"allowlist":["10.0.0.1",7]}`, "'Expected type string but found type number' on property allowlist[1]."},
				// Auth0 documents allowlist items as IPv4 or IPv6 addresses or
				// CIDR ranges: none of these could ever match a client.
				{"allowlist item with spaces", bf, `{"allowlist":["10.0.0.1"," 10.0.0.2"]}`, `'" 10.0.0.2" has white space around it; send each address or range as an entry of its own, without spaces' on property allowlist[1].`},
				{"allowlist items in one string", sit, `{"allowlist":["10.0.0.1, 10.0.0.2"]}`, `'"10.0.0.1, 10.0.0.2" is not an IP address or CIDR range' on property allowlist[0].`},
				{"allowlist item with a zone", bf, `{"allowlist":["fe80::1%eth0"]}`, `'"fe80::1%eth0" has an IPv6 zone; write the address or range without %zone' on property allowlist[0].`},
				{"allowlist range with a zone", sit, `{"allowlist":["fe80::%eth0/64"]}`, `'"fe80::%eth0/64" has an IPv6 zone; write the address or range without %zone' on property allowlist[0].`},
				{"allowlist item not an address", sit, `{"allowlist":["10.0.0.256"]}`, `'"10.0.0.256" is not an IP address or CIDR range' on property allowlist[0].`},
				{"fractional", bf, `{"max_attempts":2.5}`, "'Expected type integer but found type number' on property max_attempts."},
				{"key in capitals", bf, `{"MAX_ATTEMPTS":7}`, "'Additional properties not allowed: MAX_ATTEMPTS'."},
				{"stage null", sit, `{"stage":null}`, "'Expected type object but found type null' on property stage."},
				{"stage item null", sit, `{"stage":{"pre-login":null}}`, "'Expected type object but found type null' on property stage.pre-login."},
				{"stage key in capitals", sit, `{"stage":{"pre-login":{"MAX_ATTEMPTS":7}}}`, "'Additional properties not allowed: MAX_ATTEMPTS' on property stage.pre-login."},
				{"stage name in capitals", sit, `{"stage":{"PRE-LOGIN":{"max_attempts":7}}}`, "'Additional properties not allowed: PRE-LOGIN' on property stage."},
				{"stage rate null", sit, `{"stage":{"pre-login":{"rate":null}}}`, "'Expected type integer but found type null' on property stage.pre-login.rate."},
				{"stage rate string", sit, `{"stage":{"pre-login":{"rate":"1"}}}`, "'Expected type integer but found type string' on property stage.pre-login.rate."},
			} {
				t.Run(tc.name, func(t *testing.T) {
					_, _, before := a.Do(t, "GET", tc.path, a.token, nil)
					status, _, got := a.call("PATCH", tc.path, tc.body)
					errorIs(t, status, got, http.StatusBadRequest, "invalid_body", "Payload validation error: "+tc.message)
					if _, _, after := a.Do(t, "GET", tc.path, a.token, nil); string(after) != string(before) {
						t.Errorf("a refused PATCH changed the settings:\n%s\n%s", before, after)
					}
				})
			}
			// Several bad stages: always the first by name.
			for range 20 {
				status, _, got := a.call("PATCH", sit, `{"stage":{"pre-user-registration":{"rate":0},"pre-login":{"rate":0},"pre-custom-token-exchange":{"max_attempts":0}}}`)
				errorIs(t, status, got, http.StatusBadRequest, "invalid_body",
					"Payload validation error: 'stage.pre-custom-token-exchange.max_attempts must be between 1 and 100000'.")
			}
			// The exact keys still merge into the stored values.
			got := a.must(200, "PATCH", sit, map[string]any{"stage": map[string]any{"pre-login": map[string]any{"max_attempts": 7}}})
			stage, _ := got["stage"].(map[string]any)
			if pl, _ := stage["pre-login"].(map[string]any); pl["max_attempts"] != float64(7) || pl["rate"] != float64(864000) {
				t.Errorf("PATCH stage.pre-login.max_attempts: %v", got)
			}
		})
	}
}
