package management_test

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestRefreshTokensOfUnknownUser: revoking the refresh tokens of a user
// that does not exist is a 404, as listing them is (node-auth0 declares
// NotFoundError for both), not a success that revoked nothing: an
// administrator who mistyped the id must not believe the tokens revoked.
func TestRefreshTokensOfUnknownUser(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			for _, method := range []string{"GET", "DELETE"} {
				status, _, v := a.call(method, "/api/v2/users/waad%7Cnobody/refresh-tokens", nil)
				errorIs(t, status, v, http.StatusNotFound, "inexistent_user", "The user does not exist.")
			}
		})
	}
}

// TestRefreshTokenByID: GET /api/v2/refresh-tokens/{id} shows exactly the
// tokens the user's list shows, on both backends. Before, an idle- or
// absolutely-expired token, which the list leaves out and no exchange
// accepts, was still shown by id, while a rotated one was not. DELETE by
// id, of the refresh token or of the device credential, still revokes
// whatever family the store holds, listed or not, as documented.
func TestRefreshTokenByID(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			a := start(t, backend)
			st, err := sqlstore.Open(t.Context(), a.Config.Database, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			const uid = "waad|alice"
			if _, err := st.UpsertUser(t.Context(), &store.User{UserID: uid, Connection: "contoso"}); err != nil {
				t.Fatal(err)
			}
			app := a.must(http.StatusCreated, "POST", "/api/v2/clients", map[string]any{"name": "app", "grant_types": []string{"refresh_token"}})["client_id"].(string)
			now := time.Now()
			at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
			create := func(id string, expires, idle time.Duration) {
				t.Helper()
				err := st.CreateRefreshToken(t.Context(), &store.RefreshToken{ID: id, SecretHash: []byte(id), ClientID: app, UserID: uid,
					Rotating: true, CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: at(expires), IdleExpiresAt: at(idle)})
				if err != nil {
					t.Fatal(err)
				}
			}
			create("live", 24*time.Hour, time.Hour)
			create("idle", 24*time.Hour, -time.Minute)
			create("expired", -time.Minute, time.Hour)
			create("rotated", 24*time.Hour, time.Hour)
			next := &store.RefreshToken{ID: "rotated-2", FamilyID: "rotated", SecretHash: []byte("rotated-2"), ClientID: app, UserID: uid,
				Rotating: true, CreatedAt: now.Add(-time.Hour), ExpiresAt: at(24 * time.Hour), IdleExpiresAt: at(time.Hour)}
			if err := st.ExchangeRefreshToken(t.Context(), store.RefreshExchange{ID: "rotated", Now: now.Add(-time.Hour), Next: next}); err != nil {
				t.Fatal(err)
			}

			ids := func(path, key string) []string {
				t.Helper()
				status, _, v := a.call("GET", path, nil)
				m, _ := v.(map[string]any)
				if status != http.StatusOK || m == nil {
					t.Fatalf("GET %s: %d %v", path, status, v)
				}
				items, _ := m[key].([]any)
				var out []string
				for _, it := range items {
					out = append(out, it.(map[string]any)["id"].(string))
				}
				slices.Sort(out)
				return out
			}
			tokens := "/api/v2/users/" + url.PathEscape(uid) + "/refresh-tokens"
			credentials := "/api/v2/device-credentials?include_totals=true&user_id=" + url.QueryEscape(uid)
			if got := ids(tokens, "tokens"); !slices.Equal(got, []string{"live", "rotated-2"}) {
				t.Fatalf("listed tokens %v", got)
			}
			if got := ids(credentials, "device_credentials"); !slices.Equal(got, []string{"live", "rotated"}) {
				t.Fatalf("listed credentials %v", got)
			}
			for _, tc := range []struct {
				id     string
				listed bool
			}{{"live", true}, {"rotated-2", true}, {"idle", false}, {"expired", false}, {"rotated", false}, {"never-issued", false}} {
				status, _, v := a.call("GET", "/api/v2/refresh-tokens/"+tc.id, nil)
				if tc.listed {
					if m, _ := v.(map[string]any); status != http.StatusOK || m["id"] != tc.id {
						t.Errorf("GET %s: %d %v", tc.id, status, v)
					}
					continue
				}
				if m, _ := v.(map[string]any); status != http.StatusNotFound || m["errorCode"] != "refresh_token_not_found" || m["message"] != "The refresh token does not exist" {
					t.Errorf("GET %s, which the list leaves out: %d %v, want 404 refresh_token_not_found", tc.id, status, v)
				}
			}

			for _, tc := range []struct{ path, code string }{
				// A rotated token's id ends its family, the live successor
				// included.
				{"/api/v2/refresh-tokens/rotated", "refresh_token_not_found"},
				{"/api/v2/refresh-tokens/idle", "refresh_token_not_found"},
				{"/api/v2/device-credentials/expired", "inexistent_device_credential"},
			} {
				if status, _, v := a.call("DELETE", tc.path, nil); status != http.StatusNoContent {
					t.Errorf("DELETE %s, not listed but stored: %d %v, want 204", tc.path, status, v)
				}
				if status, _, v := a.call("DELETE", tc.path, nil); status != http.StatusNotFound || v.(map[string]any)["errorCode"] != tc.code {
					t.Errorf("DELETE %s again: %d %v, want 404 %s", tc.path, status, v, tc.code)
				}
			}
			if status, _, v := a.call("GET", "/api/v2/refresh-tokens/rotated-2", nil); status != http.StatusNotFound {
				t.Errorf("the successor of a deleted rotated token: %d %v", status, v)
			}
			if got := ids(tokens, "tokens"); !slices.Equal(got, []string{"live"}) {
				t.Errorf("listed tokens after the deletes %v", got)
			}
			for _, id := range []string{"idle", "expired", "rotated", "rotated-2"} {
				if _, err := st.GetRefreshToken(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("%s is still stored: %v", id, err)
				}
			}
		})
	}
}
