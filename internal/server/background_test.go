package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// purgeTestServer is a server on a new SQLite file, not serving.
func purgeTestServer(t *testing.T, logRetention time.Duration) *Server {
	t.Helper()
	return purgeTestServerOn(t, "sqlite:"+filepath.Join(t.TempDir(), "gatehouse.db"), logRetention)
}

// Credentials of the admin application of purgeTestServerOn.
const (
	purgeAdminID     = "purge-admin"
	purgeAdminSecret = "purge-admin-secret-0123456789abcdef"
)

// purgeTestServerOn is a server on the database dsn, not serving.
func purgeTestServerOn(t *testing.T, dsn string, logRetention time.Duration) *Server {
	t.Helper()
	cfg := &config.Config{
		Addr: "127.0.0.1:0", Issuer: "http://127.0.0.1:1/",
		Database:  dsn,
		LogFormat: "text", LogLevel: "info", ManagementTokenLifetime: time.Hour, ShutdownTimeout: time.Second,
		LogRetention:  logRetention,
		AdminClientID: purgeAdminID, AdminClientSecret: purgeAdminSecret,
		SecretKey: strings.Repeat("0f", 32),
	}
	return testServer(t, cfg, nil)
}

// TestPurgeKeepsRotatedFamilies: a family's first token, rotated, is past
// its own idle expiry while its successor lives. The background purge
// keeps it, so that the family's device credential, listed by its id,
// can still be deleted through the Management API, and the reuse of
// another such token is still detected.
func TestPurgeKeepsRotatedFamilies(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			s := purgeTestServerOn(t, storetest.DSN(t, backend), 0)
			ctx := context.Background()
			if err := s.store.CreateClient(ctx, &store.Client{ClientID: "app", Name: "App", AppType: "native"}); err != nil {
				t.Fatal(err)
			}
			const uid = "waad|alice"
			if _, err := s.store.UpsertUser(ctx, &store.User{UserID: uid, Connection: "contoso"}); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
			// Issued two hours ago with an idle lifetime of one hour,
			// rotated 90 minutes ago; the successor idles out in 30.
			family := func(id string) {
				t.Helper()
				err := s.store.CreateRefreshToken(ctx, &store.RefreshToken{ID: id, SecretHash: []byte(id), ClientID: "app", UserID: uid,
					Rotating: true, CreatedAt: *at(-2 * time.Hour), ExpiresAt: at(24 * time.Hour), IdleExpiresAt: at(-time.Hour)})
				if err != nil {
					t.Fatal(err)
				}
				next := &store.RefreshToken{ID: id + "-2", FamilyID: id, SecretHash: []byte(id + "-2"), ClientID: "app", UserID: uid,
					Rotating: true, CreatedAt: *at(-90 * time.Minute), ExpiresAt: at(24 * time.Hour), IdleExpiresAt: at(30 * time.Minute)}
				if err := s.store.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: id, Now: *at(-90 * time.Minute), Next: next}); err != nil {
					t.Fatal(err)
				}
			}
			family("fam1")
			family("fam2")
			s.purge(ctx)

			admin := purgeManagementToken(t, s)
			call := func(method, path string) (int, []byte) {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(method, "http://127.0.0.1:1/"+path, nil)
				req.Header.Set("Authorization", "Bearer "+admin)
				s.Handler().ServeHTTP(rec, req)
				return rec.Code, rec.Body.Bytes()
			}
			list := "api/v2/device-credentials?user_id=" + url.QueryEscape(uid)
			status, raw := call("GET", list)
			if status != http.StatusOK || !strings.Contains(string(raw), `"id":"fam1"`) {
				t.Fatalf("list: %d %s", status, raw)
			}
			if status, raw := call("DELETE", "api/v2/device-credentials/fam1"); status != http.StatusNoContent {
				t.Fatalf("delete a listed credential after the purge: %d %s", status, raw)
			}
			if status, raw := call("GET", list); status != http.StatusOK || strings.Contains(string(raw), `"id":"fam1"`) {
				t.Errorf("list after delete: %d %s", status, raw)
			}

			err := s.store.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: "fam2", Now: now, Next: &store.RefreshToken{
				ID: "fam2-3", FamilyID: "fam2", SecretHash: []byte("fam2-3"), ClientID: "app", UserID: uid, Rotating: true, CreatedAt: now}})
			if !errors.Is(err, store.ErrRefreshTokenReused) {
				t.Fatalf("reuse of a purged family's rotated token: %v", err)
			}
			if _, err := s.store.GetRefreshToken(ctx, "fam2-2"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("successor after reuse: %v", err)
			}
		})
	}
}

// purgeManagementToken is a Management API token of the admin application
// of purgeTestServerOn.
func purgeManagementToken(t *testing.T, s *Server) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {purgeAdminID}, "client_secret": {purgeAdminSecret},
		"audience": {"http://127.0.0.1:1/api/v2/"}}
	req := httptest.NewRequest("POST", "http://127.0.0.1:1/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("management token: %d %s", rec.Code, rec.Body)
	}
	return tok.AccessToken
}

