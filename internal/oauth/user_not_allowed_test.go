package oauth_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// entraRefusal answers the token requests of some usernames with an
// Entra error body (reference §3.1) carrying an AADSTS code the emulator
// has no user state for.
func entraRefusal(codes map[string]int) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/token") || r.ParseForm() != nil || codes[r.PostForm.Get("username")] == 0 {
				next.ServeHTTP(w, r)
				return
			}
			code := strconv.Itoa(codes[r.PostForm.Get("username")])
			ts := "2026-01-05 10:00:00Z"
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]any{
				"error":             "invalid_grant",
				"error_description": "AADSTS" + code + ": Refused.\r\nTrace ID: 0000aaaa-11bb-cc22-dd33-444444eeeeee\r\nCorrelation ID: aaaa0000-bb11-2222-33cc-444444dddddd\r\nTimestamp: " + ts,
				"error_codes":       []int{codes[r.PostForm.Get("username")]},
				"timestamp":         ts,
				"trace_id":          "0000aaaa-11bb-cc22-dd33-444444eeeeee",
				"correlation_id":    "aaaa0000-bb11-2222-33cc-444444dddddd",
				"error_uri":         "https://login.microsoftonline.com/error?code=" + code,
			})
		})
	}
}

// TestDirectoryRefusesUser: Entra refusing the user for the app (50105,
// 50020, 80012) is a 403 that says this user may not sign in here, and
// an on-premises pass-through agent failure (8001x) is a 503 with
// Retry-After; neither is a wrong password nor a server error. Neither
// counts as a failed attempt for attack protection, and the log event
// and `try` carry the admin hint.
func TestDirectoryRefusesUser(t *testing.T) {
	codes := map[string]int{
		"unassigned@contoso.com": 50105, "outsider@fabrikam.com": 50020, "nightshift@contoso.com": 80012,
		"pta-down@contoso.com": 80001, "pta-skew@contoso.com": 80013,
	}
	e := newEnv(t, storetest.SQLite, envOptions{upstream: entraRefusal(codes)})
	if status, body := e.api(t, "PATCH", "api/v2/attack-protection/brute-force-protection", map[string]any{"max_attempts": 2}); status != 200 {
		t.Fatalf("brute-force settings: %d %v", status, body)
	}
	for _, tc := range []struct {
		user   string
		status int
		code   string
		desc   string
		hint   string
		reason string
	}{
		{"unassigned@contoso.com", 403, "access_denied", "This user is not allowed to sign in to this application.", "not assigned to the application", "user_not_allowed"},
		{"outsider@fabrikam.com", 403, "access_denied", "This user is not allowed to sign in to this application.", "not in this tenant", "user_not_allowed"},
		{"nightshift@contoso.com", 403, "access_denied", "This user is not allowed to sign in to this application.", "logon hours", "user_not_allowed"},
		{"pta-down@contoso.com", 503, "temporarily_unavailable", "The identity provider is temporarily unavailable. Try again later.", "pass-through authentication agent", "unavailable"},
		{"pta-skew@contoso.com", 503, "temporarily_unavailable", "The identity provider is temporarily unavailable. Try again later.", "time synchronization", "unavailable"},
	} {
		aadsts := "AADSTS" + strconv.Itoa(codes[tc.user])
		// More attempts than max_attempts: none of them is counted.
		for i := range 3 {
			r := e.login(t, "contoso-v2", tc.user, "Some-Passw0rd!", "openid")
			if r.status != tc.status || r.str("error") != tc.code || r.str("error_description") != tc.desc || strings.Contains(r.raw, "AADSTS") {
				t.Errorf("%s, attempt %d: %d %s", tc.user, i+1, r.status, r.raw)
			}
			if tc.status == 503 && r.header.Get("Retry-After") == "" {
				t.Errorf("%s: 503 without Retry-After", tc.user)
			}
		}
		ev := lastEvent(t, e, "")
		d, _ := ev["details"].(map[string]any)
		if hint, _ := d["hint"].(string); ev["type"] != "fepft" || ev["user_name"] != tc.user || d["error_code"] != aadsts || d["reason"] != tc.reason || !strings.Contains(hint, tc.hint) {
			t.Errorf("%s: log event %v", tc.user, ev)
		}
	}

	// The limit is live: two wrong passwords block the third attempt.
	for i := range 3 {
		r := e.login(t, "contoso-v2", "alice@contoso.com", "Wrong-Passw0rd!", "openid")
		if want := []int{403, 403, 429}[i]; r.status != want {
			t.Errorf("wrong password, attempt %d: %d, want %d", i+1, r.status, want)
		}
	}

	_, conns := e.apiRaw(t, "GET", "api/v2/connections?name=contoso-v2", nil)
	var list []map[string]any
	_ = json.Unmarshal(conns, &list)
	status, try := e.api(t, "POST", "api/v2/connections/"+list[0]["id"].(string)+"/try", map[string]any{"username": "unassigned@contoso.com", "password": "Some-Passw0rd!"})
	if d, _ := try["error"].(map[string]any); status != 200 || try["ok"] != false || d["code"] != "AADSTS50105" || !strings.Contains(d["hint"].(string), "Assignment required") {
		t.Errorf("try: %d %v", status, try)
	}
}

// TestFailingEntraIsNoVerdict: a 5xx from Entra whose body carries a
// credential code (a front end replaying a cached body, a half-failed
// sign-in) is an outage: 503 with Retry-After, never "Wrong email or
// password", and never a failed attempt for attack protection.
func TestFailingEntraIsNoVerdict(t *testing.T) {
	failing := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/token") {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Header().Set("Retry-After", "4")
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": "invalid_grant", "error_codes": []int{50126},
				"error_description": "AADSTS50126: Error validating credentials due to invalid username or password."})
		})
	}
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{upstream: failing})
			if status, body := e.api(t, "PATCH", "api/v2/attack-protection/brute-force-protection", map[string]any{"max_attempts": 2}); status != 200 {
				t.Fatalf("brute-force settings: %d %v", status, body)
			}
			for i := range 3 {
				r := e.login(t, "contoso-v2", "alice@contoso.com", "Alice-Passw0rd!", "openid")
				if r.status != http.StatusServiceUnavailable || r.str("error") != "temporarily_unavailable" || r.header.Get("Retry-After") != "4" {
					t.Errorf("attempt %d: %d %s %v", i+1, r.status, r.raw, r.header)
				}
			}
			if d, _ := lastEvent(t, e, "fepft")["details"].(map[string]any); d["reason"] != "unavailable" {
				t.Errorf("log event details %v", d)
			}
		})
	}
}
