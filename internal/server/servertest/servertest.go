// Package servertest runs a whole Gatehouse — the real handler from
// server.New on a real database — behind a loopback HTTP server, for
// black-box tests of the Authentication and Management APIs.
package servertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// Env is a running Gatehouse.
type Env struct {
	// URL is the issuer: the server's base URL ending in "/".
	URL         string
	Config      *config.Config
	Server      *server.Server
	AdminID     string
	AdminSecret string
	// Logs holds everything the server logged, for secret scans.
	Logs *Buffer
}

// Buffer is a goroutine-safe log sink.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Option adjusts the configuration before the server is built.
type Option func(*config.Config)

// AllowUpstream allows connections to name the base URLs (an in-process
// Entra emulator) as authority_host and graph_host, as an operator does
// with GATEHOUSE_UPSTREAM_HOSTS.
func AllowUpstream(urls ...string) Option {
	return func(c *config.Config) { c.UpstreamHosts = append(c.UpstreamHosts, urls...) }
}

// Start runs Gatehouse on a fresh database of backend (storetest.SQLite or
// storetest.Postgres; the latter skips when GATEHOUSE_TEST_POSTGRES is
// unset) and stops it when the test ends.
func Start(t testing.TB, backend string, opts ...Option) *Env {
	t.Helper()
	return StartWith(t, backend, nil, opts...)
}

// StartWith is Start with options for server.New too, e.g. a short
// upstream timeout (server.WithEntraOptions).
func StartWith(t testing.TB, backend string, serverOpts []server.Option, opts ...Option) *Env {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String() + "/"
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	cfg := &config.Config{
		Addr:                    ts.Listener.Addr().String(),
		Issuer:                  issuer,
		Database:                storetest.DSN(t, backend),
		AdminClientID:           "admin-" + randomHex(8),
		AdminClientSecret:       "admin-secret-" + randomHex(24),
		SecretKey:               hex.EncodeToString(key),
		LogFormat:               "json",
		LogLevel:                "debug",
		ManagementTokenLifetime: 24 * time.Hour,
		ShutdownTimeout:         5 * time.Second,
	}
	for _, o := range opts {
		o(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("servertest: config: %v", err)
	}
	logs := &Buffer{}
	logger := server.NewLogger(logs, cfg.LogFormat, cfg.LogLevel)
	srv, err := server.New(context.Background(), cfg, logger, io.Discard, serverOpts...)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Config.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
	})
	return &Env{URL: issuer, Config: cfg, Server: srv, AdminID: cfg.AdminClientID, AdminSecret: cfg.AdminClientSecret, Logs: logs}
}

// ManagementToken returns a Management API token of the admin application,
// narrowed to scopes when any are given.
func (e *Env) ManagementToken(t testing.TB, scopes ...string) string {
	t.Helper()
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {e.AdminID},
		"client_secret": {e.AdminSecret},
		"audience":      {e.URL + "api/v2/"},
	}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	resp, err := http.PostForm(e.URL+"oauth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("servertest: management token: status %d, %v", resp.StatusCode, err)
	}
	return body.AccessToken
}

// MustDo is Do for a call that must succeed: it fails the test on any
// status from 300 up and returns the body decoded as a JSON object (nil
// when it is not one).
func (e *Env) MustDo(t testing.TB, method, path, token string, body any) map[string]any {
	t.Helper()
	status, _, raw := e.Do(t, method, path, token, body)
	if status >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, status, raw)
	}
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return m
}

// Do sends a request with an optional JSON body and bearer token and
// returns the status, the headers and the body.
func (e *Env) Do(t testing.TB, method, path, token string, body any) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case string:
			rd = strings.NewReader(b)
		default:
			raw, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			rd = strings.NewReader(string(raw))
		}
	}
	req, err := http.NewRequest(method, e.URL+strings.TrimPrefix(path, "/"), rd)
	if err != nil {
		t.Fatal(err)
	}
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
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, raw
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