// TestPurgeLogEvents: events older than GATEHOUSE_LOG_RETENTION go, batch
// after batch; younger ones stay; with retention 0 nothing goes.
func TestPurgeLogEvents(t *testing.T) {
	for _, c := range []struct {
		retention time.Duration
		want      int
	}{{24 * time.Hour, 1}, {0, purgeBatch + 4}} {
		t.Run(c.retention.String(), func(t *testing.T) {
			s := purgeTestServer(t, c.retention)
			ctx := context.Background()
			old := time.Now().Add(-48 * time.Hour)
			for i := range purgeBatch + 3 {
				if err := s.store.AppendLogEvent(ctx, &store.LogEvent{Type: "sertft", Date: old.Add(time.Duration(i) * time.Millisecond)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.store.AppendLogEvent(ctx, &store.LogEvent{Type: "sepft"}); err != nil {
				t.Fatal(err)
			}
			s.purge(ctx)
			left, total, err := s.store.ListLogEvents(ctx, store.LogFilter{}, store.ListOptions{})
			if err != nil || total != c.want || (c.retention != 0 && left[0].Type != "sepft") {
				t.Fatalf("%d events left (%v), want %d", total, err, c.want)
			}
		})
	}
}

// TestPurgeAttackRows: the background purge removes counters idle past the
// brute-force expiry, batch after batch, and keeps recent ones.
func TestPurgeAttackRows(t *testing.T) {
	s := purgeTestServer(t, 0)
	ctx := context.Background()
	long := time.Now().Add(-60 * 24 * time.Hour)
	take := func(id, ip string, at time.Time) {
		c := store.AttackCounter{Kind: store.AttackBruteForce, Connection: "c", Identifier: id, IP: ip}
		if _, err := s.store.TakeAttempt(ctx, c, 10, at, at.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range purgeBatch + 3 {
		take("stale@example.com", fmt.Sprintf("198.51.%d.%d", i/256, i%256), long)
	}
	take("fresh@example.com", "192.0.2.1", time.Now())
	s.purge(ctx)
	if got, err := s.store.ListAttackCounters(ctx, "stale@example.com", time.Time{}); err != nil || len(got) != 0 {
		t.Fatalf("stale counters left: %d (%v)", len(got), err)
	}
	if got, err := s.store.ListAttackCounters(ctx, "fresh@example.com", time.Time{}); err != nil || len(got) != 1 {
		t.Fatalf("fresh counter: %d (%v)", len(got), err)
	}
}

// TestPurgeDeletedConnectionUsers: DELETE /api/v2/connections/{id}
// answers 202 and the background purge deletes the connection's users
// afterwards, as Auth0 does; a user of another connection stays.
func TestPurgeDeletedConnectionUsers(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			s := purgeTestServerOn(t, storetest.DSN(t, backend), 0)
			ctx := context.Background()
			for _, c := range []*store.Connection{{ID: "con_contoso", Name: "contoso", Strategy: "waad"}, {ID: "con_fabrikam", Name: "fabrikam", Strategy: "waad"}} {
				if err := s.store.CreateConnection(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			last := time.Now().Add(-time.Hour)
			for _, u := range []*store.User{{UserID: "waad|alice", Connection: "contoso"}, {UserID: "waad|bob", Connection: "contoso"},
				{UserID: "waad|carol", Connection: "fabrikam"}} {
				u.LastLogin = &last
				if _, err := s.store.UpsertUser(ctx, u); err != nil {
					t.Fatal(err)
				}
			}
			admin := purgeManagementToken(t, s)
			call := func(method, path string) (int, string) {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(method, "http://127.0.0.1:1/"+path, nil)
				req.Header.Set("Authorization", "Bearer "+admin)
				s.Handler().ServeHTTP(rec, req)
				return rec.Code, rec.Body.String()
			}
			if status, body := call("DELETE", "api/v2/connections/con_contoso"); status != http.StatusAccepted || !strings.Contains(body, `"deleted_at"`) {
				t.Fatalf("delete: %d %s", status, body)
			}
			if status, body := call("GET", "api/v2/users"); status != http.StatusOK || !strings.Contains(body, `"waad|alice"`) {
				t.Fatalf("users before the purge: %d %s", status, body)
			}
			s.purge(ctx)
			status, body := call("GET", "api/v2/users")
			if status != http.StatusOK || strings.Contains(body, `"waad|alice"`) || strings.Contains(body, `"waad|bob"`) ||
				!strings.Contains(body, `"waad|carol"`) {
				t.Fatalf("users after the purge: %d %s", status, body)
			}
		})
	}
}

// TestPurgeDeletedOwnerClearsCache: the background purge that finishes
// the deletion of a client a crash cut short (its row in refresh_purges,
// the client still there) clears the cache, as the Management API's
// deletion does: the token endpoint, which read the client a moment
// before, stops taking its credentials at once, not when the cache
// expires.
func TestPurgeDeletedOwnerClearsCache(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "gatehouse.db")
	s := purgeTestServerOn(t, dsn, 0)
	ctx := context.Background()
	purgeManagementToken(t, s)
	if _, err := storetest.RawDB(t, dsn).ExecContext(ctx,
		"INSERT INTO refresh_purges (kind, id, name, last_token) VALUES ('client', $1, $1, 0)", purgeAdminID); err != nil {
		t.Fatal(err)
	}
	s.purge(ctx)
	if _, err := s.store.GetClient(ctx, purgeAdminID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("client after the purge: %v", err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {purgeAdminID}, "client_secret": {purgeAdminSecret},
		"audience": {"http://127.0.0.1:1/api/v2/"}}
	req := httptest.NewRequest("POST", "http://127.0.0.1:1/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("token for the deleted client: %d %s, want 401", rec.Code, rec.Body)
	}
}
