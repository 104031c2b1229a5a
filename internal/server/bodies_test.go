package server

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// endless is a body that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

// servedOnLoopback runs a whole Gatehouse through Serve, the limits of
// the real listener included, logging at debug level to logs.
func servedOnLoopback(t *testing.T, logs io.Writer) (base string) {
	t.Helper()
	cfg := &config.Config{
		Addr: "127.0.0.1:0", Issuer: "http://127.0.0.1:1/",
		Database:  "sqlite:" + filepath.Join(t.TempDir(), "gatehouse.db"),
		LogFormat: "text", LogLevel: "debug", ManagementTokenLifetime: time.Hour, ShutdownTimeout: time.Second,
		AdminClientID: purgeAdminID, AdminClientSecret: purgeAdminSecret,
		SecretKey: strings.Repeat("0f", 32),
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := New(t.Context(), cfg, NewLogger(logs, cfg.LogFormat, cfg.LogLevel), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	addr, cancel, done := serveLoopback(t, s)
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + addr
}

func adminToken(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.PostForm(base+"/oauth/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {purgeAdminID}, "client_secret": {purgeAdminSecret}, "audience": {"http://127.0.0.1:1/api/v2/"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		t.Fatalf("admin token: %d %v", resp.StatusCode, err)
	}
	return body.AccessToken
}

// TestHugeBodies: a 100 MB body, with a Content-Length or chunked without
// end, to every endpoint that reads one is answered 413 in the endpoint's
// own error format once the limit is read, and the server's memory does
// not grow with what the client sends. Endpoints that read no body answer
// as if there were none.
func TestHugeBodies(t *testing.T) {
	base := servedOnLoopback(t, io.Discard)
	token := adminToken(t, base)
	const oauth413 = `{"error":"invalid_request","error_description":"Request body exceeds 65536 bytes."}`
	const mgmt413 = `{"statusCode":413,"error":"Request Entity Too Large","message":"Payload exceeds 1048576 bytes","errorCode":"payload_too_large"}`
	for _, tc := range []struct {
		method, path, contentType string
		status                    int
		body                      string
	}{
		{"POST", "/oauth/token", "application/x-www-form-urlencoded", 413, oauth413},
		{"POST", "/oauth/token", "application/json; charset=utf-8", 413, oauth413},
		{"POST", "/oauth/revoke", "application/x-www-form-urlencoded", 413, oauth413},
		{"POST", "/api/v2/clients", "application/json", 413, mgmt413},
		{"PATCH", "/api/v2/clients/" + purgeAdminID, "application/json", 413, mgmt413},
		{"PATCH", "/api/v2/tenants/settings", "application/json", 413, mgmt413},
		{"PATCH", "/api/v2/attack-protection/brute-force-protection", "application/json", 413, mgmt413},
		{"POST", "/api/v2/connections/con_x/try", "application/json", 413, mgmt413},
		{"POST", "/userinfo", "application/x-www-form-urlencoded", 401, "Unauthorized"},
		{"GET", "/healthz", "application/json", 200, `{"status":"ok"}`},
	} {
		for _, chunked := range []bool{false, true} {
			name := fmt.Sprintf("%s %s %s chunked=%v", tc.method, tc.path, tc.contentType, chunked)
			var body io.Reader = io.LimitReader(endless{}, 100<<20)
			if chunked {
				body = endless{}
			}
			req, err := http.NewRequest(tc.method, base+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if !chunked {
				req.ContentLength = 100 << 20
			}
			req.Header.Set("Content-Type", tc.contentType)
			req.Header.Set("Authorization", "Bearer "+token)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			runtime.ReadMemStats(&after)
			if resp.StatusCode != tc.status || strings.TrimSpace(string(raw)) != tc.body {
				t.Errorf("%s: %d %s, want %d %s", name, resp.StatusCode, raw, tc.status, tc.body)
			}
			// Client and server share the process: both together may
			// allocate a few times the 1 MiB limit, never the 100 MB sent.
			if grown := after.TotalAlloc - before.TotalAlloc; grown > 16<<20 {
				t.Errorf("%s: %d MB allocated", name, grown>>20)
			}
		}
	}
}

// TestSlowBody: a body dribbled slower than the whole-request limit
// allows is cut off; the connection does not stay held.
func TestSlowBody(t *testing.T) {
	saved := httpLimits
	t.Cleanup(func() { httpLimits = saved })
	httpLimits.read = 500 * time.Millisecond
	base := servedOnLoopback(t, io.Discard)
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant_type=")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := c.Write([]byte("a")); err != nil {
				return
			}
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("a body dribbled for 5 s is still being read")
		}
		return // closed without an answer
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("dribbled body: %d, want 400 or a closed connection", resp.StatusCode)
	}
}
