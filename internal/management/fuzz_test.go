package management

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/attack"
)

// FuzzPatchSettings: any JSON body decodes into settings or is refused
// with a 4xx Management API error; what is accepted also validates the
// way the store would accept it.
func FuzzPatchSettings(f *testing.F) {
	f.Add(`{"max_attempts":3}`)
	f.Add(`{"enabled":false,"shields":["block"],"allowlist":["10.0.0.0/8","::1"],"mode":"count_per_identifier"}`)
	f.Add(`{"stage":{"pre-login":{"max_attempts":1,"rate":1}}}`)
	f.Add(`{"max_attempts":1e400}`)
	f.Add(`{"allowlist":null}`)
	f.Add(`[]`)
	f.Add(`{"a":{"b":{"c":[{}]}}}`)
	f.Fuzz(func(t *testing.T, body string) {
		for _, cur := range []any{ptr(attack.DefaultBruteForce()), ptr(attack.DefaultSuspiciousIP())} {
			r := httptest.NewRequest(http.MethodPatch, "/", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			schema := bruteForceSchema
			if _, ok := cur.(*attack.SuspiciousIP); ok {
				schema = suspiciousIPSchema
			}
			patch, err := decodeSettings(r, schema)
			if err == nil {
				err = patchSettings(patch, cur)
			}
			if err != nil {
				var me *Error
				if !errors.As(err, &me) || me.Status < 400 || me.Status > 499 {
					t.Fatalf("refusal is not a 4xx: %v", err)
				}
			}
		}
	})
}

func ptr[T any](v T) *T { return &v }

// FuzzBearer: any Authorization header is refused with 400 or 401, or
// reaches the handler only with the one valid token; no answer echoes
// the presented credential.
func FuzzBearer(f *testing.F) {
	f.Add("Bearer good-token")
	f.Add("bearer   good-token  ")
	f.Add("Bearer")
	f.Add("Basic Zm9vOmJhcg==")
	f.Add("Bearer secret-canary-token")
	f.Add("Bearer \x00\xff")
	a := New(Config{Logger: slog.New(slog.DiscardHandler), Verify: func(_ context.Context, raw string) ([]string, string, time.Time, error) {
		if raw == "good-token" {
			return []string{"read:users"}, "admin", time.Now(), nil
		}
		return nil, "", time.Time{}, errors.New("bad token")
	}})
	f.Fuzz(func(t *testing.T, authz string) {
		reached := false
		h := a.requireScope("read:users", func(w http.ResponseWriter, r *http.Request) { reached = true })
		r := httptest.NewRequest(http.MethodGet, "/api/v2/users", nil)
		r.Header["Authorization"] = []string{authz}
		w := httptest.NewRecorder()
		h(w, r)
		if reached {
			_, tok, _ := strings.Cut(authz, " ")
			if strings.TrimSpace(tok) != "good-token" {
				t.Fatalf("handler reached with %q", authz)
			}
			return
		}
		if w.Code != http.StatusBadRequest && w.Code != http.StatusUnauthorized {
			t.Fatalf("status %d for %q", w.Code, authz)
		}
		if _, tok, ok := strings.Cut(authz, " "); ok && len(strings.TrimSpace(tok)) >= 8 && strings.Contains(w.Body.String(), strings.TrimSpace(tok)) {
			t.Fatalf("answer echoes the credential: %s", w.Body)
		}
	})
}
