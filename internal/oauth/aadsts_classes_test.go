package oauth_test

import (
	"encoding/hex"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestAADSTSClassesOverHTTP drives AADSTS codes Microsoft documents for
// sign-ins (reference-error-codes.md) and the emulator has no user state
// for through the token endpoint, as invalid_grant/400, Entra's default
// for a refused password grant: each gets the answer and log event of
// its class in docs/errors.md, never a server error for what is the
// user's state, nor a wrong password for an outage.
func TestAADSTSClassesOverHTTP(t *testing.T) {
	type want struct {
		status   int
		code     string
		desc     string
		logType  string
		reason   string
		hintPart string
	}
	wrongPassword := want{403, "invalid_grant", "Wrong email or password.", "fu", "invalid_credentials", "does not exist"}
	policy := want{403, "access_denied", "Sign-in was blocked by a Microsoft Entra ID access policy", "fepft", "policy_blocked", ""}
	notAllowed := want{403, "access_denied", "This user is not allowed to sign in to this application.", "fepft", "user_not_allowed", ""}
	unavailable := want{503, "temporarily_unavailable", "The identity provider is temporarily unavailable. Try again later.", "fepft", "unavailable", "retry"}
	misconfigured := want{500, "server_error", "The connection to the identity provider is not configured correctly.", "fepft", "misconfigured", ""}
	with := func(w want, hint string) want { w.hintPart = hint; return w }
	cases := map[int]want{
		// The user is not in the directory, as 50034 says it.
		51004:  wrongPassword,
		50014:  with(wrongPassword, "invitation"),
		50078:  {403, "access_denied", "Multifactor authentication is required", "fepft", "mfa_required", "MFA"},
		50125:  with(policy, "password reset"),
		700020: with(policy, "interaction"),
		50005:  with(policy, "platform"),
		50129:  with(policy, "workplace join"),
		50144:  {403, "password_expired", "The password has expired.", "fepft", "password_expired", "on-premises"},
		50135:  {403, "password_expired", "The password has expired.", "fepft", "password_expired", "risk"},
		50056:  {403, "access_denied", "This account has no password that can be checked", "fepft", "passwordless", "no password"},
		90072:  with(notAllowed, "external user"),
		500208: with(notAllowed, "account type"),
		500212: with(notAllowed, "outbound"),
		500213: with(notAllowed, "inbound"),
		54000:  with(notAllowed, "age"),
		50033:  unavailable,
		90012:  unavailable,
		90090:  unavailable,
		500021: with(misconfigured, "tenant restrictions"),
		50002:  with(misconfigured, "tenant restrictions"),
		90094:  with(misconfigured, "admin consent"),
		90008:  with(misconfigured, "consent"),
		65005:  with(misconfigured, "API permissions"),
		70001:  with(misconfigured, "disabled"),
		90038:  with(misconfigured, "cloud"),
		// Unknown codes fall into the safe class: a server error whose
		// hint sends the administrator to Microsoft's lookup.
		7500529: with(misconfigured, "login.microsoftonline.com/error"),
		81010:   with(misconfigured, "login.microsoftonline.com/error"),
	}
	codes := map[string]int{}
	for code := range cases {
		codes["u"+strconv.Itoa(code)+"@contoso.com"] = code
	}
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{upstream: entraRefusal(codes)})
			password := "canary-" + hex.EncodeToString(randomBytes(12))
			keys := make([]int, 0, len(cases))
			for code := range cases {
				keys = append(keys, code)
			}
			slices.Sort(keys)
			for _, code := range keys {
				w := cases[code]
				user := "u" + strconv.Itoa(code) + "@contoso.com"
				r := e.login(t, "contoso-v2", user, password, "openid")
				if r.status != w.status || r.str("error") != w.code || !strings.HasPrefix(r.str("error_description"), w.desc) || strings.Contains(r.raw, "AADSTS") {
					t.Errorf("AADSTS%d: %d %s, want %d %s %q", code, r.status, r.raw, w.status, w.code, w.desc)
				}
				if w.status == 503 && r.header.Get("Retry-After") == "" {
					t.Errorf("AADSTS%d: 503 without Retry-After", code)
				}
				ev := lastEvent(t, e, "")
				d, _ := ev["details"].(map[string]any)
				hint, _ := d["hint"].(string)
				if ev["type"] != w.logType || ev["user_name"] != user || d["error_code"] != "AADSTS"+strconv.Itoa(code) || d["reason"] != w.reason ||
					d["trace_id"] != "0000aaaa-11bb-cc22-dd33-444444eeeeee" || d["correlation_id"] != "aaaa0000-bb11-2222-33cc-444444dddddd" ||
					!strings.Contains(strings.ToLower(hint), strings.ToLower(w.hintPart)) {
					t.Errorf("AADSTS%d: log event %v, want type %s reason %s hint with %q", code, ev, w.logType, w.reason, w.hintPart)
				}
			}
			_, logs := e.apiRaw(t, "GET", "api/v2/logs?per_page=100", nil)
			if strings.Contains(string(logs), password) || strings.Contains(e.logs.String(), password) {
				t.Error("the password is in the tenant log or the server log")
			}
		})
	}
}

