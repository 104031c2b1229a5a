package oauth_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/secrets"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/tokens"
)

// TestTokenFromAReplicaAhead: a token another replica signed a moment ago
// is accepted at /userinfo and by the Management API although that
// replica's clock runs a little ahead (iat is in whole seconds, so even
// milliseconds apart put it in the future here); a token dated well ahead
// is still refused.
func TestTokenFromAReplicaAhead(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{})
			if r := e.login(t, "contoso-v2", "alice@contoso.com", "Alice-Passw0rd!", "openid"); r.status != 200 {
				t.Fatalf("login: %d %s", r.status, r.raw)
			}
			// The other replica: the same database and master key.
			st, err := sqlstore.Open(t.Context(), e.dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			master, err := secrets.ParseMasterKey(e.secretKey)
			if err != nil {
				t.Fatal(err)
			}
			kr, err := secrets.NewKeyring(master)
			if err != nil {
				t.Fatal(err)
			}
			other, err := tokens.NewKeys(t.Context(), st, kr, nil)
			if err != nil {
				t.Fatal(err)
			}
			sign := func(ahead time.Duration, claims map[string]any) string {
				t.Helper()
				now := time.Now().Add(ahead)
				claims["iss"], claims["iat"], claims["exp"] = e.url, now.Unix(), now.Add(time.Hour).Unix()
				tok, err := other.Sign(claims)
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}
			call := func(path, tok string) int {
				t.Helper()
				req, _ := http.NewRequest("GET", e.url+path, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := e.hc.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			userinfo := func(ahead time.Duration) string {
				return sign(ahead, map[string]any{"sub": aliceID, "aud": []string{"urn:api", e.url + "userinfo"},
					"azp": e.clientID, "scope": "openid profile", "gty": "password"})
			}
			management := func(ahead time.Duration) string {
				return sign(ahead, map[string]any{"sub": e.adminID + "@clients", "aud": e.url + "api/v2/",
					"azp": e.adminID, "scope": "read:clients", "gty": "client-credentials"})
			}
			for _, tc := range []struct {
				name, path string
				tok        func(time.Duration) string
			}{{"userinfo", "userinfo", userinfo}, {"management", "api/v2/clients", management}} {
				if status := call(tc.path, tc.tok(2*time.Second)); status != 200 {
					t.Errorf("%s, token of a clock 2 s ahead: %d, want 200", tc.name, status)
				}
				if status := call(tc.path, tc.tok(time.Minute)); status != 401 {
					t.Errorf("%s, token dated a minute ahead: %d, want 401", tc.name, status)
				}
			}
		})
	}
}
