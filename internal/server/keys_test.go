package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestReplicaBehindOnMasterKeyStopsSigningWithRevokedKey: replica B runs
// with only the old master key while A seals with a new one
// (GATEHOUSE_SECRET_KEY_OLD holding the old). After two rotations through
// A, B cannot load the key that signs and goes on signing with the one
// before. Once A revokes that key, B's next reload takes it out of B's
// JWKS and Management API, and B's token endpoint answers 500
// server_error rather than a token signed with it.
func TestReplicaBehindOnMasterKeyStopsSigningWithRevokedKey(t *testing.T) {
	const (
		oldMaster = "1111111111111111111111111111111111111111111111111111111111111111"
		newMaster = "2222222222222222222222222222222222222222222222222222222222222222"
	)
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			dsn := storetest.DSN(t, backend)
			start := func(admin, key, old string) *Server {
				t.Helper()
				cfg := &config.Config{
					Addr: "127.0.0.1:0", Issuer: "http://127.0.0.1:1/", Database: dsn,
					LogFormat: "text", LogLevel: "info", ManagementTokenLifetime: time.Hour, ShutdownTimeout: time.Second,
					AdminClientID: admin, AdminClientSecret: admin + "-secret-0123456789abcdef0123456789",
					SecretKey: key, SecretKeyOld: old,
				}
				if err := cfg.Validate(); err != nil {
					t.Fatal(err)
				}
				s, err := New(ctx, cfg, NewLogger(io.Discard, "text", "info"), io.Discard)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			b := start("admin-b", oldMaster, "")
			a := start("admin-a", newMaster, oldMaster)

			do := func(s *Server, method, path, token string, form url.Values) (int, string) {
				t.Helper()
				var body io.Reader
				if form != nil {
					body = strings.NewReader(form.Encode())
				}
				req := httptest.NewRequest(method, "http://127.0.0.1:1/"+path, body)
				if form != nil {
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				rec := httptest.NewRecorder()
				s.Handler().ServeHTTP(rec, req)
				return rec.Code, rec.Body.String()
			}
			tokenRequest := func(admin string) url.Values {
				return url.Values{"grant_type": {"client_credentials"}, "client_id": {admin},
					"client_secret": {admin + "-secret-0123456789abcdef0123456789"}, "audience": {"http://127.0.0.1:1/api/v2/"}}
			}
			token := func(s *Server, admin string) (tok, kid string) {
				t.Helper()
				status, raw := do(s, "POST", "oauth/token", "", tokenRequest(admin))
				var body struct {
					AccessToken string `json:"access_token"`
				}
				if err := json.Unmarshal([]byte(raw), &body); status != http.StatusOK || err != nil {
					t.Fatalf("token: %d %s", status, raw)
				}
				head, _, _ := strings.Cut(body.AccessToken, ".")
				h, err := base64.RawURLEncoding.DecodeString(head)
				var header struct{ Kid string }
				if err == nil {
					err = json.Unmarshal(h, &header)
				}
				if err != nil {
					t.Fatalf("JWT header: %v", err)
				}
				return body.AccessToken, header.Kid
			}
			mustDo := func(s *Server, method, path, token string, want int) {
				t.Helper()
				if status, raw := do(s, method, path, token, nil); status != want {
					t.Fatalf("%s %s: %d %s, want %d", method, path, status, raw, want)
				}
			}

			adminA, _ := token(a, "admin-a")
			// B's next key is sealed under the old master key: B follows
			// the first rotation.
			mustDo(a, "POST", "api/v2/keys/signing/rotate", adminA, http.StatusCreated)
			if err := b.keys.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			adminB, kid := token(b, "admin-b")
			mustDo(a, "POST", "api/v2/keys/signing/rotate", adminA, http.StatusCreated)
			if err := b.keys.Reload(ctx); err == nil {
				t.Fatal("B loaded a key sealed under a master key it lacks")
			}
			if _, signing := token(b, "admin-b"); signing != kid {
				t.Fatalf("B signs with %s after a rotation it cannot follow, want %s", signing, kid)
			}
			mustDo(b, "GET", "api/v2/keys/signing", adminB, http.StatusOK)
			mustDo(a, "PUT", "api/v2/keys/signing/"+kid+"/revoke", adminA, http.StatusOK)
			if err := b.keys.Reload(ctx); err == nil {
				t.Fatal("B loaded a key sealed under a master key it lacks")
			}

			if status, raw := do(b, "GET", ".well-known/jwks.json", "", nil); status != http.StatusOK || strings.Contains(raw, `"kid":"`+kid+`"`) {
				t.Errorf("B's JWKS after the revocation: %d, publishes %s: %t", status, kid, strings.Contains(raw, kid))
			}
			if status, raw := do(b, "GET", "api/v2/keys/signing", adminB, nil); status != http.StatusUnauthorized {
				t.Errorf("B's Management API with a token of the revoked key: %d %s, want 401", status, raw)
			}
			// docs/errors.md: a failure of Gatehouse itself at the token
			// endpoint is 500 server_error "Internal error.".
			status, raw := do(b, "POST", "oauth/token", "", tokenRequest("admin-b"))
			if want := `{"error":"server_error","error_description":"Internal error."}`; status != http.StatusInternalServerError || strings.TrimSpace(raw) != want {
				t.Errorf("B's token endpoint with its signing key revoked: %d %s, want 500 %s", status, raw, want)
			}
			if status, _ := do(b, "GET", "readyz", "", nil); status != http.StatusServiceUnavailable {
				t.Errorf("B's /readyz: %d, want 503", status)
			}
		})
	}
}
