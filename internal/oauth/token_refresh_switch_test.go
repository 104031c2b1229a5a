package oauth_test

import (
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// Turning rotation on or off does not leave tokens of the old type
// behind (Auth0, "Configure Refresh Token Rotation"): the first exchange
// of an old token answers a token of the new type, and every token of the
// old type of that client, API and user stops working.
func TestRefreshTokensFollowTheRotationSetting(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{quietLogs: true})
			login := func() string {
				t.Helper()
				r := e.login(t, "contoso-v2", "alice@contoso.com", "Alice-Passw0rd!", "openid profile email offline_access")
				if r.status != http.StatusOK || r.str("refresh_token") == "" {
					t.Fatalf("login: %d %s", r.status, r.raw)
				}
				return r.str("refresh_token")
			}
			exchange := func(what, token string) string {
				t.Helper()
				r := e.refresh(t, token, "")
				if r.status != http.StatusOK || r.str("access_token") == "" {
					t.Fatalf("%s: %d %s", what, r.status, r.raw)
				}
				return r.str("refresh_token")
			}

			refreshClient(t, e, map[string]any{"rotation_type": "non-rotating", "expiration_type": "non-expiring"})
			n1, n2 := login(), login()
			if got := exchange("non-rotating exchange", n1); got != "" {
				t.Fatalf("a non-rotating exchange answered a refresh token")
			}

			refreshClient(t, e, map[string]any{"rotation_type": "rotating", "expiration_type": "expiring", "leeway": 0,
				"token_lifetime": 3600, "idle_token_lifetime": 1800})
			r1 := exchange("first exchange after rotation was turned on", n1)
			if r1 == "" || r1 == n1 {
				t.Fatalf("no rotating token in exchange of a non-rotating one: %q", r1)
			}
			wantBadRefresh(t, "the replaced token", e.refresh(t, n1, ""))
			wantBadRefresh(t, "another non-rotating token of the user", e.refresh(t, n2, ""))
			r2 := exchange("the new token rotates", r1)
			if r2 == "" || r2 == r1 {
				t.Fatalf("rotation: %q", r2)
			}
			wantBadRefresh(t, "reuse of the rotated token", e.refresh(t, r1, ""))
			wantBadRefresh(t, "its family is revoked", e.refresh(t, r2, ""))

			r3, other := login(), login()
			refreshClient(t, e, map[string]any{"rotation_type": "non-rotating", "expiration_type": "non-expiring"})
			n3 := exchange("first exchange after rotation was turned off", r3)
			if n3 == "" || n3 == r3 {
				t.Fatalf("no non-rotating token in exchange of a rotating one: %q", n3)
			}
			wantBadRefresh(t, "the replaced rotating token", e.refresh(t, r3, ""))
			wantBadRefresh(t, "another rotating family of the user", e.refresh(t, other, ""))
			for i := range 2 {
				if got := exchange("the new token does not rotate", n3); got != "" {
					t.Fatalf("exchange %d of the non-rotating token answered a refresh token", i)
				}
			}
		})
	}
}
