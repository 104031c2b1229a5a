package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAppsCredentialsCLI moves a batch job from its secret to
// private_key_jwt with two keys, and back.
func TestAppsCredentialsCLI(t *testing.T) {
	cliEnv(t, true)
	must := func(args ...string) string {
		t.Helper()
		out, errOut, err := runCLI(t, "", args...)
		if err != nil {
			t.Fatalf("gatehouse %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out
	}
	var app map[string]any
	_ = json.Unmarshal([]byte(must("apps", "create", "--name", "batch", "--type", "non_interactive")), &app)
	id := app["client_id"].(string)
	pemFile := func(name string) string {
		key, _ := rsa.GenerateKey(rand.Reader, 2048)
		der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	add := func(name string) string {
		var cred map[string]any
		_ = json.Unmarshal([]byte(must("apps", "credentials", "add", id, "--pem", pemFile(name), "--name", name, "--enable")), &cred)
		return cred["id"].(string)
	}
	accepted := func() []string {
		t.Helper()
		var c struct {
			Methods *struct {
				PrivateKeyJWT struct {
					Credentials []struct{ ID string } `json:"credentials"`
				} `json:"private_key_jwt"`
			} `json:"client_authentication_methods"`
			AuthMethod string `json:"token_endpoint_auth_method"`
		}
		_ = json.Unmarshal([]byte(must("apps", "get", id)), &c)
		if c.Methods == nil {
			return []string{c.AuthMethod}
		}
		var ids []string
		for _, cr := range c.Methods.PrivateKeyJWT.Credentials {
			ids = append(ids, cr.ID)
		}
		return ids
	}
	first := add("k1")
	second := add("k2")
	if got := accepted(); strings.Join(got, ",") != second+","+first && strings.Join(got, ",") != first+","+second {
		t.Fatalf("accepted %v, want both keys", got)
	}
	if out := must("apps", "credentials", "list", id); !strings.Contains(out, first) || !strings.Contains(out, second) || strings.Contains(out, "BEGIN PUBLIC KEY") {
		t.Errorf("credentials list:\n%s", out)
	}
	must("apps", "credentials", "use", id, second)
	if got := accepted(); strings.Join(got, ",") != second {
		t.Errorf("after use: %v, want only %s", got, second)
	}
	must("apps", "credentials", "remove", id, first)
	if _, _, err := runCLI(t, "", "apps", "credentials", "remove", id, second); err == nil || !strings.Contains(err.Error(), "credential_in_use") {
		t.Errorf("removing the accepted key: %v", err)
	}
	must("apps", "credentials", "use-secret", id)
	if got := accepted(); strings.Join(got, ",") != "client_secret_post" {
		t.Errorf("after use-secret: %v", got)
	}
}
