package oauth_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestTokenLifetimesBounded: lifetimes stored beyond what the Management
// API accepts (written behind its back, e.g. by an older release or a
// restore) never yield a token that outlives the publication of its
// signing key, nor one born expired, and expires_in stays exp - iat.
func TestTokenLifetimesBounded(t *testing.T) {
	const maxLifetime = 30 * 24 * 3600
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{quietLogs: true})
			api := "https://api.contoso.example/"
			status, body := e.api(t, "POST", "api/v2/resource-servers", map[string]any{"identifier": api, "name": "Contoso API", "token_lifetime": 3600})
			if status != http.StatusCreated {
				t.Fatalf("create API: %d %v", status, body)
			}
			db := openDB(t, e.dsn)
			patchDoc := func(table, key, id, field string, v any) {
				t.Helper()
				var raw string
				if err := db.QueryRow("SELECT doc FROM "+table+" WHERE "+key+" = $1", id).Scan(&raw); err != nil {
					t.Fatal(err)
				}
				var doc map[string]any
				if err := json.Unmarshal([]byte(raw), &doc); err != nil {
					t.Fatal(err)
				}
				doc[field] = v
				b, _ := json.Marshal(doc)
				if _, err := db.Exec("UPDATE "+table+" SET doc = $2 WHERE "+key+" = $1", id, string(b)); err != nil {
					t.Fatal(err)
				}
			}
			// 40 days for the id_token; for the API, seconds whose
			// nanoseconds overflow an int64.
			patchDoc("clients", "client_id", e.clientID, "jwt_configuration", map[string]any{"alg": "RS256", "lifetime_in_seconds": 40 * 24 * 3600})
			patchDoc("resource_servers", "id", body["id"].(string), "token_lifetime", 9_300_000_000)

			r := e.token(t, url.Values{
				"grant_type": {"http://auth0.com/oauth/grant-type/password-realm"}, "client_id": {e.clientID},
				"realm": {"contoso-v2"}, "username": {"alice@contoso.com"}, "password": {"Alice-Passw0rd!"},
				"scope": {"openid"}, "audience": {api},
			})
			if r.status != http.StatusOK {
				t.Fatalf("login: %d %s", r.status, r.raw)
			}
			lifetime := func(jwt string) int64 {
				c := jwtClaims(t, jwt)
				return int64(c["exp"].(float64) - c["iat"].(float64))
			}
			at, expiresIn := lifetime(r.str("access_token")), int64(r.body["expires_in"].(float64))
			if at != maxLifetime || expiresIn != at {
				t.Errorf("access token lives %ds, expires_in %d; want both %d", at, expiresIn, maxLifetime)
			}
			if id := lifetime(r.str("id_token")); id != maxLifetime {
				t.Errorf("id_token lives %ds, want %d", id, maxLifetime)
			}
		})
	}
}
