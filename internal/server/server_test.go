package server_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

func sqliteConfig(t *testing.T, dir string) *config.Config {
	t.Helper()
	cfg := &config.Config{
		Addr:                    "127.0.0.1:0",
		Issuer:                  "http://127.0.0.1:1/",
		Database:                "sqlite:" + filepath.Join(dir, "gatehouse.db"),
		LogFormat:               "text",
		LogLevel:                "info",
		ManagementTokenLifetime: time.Hour,
		ShutdownTimeout:         time.Second,
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestGeneratedAdmin: an empty database with no admin configured gets
// one; its credentials go to a 0600 file next to the database, never to
// the terminal or the log, which are told only the client id and the
// file; they work; a second start leaves the file alone. The master key
// file is created with mode 0600.
func TestGeneratedAdmin(t *testing.T) {
	dir := t.TempDir()
	cfg := sqliteConfig(t, dir)
	var notice, logs bytes.Buffer
	srv, err := server.New(context.Background(), cfg, server.NewLogger(&logs, "text", "info"), &notice)
	if err != nil {
		t.Fatal(err)
	}
	file := server.AdminFile(cfg)
	if file != filepath.Join(dir, "gatehouse.db.admin") {
		t.Fatalf("AdminFile = %s", file)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin file: %v %v", fi, err)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	creds := map[string]string{}
	for line := range strings.Lines(string(raw)) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(k, "#") {
			creds[k] = v
		}
	}
	id, secret := creds["GATEHOUSE_ADMIN_CLIENT_ID"], creds["GATEHOUSE_ADMIN_CLIENT_SECRET"]
	if id == "" || len(secret) < 32 {
		t.Fatalf("admin file does not hold the credentials:\n%s", raw)
	}
	out := notice.String()
	if !strings.Contains(out, id) || !strings.Contains(out, file) {
		t.Fatalf("the notice does not name the client id and the file: %q", out)
	}
	for what, text := range map[string]string{"notice": out, "log": logs.String()} {
		if strings.Contains(text, secret) {
			t.Fatalf("the generated secret reached the %s", what)
		}
	}
	if !strings.Contains(logs.String(), "GATEHOUSE_SECRET_KEY is not set") {
		t.Errorf("no warning about the generated master key: %s", logs.String())
	}
	fi, err = os.Stat(cfg.SecretKeyFile())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}

	ts := httptest.NewServer(srv.Handler())
	resp, err := http.PostForm(ts.URL+"/oauth/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {id}, "client_secret": {secret}, "audience": {cfg.Issuer + "api/v2/"}})
	ts.Close()
	srv.Close()
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("management token with the file's credentials: %d", resp.StatusCode)
	}

	notice.Reset()
	srv, err = server.New(context.Background(), cfg, server.NewLogger(io.Discard, "text", "info"), &notice)
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if notice.Len() != 0 {
		t.Fatalf("notice again: %q", notice.String())
	}
	if again, _ := os.ReadFile(file); !bytes.Equal(again, raw) {
		t.Fatal("the admin file changed on the second start")
	}
}

// TestLostKeyFile: with the key file gone but secrets sealed in the
// database, the start fails, says to restore the key file, and generates
// no key in its place; the restored file starts it again.
func TestLostKeyFile(t *testing.T) {
	cfg := sqliteConfig(t, t.TempDir())
	srv, err := server.New(context.Background(), cfg, server.NewLogger(io.Discard, "text", "info"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	saved := cfg.SecretKeyFile() + ".backup"
	if err := os.Rename(cfg.SecretKeyFile(), saved); err != nil {
		t.Fatal(err)
	}
	_, err = server.New(context.Background(), cfg, server.NewLogger(io.Discard, "text", "info"), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "master key file "+cfg.SecretKeyFile()+" is missing") {
		t.Fatalf("start without the key file: %v", err)
	}
	if _, err := os.Stat(cfg.SecretKeyFile()); !os.IsNotExist(err) {
		t.Fatalf("a key file was generated for a database sealed under another: %v", err)
	}
	// Another key in its place is named as the key file, not as
	// GATEHOUSE_SECRET_KEY, which is not set.
	if err := os.WriteFile(cfg.SecretKeyFile(), []byte(hex.EncodeToString(bytes.Repeat([]byte{7}, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = server.New(context.Background(), cfg, server.NewLogger(io.Discard, "text", "info"), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "the master key file "+cfg.SecretKeyFile()+" does not match") {
		t.Fatalf("start with another key file: %v", err)
	}
	if err := os.Rename(saved, cfg.SecretKeyFile()); err != nil {
		t.Fatal(err)
	}
	srv, err = server.New(context.Background(), cfg, server.NewLogger(io.Discard, "text", "info"), io.Discard)
	if err != nil {
		t.Fatalf("start with the restored key file: %v", err)
	}
	srv.Close()
}

// TestGeneratedAdminNeverOverwrites: a file left from an earlier database
// is never overwritten; the start fails, says what to do, and creates no
// application.
func TestGeneratedAdminNeverOverwrites(t *testing.T) {
	cfg := sqliteConfig(t, t.TempDir())
	earlier := []byte("GATEHOUSE_ADMIN_CLIENT_ID=earlier\nGATEHOUSE_ADMIN_CLIENT_SECRET=earlier-secret\n")
	if err := os.WriteFile(server.AdminFile(cfg), earlier, 0o600); err != nil {
		t.Fatal(err)
	}
	var notice bytes.Buffer
	_, err := server.New(context.Background(), cfg, server.NewLogger(io.Discard, "text", "info"), &notice)
	if err == nil || !strings.Contains(err.Error(), server.AdminFile(cfg)+" already exists") ||
		!strings.Contains(err.Error(), "GATEHOUSE_ADMIN_CLIENT_ID") {
		t.Fatalf("err = %v", err)
	}
	if got, _ := os.ReadFile(server.AdminFile(cfg)); !bytes.Equal(got, earlier) {
		t.Fatalf("the earlier file was overwritten: %q", got)
	}
	if notice.Len() != 0 {
		t.Fatalf("notice: %q", notice.String())
	}
	st, err := sqlstore.Open(context.Background(), cfg.Database, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, total, err := st.ListClients(context.Background(), store.ListOptions{PerPage: 1}); err != nil || total != 0 {
		t.Fatalf("%d applications after a refused start (%v)", total, err)
	}
}

// TestGeneratedAdminPostgres: PostgreSQL has no local file for a
// generated secret, so an empty database without configured admin
// credentials does not start, and says which settings are missing.
func TestGeneratedAdminPostgres(t *testing.T) {
	cfg := sqliteConfig(t, t.TempDir())
	cfg.Database = storetest.DSN(t, storetest.Postgres)
	cfg.SecretKey = hex.EncodeToString(bytes.Repeat([]byte{1}, 32))
	var notice bytes.Buffer
	_, err := server.New(context.Background(), cfg, server.NewLogger(io.Discard, "text", "info"), &notice)
	if err == nil || !strings.Contains(err.Error(), "set GATEHOUSE_ADMIN_CLIENT_ID and GATEHOUSE_ADMIN_CLIENT_SECRET") {
		t.Fatalf("err = %v", err)
	}
	if notice.Len() != 0 {
		t.Fatalf("notice: %q", notice.String())
	}
	cfg.AdminClientID, cfg.AdminClientSecret = "admin-app", strings.Repeat("s", 40)
	srv, err := server.New(context.Background(), cfg, server.NewLogger(io.Discard, "text", "info"), &notice)
	if err != nil {
		t.Fatalf("with the admin configured: %v", err)
	}
	srv.Close()
}

// TestWrongMasterKey: a database sealed under one key refuses to start
// under another, and says which setting is wrong.
func TestWrongMasterKey(t *testing.T) {
	dir := t.TempDir()
	cfg := sqliteConfig(t, dir)
	cfg.SecretKey = hex.EncodeToString(bytes.Repeat([]byte{1}, 32))
	srv, err := server.New(context.Background(), cfg, server.NewLogger(io.Discard, "text", "info"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	cfg.SecretKey = hex.EncodeToString(bytes.Repeat([]byte{2}, 32))
	_, err = server.New(context.Background(), cfg, server.NewLogger(io.Discard, "text", "info"), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "GATEHOUSE_SECRET_KEY does not match") {
		t.Fatalf("err = %v", err)
	}
}

// TestCommonHeadersAndHealth: every response carries a request id and the
// security headers; health endpoints answer.
func TestCommonHeadersAndHealth(t *testing.T) {
	cfg := sqliteConfig(t, t.TempDir())
	var logs bytes.Buffer
	srv, err := server.New(context.Background(), cfg, server.NewLogger(&logs, "json", "info"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
		for _, h := range []string{"X-Request-Id", "X-Content-Type-Options", "X-Frame-Options", "Content-Security-Policy", "Referrer-Policy"} {
			if resp.Header.Get(h) == "" {
				t.Errorf("%s: missing %s", path, h)
			}
		}
	}
	resp, err := http.Get(ts.URL + "/healthz?code=secret-in-query")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if strings.Contains(logs.String(), "secret-in-query") {
		t.Error("the access log contains the query string")
	}
	if id := resp.Header.Get("X-Request-Id"); !strings.Contains(logs.String(), `"request_id":"`+id+`"`) {
		t.Errorf("access log lacks the request id %q: %s", id, logs.String())
	}
}

// serve starts cfg's server on a loopback listener and waits until it is
// ready; cancel stops it and done yields what Serve returned.
func serve(t *testing.T, cfg *config.Config) (addr string, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	srv, err := server.New(context.Background(), cfg, server.NewLogger(io.Discard, "text", "info"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, l) }()
	for range 50 {
		if resp, err := http.Get("http://" + l.Addr().String() + "/readyz"); err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return l.Addr().String(), cancel, errc
}

// TestGracefulShutdown: cancelling the context stops Serve cleanly, and a
// request in flight at that moment still gets its answer.
func TestGracefulShutdown(t *testing.T) {
	addr, cancel, done := serve(t, sqliteConfig(t, t.TempDir()))
	// A token request whose body is still arriving when shutdown starts.
	pr, pw := io.Pipe()
	answered := make(chan int, 1)
	go func() {
		resp, err := http.Post("http://"+addr+"/oauth/token", "application/x-www-form-urlencoded", pr)
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	_, _ = pw.Write([]byte("grant_type=client_credentials&client_id="))
	time.Sleep(200 * time.Millisecond)
	cancel()
	time.Sleep(200 * time.Millisecond)
	_, _ = pw.Write([]byte("nobody&client_secret=x&audience=x"))
	pw.Close()
	select {
	case status := <-answered:
		if status != http.StatusUnauthorized {
			t.Errorf("in-flight request answered %d, want the endpoint's 401", status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the in-flight request got no answer")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

// TestAdminGetsItsSecretBack: the configured admin application is how an
// operator gets back in, so a start undoes a switch of it to
// private_key_jwt.
func TestAdminGetsItsSecretBack(t *testing.T) {
	cfg := sqliteConfig(t, t.TempDir())
	cfg.AdminClientID, cfg.AdminClientSecret = "admin-app", strings.Repeat("s", 40)
	start := func() {
		t.Helper()
		srv, err := server.New(context.Background(), cfg, server.NewLogger(io.Discard, "text", "info"), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		srv.Close()
	}
	start()
	st, err := sqlstore.Open(context.Background(), cfg.Database, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.GetClient(context.Background(), "admin-app")
	if err != nil {
		t.Fatal(err)
	}
	c.PrivateKeyJWTCredentials, c.TokenEndpointAuthMethod = []string{"cred_x"}, ""
	if err := st.UpdateClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	start()
	if c, err = st.GetClient(context.Background(), "admin-app"); err != nil || c.PrivateKeyJWTCredentials != nil || c.TokenEndpointAuthMethod != "client_secret_post" {
		t.Fatalf("admin after restart: %+v %v", c, err)
	}
}

// TestMetrics: with GATEHOUSE_METRICS_ADDR, token requests are counted by
// grant and outcome on a listener of their own; the public listener has
// no /metrics.
func TestMetrics(t *testing.T) {
	cfg := sqliteConfig(t, t.TempDir())
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.MetricsAddr = free.Addr().String()
	free.Close()
	addr, cancel, done := serve(t, cfg)
	defer func() {
		cancel()
		<-done
	}()
	base := "http://" + addr + "/"
	get := func(url string) (int, string) {
		t.Helper()
		for range 50 {
			resp, err := http.Get(url)
			if err == nil {
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("GET %s: no answer", url)
		return 0, ""
	}
	for range 2 {
		resp, err := http.Post(base+"oauth/token", "application/x-www-form-urlencoded",
			strings.NewReader("grant_type=client_credentials&client_id=nobody&client_secret=x&audience=x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	status, body := get("http://" + cfg.MetricsAddr + "/metrics")
	for _, want := range []string{
		`gatehouse_token_requests_total{grant="client_credentials",outcome="access_denied"} 2`,
		`gatehouse_token_request_duration_seconds_count{grant="client_credentials"} 2`,
		"go_goroutines",
	} {
		if status != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("metrics lack %q (status %d)", want, status)
		}
	}
	if status, _ := get(base + "metrics"); status != http.StatusNotFound {
		t.Errorf("public /metrics: %d, want 404", status)
	}
}
