package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/gatehouse/gatehouse/internal/server/servertest"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// buildBinary compiles gatehouse once per test run.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "gatehouse-e2e")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "gatehouse")
	out, err := exec.Command("go", "build", "-race", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// process is a running gatehouse binary and everything it wrote.
type process struct {
	cmd    *exec.Cmd
	output *servertest.Buffer
	base   string
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// launch runs the gatehouse binary with args and extra environment, in
// dir when not empty, capturing its output; the test's end kills it.
func launch(t *testing.T, dir string, env []string, args ...string) (*exec.Cmd, *servertest.Buffer) {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out := &servertest.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, out
}

// start runs `gatehouse serve` with env and waits until it is ready.
func start(t *testing.T, addr string, env ...string) *process {
	t.Helper()
	cmd, out := launch(t, "", append([]string{"GATEHOUSE_ADDR=" + addr}, env...), "serve")
	p := &process{cmd: cmd, output: out, base: "http://" + addr + "/"}
	waitReady(t, p)
	return p
}

// waitReady waits until the process answers /readyz.
func waitReady(t *testing.T, p *process) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.base + "readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("gatehouse did not become ready; output:\n%s", p.output.String())
}

// stop sends SIGTERM and expects a clean exit.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("gatehouse exited with %v; output:\n%s", err, p.output.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("gatehouse did not stop on SIGTERM")
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func postJSON(t *testing.T, method, u, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, u, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: non-JSON body %q", method, u, raw)
		}
	}
	return resp.StatusCode, m
}

// TestServeEndToEnd starts the real binary, gets a management token,
// changes the tenant settings, restarts, and finds keys and data unchanged;
// an independent OIDC library verifies the token through the JWKS; nothing
// secret reaches the logs.
func TestServeEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			addr := freeAddr(t)
			adminID := "admin-" + randomHex(8)
			adminSecret := "canary-admin-secret-" + randomHex(16)
			masterKey := hex.EncodeToString([]byte(randomHex(16)))
			env := []string{
				"GATEHOUSE_DATABASE=" + storetest.DSN(t, b),
				"GATEHOUSE_ADMIN_CLIENT_ID=" + adminID,
				"GATEHOUSE_ADMIN_CLIENT_SECRET=" + adminSecret,
				"GATEHOUSE_SECRET_KEY=" + masterKey,
				"GATEHOUSE_LOG_FORMAT=json",
				"GATEHOUSE_TRUSTED_PROXIES=127.0.0.1/32",
			}
			p := start(t, addr, env...)
			issuer := p.base

			form := url.Values{
				"grant_type":    {"client_credentials"},
				"client_id":     {adminID},
				"client_secret": {adminSecret},
				"audience":      {issuer + "api/v2/"},
			}
			resp, err := http.PostForm(issuer+"oauth/token", form)
			if err != nil {
				t.Fatal(err)
			}
			var tok struct {
				AccessToken string `json:"access_token"`
				TokenType   string `json:"token_type"`
				ExpiresIn   int    `json:"expires_in"`
				Scope       string `json:"scope"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || tok.TokenType != "Bearer" || tok.ExpiresIn != 86400 || !strings.Contains(tok.Scope, "update:tenant_settings") {
				t.Fatalf("token response %d %+v", resp.StatusCode, tok)
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("token response Cache-Control = %q, want no-store", got)
			}

			// An independent library verifies the token through the JWKS.
			ctx := context.Background()
			keySet := oidc.NewRemoteKeySet(ctx, issuer+".well-known/jwks.json")
			verifier := oidc.NewVerifier(issuer, keySet, &oidc.Config{ClientID: issuer + "api/v2/", SupportedSigningAlgs: []string{"RS256"}})
			if _, err := verifier.Verify(ctx, tok.AccessToken); err != nil {
				t.Fatalf("go-oidc rejected the management token: %v", err)
			}
			provider, err := oidc.NewProvider(ctx, issuer)
			if err != nil {
				t.Fatalf("discovery: %v", err)
			}
			if provider.Endpoint().TokenURL != issuer+"oauth/token" {
				t.Errorf("discovery token endpoint = %q", provider.Endpoint().TokenURL)
			}

			status, settings := postJSON(t, "PATCH", issuer+"api/v2/tenants/settings", tok.AccessToken, map[string]any{
				"friendly_name": "Contoso Login", "default_audience": "https://api.contoso.example/",
			})
			if status != 200 || settings["friendly_name"] != "Contoso Login" {
				t.Fatalf("PATCH settings: %d %v", status, settings)
			}
			jwksBefore := get(t, issuer+".well-known/jwks.json")
			// A trusted proxy naming the client in a form that is not an
			// address is warned about in the configured log format,
			// without the hop.
			req, _ := http.NewRequest("POST", issuer+"oauth/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Forwarded-For", "opaque-hop-canary")
			if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
				t.Fatalf("token behind a proxy: %v %v", resp, err)
			} else {
				resp.Body.Close()
			}
			p.stop(t)
			logs := p.output.String()
			if !strings.Contains(logs, `"level":"WARN","msg":"a trusted proxy's X-Forwarded-For`) || !strings.Contains(logs, `"proxy":"127.0.0.1"`) ||
				strings.Contains(logs, "opaque-hop-canary") {
				t.Errorf("no JSON warning about the opaque hop, or the hop was logged:\n%s", logs)
			}

			p2 := start(t, addr, env...)
			if jwksAfter := get(t, issuer+".well-known/jwks.json"); jwksAfter != jwksBefore {
				t.Errorf("JWKS changed across restart:\nbefore %s\nafter  %s", jwksBefore, jwksAfter)
			}
			// The token issued before the restart is still accepted.
			status, settings = postJSON(t, "GET", issuer+"api/v2/tenants/settings", tok.AccessToken, nil)
			if status != 200 || settings["friendly_name"] != "Contoso Login" || settings["default_audience"] != "https://api.contoso.example/" {
				t.Fatalf("settings after restart: %d %v", status, settings)
			}
			p2.stop(t)
			logs += p2.output.String()
			for _, secret := range []string{adminSecret, masterKey, tok.AccessToken} {
				if strings.Contains(logs, secret) {
					t.Errorf("a secret reached the logs: %.12s…", secret)
				}
			}
			if !strings.Contains(logs, `"path":"/api/v2/tenants/settings"`) {
				t.Errorf("access log line missing; logs:\n%s", logs)
			}
		})
	}
}

func get(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return string(b)
}
