package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	emulator "github.com/gatehouse/gatehouse/emulator/entra"
	"github.com/gatehouse/gatehouse/emulator/entra/entratest"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestReplicaBehindOnMasterKeyStopsSigningWithRevokedKey: replica B runs
// with only the old master key while A seals with a new one
// (GATEHOUSE_SECRET_KEY_OLD holding the old). After a rotation through B
// and one through A, which seals its next key under the new master key, B
// cannot load the keys and goes on signing with the one before. Once A revokes that key, B's next reload takes it out of B's
// JWKS and Management API, and B's token endpoint answers 500
// server_error rather than a token signed with it; a password login that
// needs a signature is refused before the password goes to Entra.
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
			var upstreamLogins atomic.Int32
			_, emuURL := entratest.Start(t, entratest.Example(t), emulator.Options{}, func(emu http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/token") {
						upstreamLogins.Add(1)
					}
					emu.ServeHTTP(w, r)
				})
			})
			start := func(admin, key, old string) *Server {
				t.Helper()
				cfg := &config.Config{
					Addr: "127.0.0.1:0", Issuer: "http://127.0.0.1:1/", Database: dsn,
					LogFormat: "text", LogLevel: "info", ManagementTokenLifetime: time.Hour, ShutdownTimeout: time.Second,
					AdminClientID: admin, AdminClientSecret: admin + "-secret-0123456789abcdef0123456789",
					SecretKey: key, SecretKeyOld: old, UpstreamHosts: []string{emuURL},
				}
				return testServer(t, cfg, nil)
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
			adminB, _ := token(b, "admin-b")
			// B seals the next key of its own rotation under the old
			// master key.
			mustDo(b, "POST", "api/v2/keys/signing/rotate", adminB, http.StatusCreated)
			adminB, kid := token(b, "admin-b")
			// The connection's secret is sealed by B, so that B can use it
			// after it falls behind.
			api := func(s *Server, method, path, token string, body any) string {
				t.Helper()
				raw, _ := json.Marshal(body)
				req := httptest.NewRequest(method, "http://127.0.0.1:1/"+path, bytes.NewReader(raw))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+token)
				rec := httptest.NewRecorder()
				s.Handler().ServeHTTP(rec, req)
				if rec.Code != http.StatusCreated {
					t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
				}
				return rec.Body.String()
			}
			var app struct {
				ClientID string `json:"client_id"`
			}
			_ = json.Unmarshal([]byte(api(b, "POST", "api/v2/clients", adminB, map[string]any{"name": "Mobile", "app_type": "native",
				"token_endpoint_auth_method": "none", "grant_types": []string{"http://auth0.com/oauth/grant-type/password-realm"}})), &app)
			api(b, "POST", "api/v2/connections", adminB, map[string]any{"name": "contoso", "strategy": "waad",
				"enabled_clients": []string{app.ClientID}, "options": map[string]any{
					"client_id": "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b", "client_secret": "native-secret-value",
					"tenant_domain": "contoso.onmicrosoft.com", "authority_host": emuURL, "graph_host": emuURL}})
			login := func(scope string) (int, string) {
				return do(b, "POST", "oauth/token", "", url.Values{"grant_type": {"http://auth0.com/oauth/grant-type/password-realm"},
					"realm": {"contoso"}, "client_id": {app.ClientID}, "username": {"alice@contoso.com"},
					"password": {"Alice-Passw0rd!"}, "scope": {scope}})
			}
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
			before := upstreamLogins.Load()
			if status, raw := login("openid profile"); status != http.StatusInternalServerError ||
				strings.TrimSpace(raw) != `{"error":"server_error","error_description":"Internal error."}` || upstreamLogins.Load() != before {
				t.Errorf("B's password login that needs an id_token: %d %s, upstream calls %d → %d; want 500 and none",
					status, raw, before, upstreamLogins.Load())
			}
			// One that needs no signature (an opaque access token) still works.
			if status, raw := login("email"); status != http.StatusOK || upstreamLogins.Load() != before+1 {
				t.Errorf("B's password login without a signature: %d %s", status, raw)
			}
		})
	}
}
