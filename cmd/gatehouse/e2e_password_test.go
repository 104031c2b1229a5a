package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// startEmulator runs `gatehouse entra-emulator` on the example directory.
func startEmulator(t *testing.T) string {
	t.Helper()
	addr := freeAddr(t)
	// Graph answers at most 3 objects a page, whatever $top asks for, so
	// the groups of a login come over several pages.
	_, out := launch(t, "", nil, "entra-emulator", "--addr", addr, "--directory", "../../examples/entra-directory.yaml",
		"--graph-max-page-size", "3", "--log-level", "warn")
	base := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(base + "/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
	}
	t.Fatalf("emulator did not start:\n%s", out.String())
	return ""
}

// emulatorCounters reads (GET) or resets (DELETE) the emulator's request
// counters.
func emulatorCounters(t *testing.T, emu, method string) map[string]int {
	t.Helper()
	req, _ := http.NewRequest(method, emu+"/_emulator/counters", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]int
	if method == "GET" {
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// TestPasswordLoginEndToEnd is issue 5's "done when": real `gatehouse serve`
// and `gatehouse entra-emulator` processes, a native app and waad
// connections created through the Management API, v1 and v2 logins, the
// id_token verified by go-oidc through /.well-known/jwks.json, every error
// class with its tenant log event, the client, grant and connection checks
// before Entra, `gatehouse try`, and both sync modes.
func TestPasswordLoginEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binaries")
	}
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			emu := startEmulator(t)
			adminID, adminSecret := "admin-"+randomHex(8), "canary-admin-secret-"+randomHex(16)
			p := start(t, freeAddr(t),
				"GATEHOUSE_DATABASE="+storetest.DSN(t, b),
				"GATEHOUSE_ADMIN_CLIENT_ID="+adminID, "GATEHOUSE_ADMIN_CLIENT_SECRET="+adminSecret,
				"GATEHOUSE_SECRET_KEY="+hex.EncodeToString([]byte(randomHex(16))),
				"GATEHOUSE_LOG_FORMAT=json",
				// The operator allows the emulator; nothing else may be
				// an upstream.
				"GATEHOUSE_UPSTREAM_HOSTS="+emu)
			issuer := p.base
			resp, err := http.PostForm(issuer+"oauth/token", url.Values{"grant_type": {"client_credentials"},
				"client_id": {adminID}, "client_secret": {adminSecret}, "audience": {issuer + "api/v2/"}})
			if err != nil {
				t.Fatal(err)
			}
			var mt struct {
				AccessToken string `json:"access_token"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&mt)
			resp.Body.Close()
			mgmt := mt.AccessToken

			status, app := postJSON(t, "POST", issuer+"api/v2/clients", mgmt, map[string]any{
				"name": "Native", "app_type": "native", "token_endpoint_auth_method": "none",
				"grant_types": []string{"http://auth0.com/oauth/grant-type/password-realm", "password"},
			})
			if status != 201 {
				t.Fatalf("create client: %d %v", status, app)
			}
			clientID := app["client_id"].(string)
			common := map[string]any{"client_id": "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b", "client_secret": "native-secret-value",
				"tenant_domain": "contoso.onmicrosoft.com", "authority_host": emu, "graph_host": emu}
			connections := map[string]map[string]any{} // name → id and options
			for name, extra := range map[string]map[string]any{
				"v2": {"ext_profile": true, "ext_groups": true, "ext_nested_groups": true},
				"v1": {"identity_api": "azure-active-directory-v1.0", "app_id": "api://8c3d9e2f-1a4b-4c5d-8e6f-7a8b9c0d1e2f",
					"ext_groups": true, "set_user_root_attributes": "on_first_login"},
			} {
				opts := map[string]any{}
				for k, v := range common {
					opts[k] = v
				}
				for k, v := range extra {
					opts[k] = v
				}
				status, c := postJSON(t, "POST", issuer+"api/v2/connections", mgmt, map[string]any{
					"name": name, "strategy": "waad", "options": opts, "enabled_clients": []string{clientID}})
				if status != 201 {
					t.Fatalf("create connection %s: %d %v", name, status, c)
				}
				connections[name] = map[string]any{"id": c["id"], "options": opts}
			}
			token := func(form url.Values) (int, map[string]any, http.Header) {
				t.Helper()
				resp, err := http.PostForm(issuer+"oauth/token", form)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var m map[string]any
				_ = json.NewDecoder(resp.Body).Decode(&m)
				return resp.StatusCode, m, resp.Header
			}
			loginWith := func(realm, user, password string) (int, map[string]any, http.Header) {
				t.Helper()
				return token(url.Values{
					"grant_type": {"http://auth0.com/oauth/grant-type/password-realm"}, "client_id": {clientID},
					"realm": {realm}, "username": {user}, "password": {password}, "scope": {"openid profile email"}})
			}
			login := func(realm, user, password string) (int, map[string]any) {
				t.Helper()
				status, body, _ := loginWith(realm, user, password)
				return status, body
			}
			user := func(id string) map[string]any {
				_, u := postJSON(t, "GET", issuer+"api/v2/users/"+url.PathEscape(id), mgmt, nil)
				return u
			}

			// v2, Graph-enabled: nested groups, over several Graph pages.
			emulatorCounters(t, emu, "DELETE")
			status, tok := login("v2", "alice@contoso.com", "Alice-Passw0rd!")
			if status != 200 {
				t.Fatalf("v2 login: %d %v", status, tok)
			}
			// Alice is in 10 groups, transitively: /me plus 4 pages of 3.
			if n := emulatorCounters(t, emu, "GET")["graph"]; n < 5 {
				t.Errorf("Graph was called %d times for one login, want /me and at least 4 pages", n)
			}
			ctx := context.Background()
			provider, err := oidc.NewProvider(ctx, issuer)
			if err != nil {
				t.Fatal(err)
			}
			// go-oidc takes the keys from the discovery document's
			// jwks_uri: it must be the one Auth0 SDKs assume.
			var disc struct {
				JWKSURI string `json:"jwks_uri"`
			}
			if err := provider.Claims(&disc); err != nil || disc.JWKSURI != issuer+".well-known/jwks.json" {
				t.Fatalf("discovery jwks_uri %q: %v", disc.JWKSURI, err)
			}
			idt, err := provider.Verifier(&oidc.Config{ClientID: clientID}).Verify(ctx, tok["id_token"].(string))
			if err != nil || idt.Subject != "waad|a0000000-0000-4000-8000-000000000001" {
				t.Fatalf("go-oidc: %v %v", err, idt)
			}
			alice := user(idt.Subject)
			if groups, _ := alice["groups"].([]any); len(groups) < 10 || !slices.Contains(groups, any("Privileged Access")) {
				t.Errorf("v2 groups %v", alice["groups"])
			}

			// v1 with the App ID URI: no groups, reason in the log event.
			if status, tok := login("v1", "judy@contoso.onmicrosoft.com", "Judy-Passw0rd!"); status != 200 {
				t.Fatalf("v1 login: %d %v", status, tok)
			}
			judy := "waad|a0000000-0000-4000-8000-00000000000a"
			if _, ok := user(judy)["groups"]; ok {
				t.Errorf("v1 user has groups")
			}
			req, _ := http.NewRequest("GET", issuer+"api/v2/logs?q="+url.QueryEscape("type:sepft")+"&per_page=1", nil)
			req.Header.Set("Authorization", "Bearer "+mgmt)
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(raw), "not Microsoft Graph") {
				t.Errorf("sepft event without the reason: %s", raw)
			}

			// Every error class: the answer the app gets, and the event the
			// admin reads with the AADSTS code and a hint.
			canary := "canary-password-" + randomHex(8)
			const wrong = "Wrong email or password."
			const mfa = "Multifactor authentication is required for this user by Microsoft Entra ID; password sign-in cannot perform it. Use interactive sign-in."
			const federated = "Wrong email or password, or this account's organization signs it in with its own identity provider " +
				"(federated) and Microsoft Entra ID cannot check its password. If the password is right, use interactive sign-in."
			type wantEvent struct{ conn, user, typ, code, hint, desc, realm string }
			var events []wantEvent
			for _, tc := range []struct {
				user, password string
				status         int
				code, desc     string
				event          wantEvent
			}{
				{"alice@contoso.com", canary, 403, "invalid_grant", wrong, wantEvent{typ: "fp", code: "AADSTS50126", realm: "Managed"}},
				{"nobody@contoso.com", canary, 403, "invalid_grant", wrong, wantEvent{typ: "fu", code: "AADSTS50034"}},
				// Entra cannot check a federated (AD FS) user's password and
				// answers 50126, as for a wrong password: user realm
				// discovery names the domain federated, so the app sees a
				// description true of both and the admin a hint naming the
				// fix; it is still a wrong password to SDKs and in the log.
				{"grace@corp.contoso.com", "Grace-Passw0rd!", 403, "invalid_grant", federated,
					wantEvent{typ: "fp", code: "AADSTS50126", hint: "AllowCloudPasswordValidation=true", realm: "Federated"}},
				// A passwordless user has no password at all: 50056.
				{"heidi@contoso.com", canary, 403, "access_denied",
					"This account has no password that can be checked (passwordless or federated sign-in). Use interactive sign-in.",
					wantEvent{typ: "fepft", code: "AADSTS50056", hint: "no password"}},
				{"bob@contoso.com", "Bob-Passw0rd!", 429, "too_many_attempts",
					"Your account is locked by your organization after too many failed sign-in attempts. Try again later.", wantEvent{typ: "fepft", code: "AADSTS50053"}},
				{"carol@contoso.com", "Carol-Passw0rd!", 403, "password_expired",
					"The password has expired. Change it with your organization, then sign in again.", wantEvent{typ: "fepft", code: "AADSTS50055"}},
				{"dave@contoso.com", "Dave-Passw0rd!", 403, "access_denied", mfa, wantEvent{typ: "fepft", code: "AADSTS50076"}},
				{"erin@contoso.com", "Erin-Passw0rd!", 403, "access_denied", mfa, wantEvent{typ: "fepft", code: "AADSTS50079"}},
				{"frank@contoso.com", "Frank-Passw0rd!", 403, "access_denied",
					"Sign-in was blocked by a Microsoft Entra ID access policy (Conditional Access or security defaults) that password sign-in cannot satisfy. Use interactive sign-in.",
					wantEvent{typ: "fepft", code: "AADSTS53003"}},
				{"ivan@contoso.com", "Ivan-Passw0rd!", 401, "unauthorized", "user is blocked", wantEvent{typ: "fepft", code: "AADSTS50057"}},
			} {
				if status, body := login("v2", tc.user, tc.password); status != tc.status || body["error"] != tc.code || body["error_description"] != tc.desc {
					t.Errorf("%s: %d %v", tc.user, status, body)
				}
				tc.event.conn, tc.event.user = "v2", tc.user
				events = append(events, tc.event)
			}
			for _, tc := range []struct{ fault, retryAfter string }{
				{`{"status":503,"times":1}`, "5"},
				{`{"status":429,"retryAfter":2,"times":1}`, "2"},
				// An outage that closes the connection without an answer.
				{`{"drop":true,"times":1}`, "5"},
			} {
				req, _ := http.NewRequest("PUT", emu+"/_emulator/faults/token", strings.NewReader(tc.fault))
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode/100 != 2 {
					t.Fatalf("set fault: %v %v", err, resp)
				}
				resp.Body.Close()
				if status, body, h := loginWith("v2", "alice@contoso.com", canary); status != 503 || body["error"] != "temporarily_unavailable" ||
					h.Get("Retry-After") != tc.retryAfter {
					t.Errorf("fault %s: %d %v Retry-After %q", tc.fault, status, body, h.Get("Retry-After"))
				}
			}

			// App, secret, consent, tenant and resource mistakes: the app
			// learns nothing, the admin gets the code and what to fix.
			for _, tc := range []struct {
				name, code, hint string
				opts             map[string]any
			}{
				{"misconfigured-secret", "AADSTS7000215", "invalid client secret", map[string]any{"client_secret": "wrong-secret"}},
				{"misconfigured-app", "AADSTS700016", "client ID is not registered", map[string]any{"client_id": "0e0e0e0e-0000-4000-8000-00000000abcd"}},
				{"misconfigured-consent", "AADSTS65001", "grant admin consent", map[string]any{"client_id": "3b4c5d6e-7f8a-4b9c-8d0e-1f2a3b4c5d6e", "client_secret": nil}},
				{"misconfigured-tenant", "AADSTS90002", "tenant not found", map[string]any{"tenant_domain": "nowhere.onmicrosoft.com"}},
				{"misconfigured-resource", "AADSTS500011", "resource (App ID URI) was not found", map[string]any{
					"identity_api": "azure-active-directory-v1.0", "app_id": "api://0e0e0e0e-0000-4000-8000-00000000abcd"}},
			} {
				opts := map[string]any{}
				for k, v := range common {
					opts[k] = v
				}
				for k, v := range tc.opts {
					if v == nil {
						delete(opts, k)
					} else {
						opts[k] = v
					}
				}
				if status, c := postJSON(t, "POST", issuer+"api/v2/connections", mgmt, map[string]any{"name": tc.name, "strategy": "waad",
					"enabled_clients": []string{clientID}, "options": opts}); status != 201 {
					t.Fatalf("create %s: %d %v", tc.name, status, c)
				}
				// The right password: consent is checked after it.
				if status, body := login(tc.name, "alice@contoso.com", "Alice-Passw0rd!"); status != 500 || body["error"] != "server_error" ||
					body["error_description"] != "The connection to the identity provider is not configured correctly. The administrator can find the reason in the tenant logs." {
					t.Errorf("%s: %d %v", tc.name, status, body)
				}
				events = append(events, wantEvent{conn: tc.name, user: "alice@contoso.com", typ: "fepft", code: tc.code, hint: tc.hint})
			}

			// gatehouse try shows the admin the code and what to fix; the
			// password comes from standard input.
			bin, err := buildBinary()
			if err != nil {
				t.Fatal(err)
			}
			try := exec.Command(bin, "try", "misconfigured-secret", "--url", issuer, "--username", "alice@contoso.com")
			try.Env = append(try.Environ(), "GATEHOUSE_ADMIN_CLIENT_ID="+adminID, "GATEHOUSE_ADMIN_CLIENT_SECRET="+adminSecret)
			try.Stdin = strings.NewReader(canary + "\n")
			if res, err := try.CombinedOutput(); err == nil || !strings.Contains(string(res), "(AADSTS7000215)") ||
				!strings.Contains(string(res), "What to do: invalid client secret") || strings.Contains(string(res), canary) {
				t.Errorf("gatehouse try on a wrong secret: %v\n%s", err, res)
			}
			// For a federated user it shows the realm lookup and the fix.
			try = exec.Command(bin, "try", "v2", "--url", issuer, "--username", "grace@corp.contoso.com")
			try.Env = append(try.Environ(), "GATEHOUSE_ADMIN_CLIENT_ID="+adminID, "GATEHOUSE_ADMIN_CLIENT_SECRET="+adminSecret)
			try.Stdin = strings.NewReader("Grace-Passw0rd!\n")
			if res, err := try.CombinedOutput(); err == nil || !regexp.MustCompile(`FAIL token .*\n.*ok   user realm .* account type Federated`).Match(res) ||
				!strings.Contains(string(res), "(AADSTS50126)") || !strings.Contains(string(res), "What to do: user realm discovery says the user's domain is federated") ||
				!strings.Contains(string(res), "AllowCloudPasswordValidation=true") || strings.Contains(string(res), "Grace-Passw0rd!") {
				t.Errorf("gatehouse try on a federated user: %v\n%s", err, res)
			}

			// The checks before Entra: none of them sends the password on.
			emulatorCounters(t, emu, "DELETE")
			if status, c := postJSON(t, "POST", issuer+"api/v2/connections", mgmt, map[string]any{"name": "not-enabled", "strategy": "waad",
				"options": common}); status != 201 {
				t.Fatalf("create not-enabled: %d %v", status, c)
			}
			pwForm := func(extra ...string) url.Values {
				f := url.Values{"grant_type": {"password"}, "client_id": {clientID}, "username": {"alice@contoso.com"},
					"password": {canary}, "scope": {"openid"}}
				for i := 0; i < len(extra); i += 2 {
					f.Set(extra[i], extra[i+1])
				}
				return f
			}
			for _, tc := range []struct {
				name       string
				form       url.Values
				status     int
				code, desc string
			}{
				{"unknown client", pwForm("client_id", "no-such-client"), 401, "access_denied", "Unauthorized"},
				{"wrong secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {adminID}, "client_secret": {"wrong-" + adminSecret},
					"audience": {issuer + "api/v2/"}}, 401, "access_denied", "Unauthorized"},
				{"grant not allowed", url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {"x"}},
					403, "unauthorized_client", "Grant type 'refresh_token' not allowed for the client."},
				{"unknown realm", pwForm("grant_type", "http://auth0.com/oauth/grant-type/password-realm", "realm", "no-such-connection"),
					400, "invalid_request", "the connection was not found"},
				{"not enabled", pwForm("grant_type", "http://auth0.com/oauth/grant-type/password-realm", "realm", "not-enabled"),
					400, "invalid_request", "the connection was disabled"},
				{"no default directory", pwForm(), 500, "server_error", "Authorization server not configured with default connection."},
			} {
				if status, body, _ := token(tc.form); status != tc.status || body["error"] != tc.code || body["error_description"] != tc.desc {
					t.Errorf("%s: %d %v", tc.name, status, body)
				}
			}
			// The password grant's own refusals are in the tenant log too,
			// with the connection when there is one.
			for conn, desc := range map[string]string{"": "the connection was not found", "not-enabled": "the connection was disabled"} {
				events = append(events, wantEvent{conn: conn, user: "alice@contoso.com", typ: "f", desc: desc})
			}
			events = append(events, wantEvent{user: "alice@contoso.com", typ: "f", desc: "Authorization server not configured with default connection."})
			if n := emulatorCounters(t, emu, "GET")["token:password"]; n != 0 {
				t.Errorf("refused requests sent %d passwords to Entra", n)
			}
			if status, body := postJSON(t, "PATCH", issuer+"api/v2/tenants/settings", mgmt, map[string]any{"default_directory": "v2"}); status != 200 {
				t.Fatalf("set default_directory: %d %v", status, body)
			}
			if status, body, _ := token(pwForm("password", "Alice-Passw0rd!")); status != 200 || body["id_token"] == nil {
				t.Errorf("password grant through default_directory: %d %v", status, body)
			}

			// The tenant log: one event per failure with the AADSTS code
			// and, for what the admin must fix, a hint; never a password.
			req, _ = http.NewRequest("GET", issuer+"api/v2/logs?per_page=100", nil)
			req.Header.Set("Authorization", "Bearer "+mgmt)
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			var logs []struct {
				Type       string         `json:"type"`
				Connection string         `json:"connection"`
				UserName   string         `json:"user_name"`
				Details    map[string]any `json:"details"`
			}
			if err := json.Unmarshal(raw, &logs); err != nil {
				t.Fatalf("logs: %v %s", err, raw)
			}
			for _, w := range events {
				found := false
				for _, e := range logs {
					hint, _ := e.Details["hint"].(string)
					if e.Type == w.typ && e.Connection == w.conn && e.UserName == w.user &&
						(w.code == "" || e.Details["error_code"] == w.code && hint != "" && strings.Contains(hint, w.hint)) &&
						(w.desc == "" || e.Details["error_description"] == w.desc) && (w.realm == "" || e.Details["realm"] == w.realm) {
						found = true
						break
					}
				}
				if !found {
					t.Errorf("no event %+v", w)
				}
			}
			for _, pw := range []string{canary, "Alice-Passw0rd!", "Grace-Passw0rd!", "Dave-Passw0rd!"} {
				if strings.Contains(string(raw), pw) {
					t.Errorf("a password reached the tenant log: %.12s…", pw)
				}
			}

			// Sync on each login (v2) vs first login (v1). v2's root
			// attributes cannot be edited while it syncs them at each login;
			// an edit made while it did not is replaced at the next login.
			if status, body := postJSON(t, "PATCH", issuer+"api/v2/users/"+url.PathEscape(idt.Subject), mgmt, map[string]any{"name": "Edited"}); status != 400 ||
				body["errorCode"] != "operation_not_supported" {
				t.Fatalf("patch %s on v2: %d %v", idt.Subject, status, body)
			}
			setSync := func(mode string) {
				t.Helper()
				c := connections["v2"]
				c["options"].(map[string]any)["set_user_root_attributes"] = mode
				if status, body := postJSON(t, "PATCH", issuer+"api/v2/connections/"+c["id"].(string), mgmt, map[string]any{"options": c["options"]}); status != 200 {
					t.Fatalf("set v2 %s: %d %v", mode, status, body)
				}
			}
			setSync("on_first_login")
			for _, id := range []string{idt.Subject, judy} {
				if status, _ := postJSON(t, "PATCH", issuer+"api/v2/users/"+url.PathEscape(id), mgmt, map[string]any{"name": "Edited"}); status != 200 {
					t.Fatalf("patch %s: %d", id, status)
				}
			}
			setSync("on_each_login")
			login("v2", "alice@contoso.com", "Alice-Passw0rd!")
			login("v1", "judy@contoso.onmicrosoft.com", "Judy-Passw0rd!")
			if a, j := user(idt.Subject)["name"], user(judy)["name"]; a != "Alice Adams" || j != "Edited" {
				t.Errorf("after re-login: on_each_login %v, on_first_login %v", a, j)
			}

			p.stop(t)
			for _, secret := range []string{canary, "Alice-Passw0rd!", adminSecret, "native-secret-value"} {
				if strings.Contains(p.output.String(), secret) {
					t.Errorf("a secret reached the logs: %.12s…", secret)
				}
			}
		})
	}
}

// TestServeDemo runs `gatehouse serve --demo`, signs in with the printed
// curl's parameters, and runs the printed `gatehouse try` line.
func TestServeDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	addr := freeAddr(t)
	// Run from an empty directory: the demo's directory file is built in.
	cmd, out := launch(t, t.TempDir(), []string{"GATEHOUSE_ADDR=" + addr, "GATEHOUSE_DATABASE=sqlite:" + t.TempDir() + "/demo.db"}, "serve", "--demo")
	p := &process{cmd: cmd, output: out, base: "http://" + addr + "/"}
	field := func(re string) string {
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if m := regexp.MustCompile(re).FindStringSubmatch(out.String()); m != nil {
				return m[1]
			}
		}
		t.Fatalf("no %q in the demo's output:\n%s", re, out.String())
		return ""
	}
	clientID := field(`client_id=(\S+) -d realm=contoso-demo`)
	adminSecret := field(`GATEHOUSE_ADMIN_CLIENT_SECRET=(\S+)`)
	resp, err := http.PostForm(p.base+"oauth/token", url.Values{
		"grant_type": {"http://auth0.com/oauth/grant-type/password-realm"}, "client_id": {clientID},
		"realm": {"contoso-demo"}, "username": {"alice@contoso.com"}, "password": {"Alice-Passw0rd!"}, "scope": {"openid profile email"}})
	if err != nil {
		t.Fatal(err)
	}
	var tok map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != 200 || tok["id_token"] == nil {
		t.Fatalf("demo login: %d %v", resp.StatusCode, tok)
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	try := exec.Command(bin, "try", "contoso-demo", "--url", p.base, "--username", "alice@contoso.com")
	try.Env = append(try.Environ(), "GATEHOUSE_ADMIN_CLIENT_ID=demo-admin", "GATEHOUSE_ADMIN_CLIENT_SECRET="+adminSecret)
	try.Stdin = strings.NewReader("Alice-Passw0rd!\n")
	res, err := try.CombinedOutput()
	if err != nil || !strings.Contains(string(res), "Signed in: waad|a0000000-0000-4000-8000-000000000001") ||
		!strings.Contains(string(res), "graph /me/transitiveMemberOf") || !strings.Contains(string(res), "ROPC") {
		t.Fatalf("gatehouse try: %v\n%s", err, res)
	}
	if strings.Contains(string(res), "Alice-Passw0rd!") {
		t.Errorf("try printed the password")
	}
	p.stop(t)
}

// TestServeDemoKeepsOperatorAdminSecret: with the operator's own admin
// application in the environment, `serve --demo` prints a try line that
// takes the secret from that environment and never the secret itself.
func TestServeDemoKeepsOperatorAdminSecret(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	addr := freeAddr(t)
	secret := "canary-operator-admin-secret-" + randomHex(16)
	env := []string{"GATEHOUSE_ADMIN_CLIENT_ID=ops-admin", "GATEHOUSE_ADMIN_CLIENT_SECRET=" + secret}
	cmd, out := launch(t, t.TempDir(), append([]string{"GATEHOUSE_ADDR=" + addr, "GATEHOUSE_DATABASE=sqlite:" + t.TempDir() + "/demo.db"}, env...), "serve", "--demo")
	p := &process{cmd: cmd, output: out, base: "http://" + addr + "/"}
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(out.String(), "Other users of the directory"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the demo printed no instructions:\n%s", out.String())
		}
	}
	if strings.Contains(out.String(), secret) {
		t.Fatalf("serve --demo printed the operator's admin secret:\n%s", out.String())
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	try := exec.Command(bin, "try", "contoso-demo", "--url", p.base, "--username", "alice@contoso.com")
	try.Env = append(try.Environ(), env...)
	try.Stdin = strings.NewReader("Alice-Passw0rd!\n")
	if res, err := try.CombinedOutput(); err != nil || !strings.Contains(string(res), "Signed in: ") {
		t.Fatalf("gatehouse try with the operator's admin application: %v\n%s", err, res)
	}
	p.stop(t)
}
