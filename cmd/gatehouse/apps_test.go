package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/management"
	"github.com/gatehouse/gatehouse/internal/server/servertest"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// runCLI runs one gatehouse command in process with stdin and returns
// its stdout, stderr and error.
func runCLI(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

// cliEnv starts a server and points the CLI at it. Without secretInEnv
// the CLI asks for the admin secret, which the tests give on stdin.
func cliEnv(t *testing.T, secretInEnv bool) *servertest.Env {
	t.Helper()
	return cliEnvOn(t, storetest.SQLite, secretInEnv)
}

// cliEnvOn is cliEnv on the named backend.
func cliEnvOn(t *testing.T, backend string, secretInEnv bool, opts ...servertest.Option) *servertest.Env {
	t.Helper()
	env := servertest.Start(t, backend, opts...)
	secret := ""
	if secretInEnv {
		secret = env.AdminSecret
	}
	t.Setenv("GATEHOUSE_URL", env.URL)
	t.Setenv("GATEHOUSE_ADMIN_CLIENT_ID", env.AdminID)
	t.Setenv("GATEHOUSE_ADMIN_CLIENT_SECRET", secret)
	t.Setenv("GATEHOUSE_TOKEN", "")
	return env
}

// TestAppsAndConnectionsCLI follows the seed's steps from a terminal:
// register a native app, create the Azure AD connection, enable it.
func TestAppsAndConnectionsCLI(t *testing.T) {
	env := cliEnv(t, false)
	admin := env.AdminSecret + "\n"
	must := func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, err := runCLI(t, stdin, args...)
		if err != nil {
			t.Fatalf("gatehouse %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out
	}

	var app map[string]any
	out := must(admin, "apps", "create", "--name", "My Native App", "--type", "native",
		"--callback", "com.example.app://callback", "--grant-types", "password,http://auth0.com/oauth/grant-type/password-realm,refresh_token")
	if err := json.Unmarshal([]byte(out), &app); err != nil || app["client_secret"] == nil || app["token_endpoint_auth_method"] != "none" {
		t.Fatalf("apps create: %v %s", err, out)
	}
	clientID := app["client_id"].(string)

	// Admin secret on the first line of stdin, the Azure secret on the second.
	out = must(admin+"Azure~Secret-123\n", "connections", "create", "--name", "contoso-azure-ad", "--display-name", "Contoso",
		"--tenant-domain", "contoso.onmicrosoft.com", "--domain-alias", "contoso.com", "--client-id", "0f0c1b6e-9a6f-4c55-9bbc-1a2b3c4d5e6f",
		"--identity-api", "v1", "--app-id", "api://contoso-web-api", "--ext-profile", "--ext-groups", "--api-enable-users",
		"--sync-user-profile", "on_each_login", "--option", `upstream_params={"screen_name":{"alias":"login_hint"}}`)
	if strings.Contains(out, "Azure~Secret") || !strings.Contains(out, `"client_secret": "`+management.SecretMarker+`"`) {
		t.Errorf("connections create shows the secret or no marker:\n%s", out)
	}
	must(admin, "connections", "enable", "contoso-azure-ad", clientID)

	var conn map[string]any
	out = must(admin, "connections", "get", "contoso-azure-ad")
	if err := json.Unmarshal([]byte(out), &conn); err != nil {
		t.Fatal(err)
	}
	opts := conn["options"].(map[string]any)
	if opts["identity_api"] != "azure-active-directory-v1.0" || opts["basic_profile"] != true || opts["upstream_params"] == nil ||
		conn["enabled_clients"].([]any)[0] != clientID {
		t.Errorf("connection %v", conn)
	}

	// update keeps the options it does not name, and the secret.
	out = must(admin, "connections", "update", conn["id"].(string), "--display-name", "Contoso staff", "--ext-nested-groups")
	var updated map[string]any
	_ = json.Unmarshal([]byte(out), &updated)
	uopts := updated["options"].(map[string]any)
	if updated["display_name"] != "Contoso staff" || uopts["ext_nested_groups"] != true || uopts["app_id"] != "api://contoso-web-api" || uopts["client_secret"] != management.SecretMarker {
		t.Errorf("update: %s", out)
	}

	// The retired Azure AD Graph is accepted with a warning on stderr.
	_, errOut, err := runCLI(t, admin, "connections", "update", "contoso-azure-ad", "--app-id", "https://graph.windows.net")
	if err != nil || !strings.Contains(errOut, "warning:") || !strings.Contains(errOut, "graph.windows.net") {
		t.Errorf("legacy graph warning: %v %q", err, errOut)
	}

	if out := must(admin, "connections", "list"); !strings.Contains(out, "contoso-azure-ad") || !strings.Contains(out, clientID) {
		t.Errorf("connections list:\n%s", out)
	}
	if out := must(admin, "apps", "list"); !strings.Contains(out, "My Native App") || !strings.Contains(out, "password") {
		t.Errorf("apps list:\n%s", out)
	}
	if out := must(admin, "apps", "get", clientID); !strings.Contains(out, app["client_secret"].(string)) {
		t.Errorf("apps get lacks the secret for an admin holding read:client_keys")
	}

	// Errors carry the API's answer; secrets are refused as flags.
	if _, _, err := runCLI(t, admin, "connections", "create", "--name", "bad name", "--no-client-secret", "--tenant-domain", "x.com", "--client-id", "a"); err == nil || !strings.Contains(err.Error(), "invalid_body") {
		t.Errorf("bad name: %v", err)
	}
	if _, _, err := runCLI(t, admin, "connections", "update", "contoso-azure-ad", "--option", "client_secret=x"); err == nil || !strings.Contains(err.Error(), "never from a flag") {
		t.Errorf("--option client_secret: %v", err)
	}
	if _, _, err := runCLI(t, "wrong\n", "apps", "list"); err == nil || !strings.Contains(err.Error(), "access_denied") {
		t.Errorf("wrong admin secret: %v", err)
	}

	must(admin, "connections", "enable", "--disable", "contoso-azure-ad", clientID)
	must(admin, "connections", "delete", "contoso-azure-ad")
	must(admin, "apps", "delete", clientID)
	if _, _, err := runCLI(t, admin, "apps", "get", clientID); err == nil || !strings.Contains(err.Error(), "inexistent_client") {
		t.Errorf("get after delete: %v", err)
	}
}

// addClients stores n public applications named prefix-0000… straight
// through the store, which is far quicker than n API calls, and returns
// their ids.
func addClients(t *testing.T, env *servertest.Env, prefix string, n int) []string {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), env.Config.Database, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("%s%04dXXXXXXXXXXXXXXXXXXXXXXXXXXXX", prefix, i)[:32]
		c := &store.Client{ClientID: ids[i], Name: fmt.Sprintf("%s-%04d", prefix, i), AppType: "native",
			TokenEndpointAuthMethod: "none", GrantTypes: []string{"authorization_code"}, IsFirstParty: true}
		if err := st.CreateClient(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// TestAppsListBeyondOffsetPaging: `apps list` shows every application of
// a tenant with more than the 1000 that offset paging reaches.
func TestAppsListBeyondOffsetPaging(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			env := cliEnvOn(t, backend, true)
			want := append([]string{env.AdminID}, addClients(t, env, "bulk", 1050)...)
			out, errOut, err := runCLI(t, "", "apps", "list", "--json")
			if err != nil {
				t.Fatalf("apps list: %v\n%s", err, errOut)
			}
			var apps []map[string]any
			if err := json.Unmarshal([]byte(out), &apps); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range apps {
				got = append(got, a["client_id"].(string))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("apps list --json: %d applications, want %d in creation order", len(got), len(want))
			}
			out, errOut, err = runCLI(t, "", "apps", "list")
			if err != nil {
				t.Fatalf("apps list: %v\n%s", err, errOut)
			}
			// A header and one line per application.
			if lines := strings.Count(out, "\n"); lines != len(want)+1 || !strings.Contains(out, "bulk-1049") {
				t.Errorf("apps list: %d lines, want %d", lines, len(want)+1)
			}
		})
	}
}

// TestDemoSetupFindsItsApp: re-running the demo on a database with more
// applications than one page reuses its application instead of adding
// another.
func TestDemoSetupFindsItsApp(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			emu := "http://127.0.0.1:9"
			env := cliEnvOn(t, backend, true, servertest.AllowUpstream(emu))
			addClients(t, env, "bulk", 150)
			first, err := demoSetup(env.Server.Handler(), env.Config, emu)
			if err != nil {
				t.Fatal(err)
			}
			again, err := demoSetup(env.Server.Handler(), env.Config, emu)
			if err != nil {
				t.Fatal(err)
			}
			if again != first {
				t.Errorf("second demo setup used application %s, want %s", again, first)
			}
			out, errOut, err := runCLI(t, "", "apps", "list", "--json")
			if err != nil {
				t.Fatalf("apps list: %v\n%s", err, errOut)
			}
			if n := strings.Count(out, `"name": "`+demoClientName+`"`); n != 1 {
				t.Errorf("%d demo applications, want 1", n)
			}
		})
	}
}