// TestUnknownUserLooksLikeWrongPassword: an unknown user and a wrong
// password get the same status, headers and body, in times of the same
// order, as at Auth0; only the admin's log tells them apart (fu, fp).
func TestUnknownUserLooksLikeWrongPassword(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{})
			answer := func(user string) (tokenResult, time.Duration) {
				start := time.Now()
				r := e.login(t, "contoso-v2", user, "Not-The-Passw0rd!", "openid")
				d := time.Since(start)
				// Per response, whatever the answer.
				r.header.Del("Date")
				r.header.Del("X-Request-Id")
				return r, d
			}
			// Untimed: the first login fetches the tenant's metadata.
			answer("warmup@contoso.com")
			var wrongTime, unknownTime time.Duration
			for i := range 3 {
				wrong, wt := answer("alice@contoso.com")
				if ev := lastEvent(t, e, ""); ev["type"] != "fp" {
					t.Errorf("wrong password: event %v", ev)
				}
				unknown, ut := answer("nobody" + strconv.Itoa(i) + "@contoso.com")
				if ev := lastEvent(t, e, ""); ev["type"] != "fu" {
					t.Errorf("unknown user: event %v", ev)
				}
				if wrong.status != 403 || wrong.status != unknown.status || wrong.raw != unknown.raw {
					t.Errorf("wrong password %d %s, unknown user %d %s", wrong.status, wrong.raw, unknown.status, unknown.raw)
				}
				wh, uh := wrong.header.Clone(), unknown.header.Clone()
				if len(wh) != len(uh) {
					t.Errorf("headers differ: %v and %v", wh, uh)
				}
				for k := range wh {
					if !slices.Equal(wh[k], uh[k]) {
						t.Errorf("header %s: %q and %q", k, wh[k], uh[k])
					}
				}
				wrongTime, unknownTime = wrongTime+wt, unknownTime+ut
			}
			// Both make one Entra call and one log write: a tenfold
			// difference would tell an attacker which it was.
			if wrongTime > 10*unknownTime || unknownTime > 10*wrongTime {
				t.Errorf("wrong password took %v, unknown user %v", wrongTime, unknownTime)
			}
		})
	}
}

