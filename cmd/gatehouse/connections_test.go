package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/management"
)

// TestConnectionSecretCLI: an empty secret at the prompt or on stdin is
// refused rather than sent, since the API reads "" as "remove the
// secret"; removing it takes its own flag.
func TestConnectionSecretCLI(t *testing.T) {
	env := cliEnv(t, false)
	admin := env.AdminSecret + "\n"
	secretSet := func() bool {
		t.Helper()
		out, errOut, err := runCLI(t, admin, "connections", "get", "contoso-azure-ad")
		var c map[string]any
		if err != nil || json.Unmarshal([]byte(out), &c) != nil {
			t.Fatalf("connections get: %v %s", err, errOut)
		}
		return c["options"].(map[string]any)["client_secret"] == management.SecretMarker
	}
	fails := func(stdin, want string, args ...string) {
		t.Helper()
		if _, _, err := runCLI(t, stdin, args...); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("gatehouse %s: %v, want an error containing %q", strings.Join(args, " "), err, want)
		}
	}
	create := []string{"connections", "create", "--name", "contoso-azure-ad", "--tenant-domain", "contoso.onmicrosoft.com",
		"--client-id", "0f0c1b6e-9a6f-4c55-9bbc-1a2b3c4d5e6f"}

	for _, stdin := range []string{admin + "\n", admin + "  \t\n"} {
		fails(stdin, "--no-client-secret", create...)
	}
	if out, _, err := runCLI(t, admin, "connections", "list"); err != nil || strings.Contains(out, "contoso-azure-ad") {
		t.Fatalf("a refused create made a connection: %v\n%s", err, out)
	}
	if _, errOut, err := runCLI(t, admin+"Azure~Secret-123\n", create...); err != nil {
		t.Fatalf("connections create: %v %s", err, errOut)
	}

	update := []string{"connections", "update", "contoso-azure-ad", "--client-secret"}
	for _, stdin := range []string{admin + "\n", admin + " \r\n"} {
		fails(stdin, "--remove-client-secret", update...)
		if !secretSet() {
			t.Fatalf("an empty secret (%q) removed the stored one", strings.TrimPrefix(stdin, admin))
		}
	}
	fails(admin, "stdin", update...)
	fails(admin, "none of the others can be", "connections", "update", "contoso-azure-ad", "--client-secret", "--remove-client-secret")
	if !secretSet() {
		t.Fatal("a refused update removed the secret")
	}

	// Moving the hosts needs the secret again (the API says why).
	fails(admin, "options.client_secret", "connections", "update", "contoso-azure-ad", "--authority-host", "https://login.microsoftonline.us")
	if _, errOut, err := runCLI(t, admin+"Azure~Secret-US\n", "connections", "update", "contoso-azure-ad",
		"--authority-host", "https://login.microsoftonline.us", "--client-secret"); err != nil || !secretSet() {
		t.Fatalf("host change with a new secret: %v %s", err, errOut)
	}

	if _, errOut, err := runCLI(t, admin, "connections", "update", "contoso-azure-ad", "--remove-client-secret"); err != nil {
		t.Fatalf("--remove-client-secret: %v %s", err, errOut)
	}
	if secretSet() {
		t.Fatal("--remove-client-secret kept the secret")
	}
}
