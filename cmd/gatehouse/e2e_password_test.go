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
// id_token verified by go-oidc, the error classes, and both sync modes.
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
				"grant_types": []string{"http://auth0.com/oauth/grant-type/password-realm"},
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
			login := func(realm, user, password string) (int, map[string]any) {
				resp, err := http.PostForm(issuer+"oauth/token", url.Values{
					"grant_type": {"http://auth0.com/oauth/grant-type/password-realm"}, "client_id": {clientID},
					"realm": {realm}, "username": {user}, "password": {password}, "scope": {"openid profile email"}})
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var m map[string]any
				_ = json.NewDecoder(resp.Body).Decode(&m)
				return resp.StatusCode, m
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

			// Every error class.
			canary := "canary-password-" + randomHex(8)
			for _, tc := range []struct {
				user, password string
				status         int
				code           string
			}{
				{"alice@contoso.com", canary, 403, "invalid_grant"},
				{"nobody@contoso.com", canary, 403, "invalid_grant"},
				{"bob@contoso.com", "Bob-Passw0rd!", 429, "too_many_attempts"},
				{"carol@contoso.com", "Carol-Passw0rd!", 403, "password_expired"},
				{"dave@contoso.com", "Dave-Passw0rd!", 403, "access_denied"},
				{"frank@contoso.com", "Frank-Passw0rd!", 403, "access_denied"},
				{"ivan@contoso.com", "Ivan-Passw0rd!", 401, "unauthorized"},
			} {
				if status, body := login("v2", tc.user, tc.password); status != tc.status || body["error"] != tc.code {
					t.Errorf("%s: %d %v", tc.user, status, body)
				}
			}
			for _, f := range []string{`{"status":503,"times":1}`, `{"status":429,"retryAfter":2,"times":1}`} {
				req, _ := http.NewRequest("PUT", emu+"/_emulator/faults/token", strings.NewReader(f))
				req.Header.Set("Content-Type", "application/json")
				if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode/100 != 2 {
					t.Fatalf("set fault: %v %v", err, resp)
				}
				if status, body := login("v2", "alice@contoso.com", canary); status != 503 || body["error"] != "temporarily_unavailable" {
					t.Errorf("fault %s: %d %v", f, status, body)
				}
			}
			status, _ = postJSON(t, "POST", issuer+"api/v2/connections", mgmt, map[string]any{"name": "misconfigured", "strategy": "waad",
				"enabled_clients": []string{clientID}, "options": map[string]any{"client_id": "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b",
					"client_secret": "wrong-secret", "tenant_domain": "contoso.onmicrosoft.com", "authority_host": emu, "graph_host": emu}})
			if status != 201 {
				t.Fatalf("create misconfigured connection: %d", status)
			}
			if status, body := login("misconfigured", "alice@contoso.com", canary); status != 500 || body["error"] != "server_error" {
				t.Errorf("misconfigured: %d %v", status, body)
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