// TestMisconfiguredConnectionsOverHTTP: each app, secret, consent, tenant
// and resource mistake the emulator can make Entra answer is a 500 that
// tells the calling app nothing of the directory, and a log event whose
// AADSTS code and hint tell the administrator what to fix.
func TestMisconfiguredConnectionsOverHTTP(t *testing.T) {
	const (
		confidential = "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d"
		unconsented  = "3b4c5d6e-7f8a-4b9c-8d0e-1f2a3b4c5d6e"
	)
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{})
			for _, tc := range []struct {
				name   string
				opts   map[string]any
				aadsts string
				hint   string
			}{
				{"unknown-client", map[string]any{"client_id": "9f9f9f9f-0000-4000-8000-000000000000"}, "AADSTS700016", "client ID is not registered"},
				{"no-secret", map[string]any{"client_id": confidential}, "AADSTS7000218", "Allow public client flows"},
				{"expired-secret", map[string]any{"client_id": confidential, "client_secret": "expired-secret-value"}, "AADSTS7000222", "expired"},
				{"public-with-secret", map[string]any{"client_id": unconsented, "client_secret": "some-secret"}, "AADSTS700025", "public client"},
				{"no-consent", map[string]any{"client_id": unconsented}, "AADSTS65001", "admin consent"},
				{"unknown-tenant", map[string]any{"client_id": nativeAppID, "client_secret": nativeSecret, "tenant_domain": "nowhere.onmicrosoft.com"}, "AADSTS90002", "tenant not found"},
				{"unknown-resource", map[string]any{"client_id": nativeAppID, "client_secret": nativeSecret, "identity_api": "azure-active-directory-v1.0",
					"app_id": "api://00000000-dead-4000-8000-000000000000"}, "AADSTS500011", "App ID URI"},
			} {
				opts := map[string]any{"tenant_domain": "contoso.onmicrosoft.com", "authority_host": e.emuURL, "graph_host": e.emuURL}
				for k, v := range tc.opts {
					opts[k] = v
				}
				e.connection(t, tc.name, opts)
				r := e.login(t, tc.name, "alice@contoso.com", "Alice-Passw0rd!", "openid")
				if r.status != 500 || r.str("error") != "server_error" || !strings.HasPrefix(r.str("error_description"), "The connection to the identity provider is not configured correctly.") ||
					strings.Contains(r.raw, "AADSTS") || strings.Contains(r.raw, "contoso") {
					t.Errorf("%s: %d %s", tc.name, r.status, r.raw)
				}
				ev := lastEvent(t, e, "")
				d, _ := ev["details"].(map[string]any)
				hint, _ := d["hint"].(string)
				if ev["type"] != "fepft" || ev["connection"] != tc.name || d["error_code"] != tc.aadsts || d["reason"] != "misconfigured" ||
					d["trace_id"] == nil || !strings.Contains(hint, tc.hint) {
					t.Errorf("%s: log event %v, want %s with hint %q", tc.name, ev, tc.aadsts, tc.hint)
				}
			}
			_, logs := e.apiRaw(t, "GET", "api/v2/logs?per_page=100", nil)
			for _, secret := range []string{"expired-secret-value", "some-secret", nativeSecret, "Alice-Passw0rd!"} {
				if strings.Contains(string(logs), secret) || strings.Contains(e.logs.String(), secret) {
					t.Errorf("%q is in the tenant log or the server log", secret)
				}
			}
		})
	}
}

// TestUnlistedCodeClassedByErrorString: a code Gatehouse does not list
// but whose error string or suberror names its class is answered by that
// class, and its log event still carries a hint for the administrator.
func TestUnlistedCodeClassedByErrorString(t *testing.T) {
	bodies := map[string]string{
		"consent@contoso.com": `{"error":"invalid_grant","error_description":"AADSTS65999: Consent needed.","error_codes":[65999],"suberror":"consent_required","trace_id":"t1","correlation_id":"c1"}`,
		"expired@contoso.com": `{"error":"user_password_expired","error_description":"AADSTS50999: Expired.","error_codes":[50999],"trace_id":"t2","correlation_id":"c2"}`,
	}
	upstream := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/token") || r.ParseForm() != nil || bodies[r.PostForm.Get("username")] == "" {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, bodies[r.PostForm.Get("username")])
		})
	}
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{upstream: upstream})
			for _, tc := range []struct {
				user, code, reason, hint string
				status                   int
			}{
				{"consent@contoso.com", "server_error", "misconfigured", "admin consent", 500},
				{"expired@contoso.com", "password_expired", "password_expired", "change the password", 403},
			} {
				r := e.login(t, "contoso-v2", tc.user, "Some-Passw0rd!", "openid")
				if r.status != tc.status || r.str("error") != tc.code {
					t.Errorf("%s: %d %s", tc.user, r.status, r.raw)
				}
				d, _ := lastEvent(t, e, "fepft")["details"].(map[string]any)
				if hint, _ := d["hint"].(string); d["reason"] != tc.reason || !strings.Contains(hint, tc.hint) {
					t.Errorf("%s: details %v, want a hint with %q", tc.user, d, tc.hint)
				}
			}
		})
	}
}

// TestNotEntraAnswer: an answer that is not Entra's error shape (a proxy's
// page) is a server error whose hint says so, not a code to look up.
func TestNotEntraAnswer(t *testing.T) {
	upstream := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/token") {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, "<html>Blocked by policy</html>")
		})
	}
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{upstream: upstream})
			r := e.login(t, "contoso-v2", "alice@contoso.com", "Alice-Passw0rd!", "openid")
			if r.status != 500 || r.str("error") != "server_error" {
				t.Errorf("%d %s", r.status, r.raw)
			}
			d, _ := lastEvent(t, e, "fepft")["details"].(map[string]any)
			if hint, _ := d["hint"].(string); !strings.Contains(hint, "HTTP 403") || !strings.Contains(hint, "proxy") {
				t.Errorf("details %v", d)
			}
		})
	}
}
