package oauth_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestBlockRacesLogins blocks a user while parallel logins of that user
// run, as an attacker holding the password would keep them running: the
// block sticks, no login that began after the PATCH answered gets tokens,
// the administrator's metadata edit is kept, and every login is counted.
func TestBlockRacesLogins(t *testing.T) {
	const (
		rounds   = 5
		parallel = 16
	)
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			// Attack protection counts attempts in flight: 16 at once
			// would be refused before the race this test is about.
			e := newEnv(t, backend, envOptions{quietLogs: true, connection: map[string]any{"entra_lockout_threshold": 0}})
			for _, control := range []string{"brute-force-protection", "suspicious-ip-throttling"} {
				if s, b := e.api(t, "PATCH", "api/v2/attack-protection/"+control, map[string]any{"enabled": false}); s != http.StatusOK {
					t.Fatalf("turn off %s: %d %v", control, s, b)
				}
			}
			if s, b := e.api(t, "PATCH", "api/v2/clients/"+e.clientID, map[string]any{
				"grant_types": []string{"http://auth0.com/oauth/grant-type/password-realm", "refresh_token"},
			}); s != http.StatusOK {
				t.Fatalf("allow refresh tokens: %d %v", s, b)
			}
			user := "api/v2/users/" + url.PathEscape(aliceID)
			login := func() tokenResult {
				return e.login(t, "contoso-v2", "alice@contoso.com", "Alice-Passw0rd!", "openid offline_access")
			}
			if r := login(); r.status != http.StatusOK {
				t.Fatalf("first login: %d %s", r.status, r.raw)
			}
			counted := 1
			for round := range rounds {
				if s, b := e.api(t, "PATCH", user, map[string]any{"blocked": false, "user_metadata": map[string]any{"theme": "dark"}}); s != http.StatusOK {
					t.Fatalf("unblock: %d %v", s, b)
				}
				if s, _ := e.apiRaw(t, "DELETE", user+"/refresh-tokens", nil); s != http.StatusNoContent {
					t.Fatalf("revoke refresh tokens: %d", s)
				}
				var (
					blocked atomic.Bool
					started = make(chan struct{}, parallel)
					mu      sync.Mutex
					granted int
					refused int
					wg      sync.WaitGroup
				)
				for range parallel {
					wg.Go(func() {
						// Until two logins of this goroutine began after
						// the block was answered; the block comes once
						// each has finished one, so that logins are in
						// flight when it lands.
						for i, after := 0, 0; after < 2; i++ {
							if i == 1 {
								started <- struct{}{}
							}
							if blocked.Load() {
								after++
							}
							r := login()
							mu.Lock()
							switch {
							case r.status == http.StatusOK && r.str("access_token") != "":
								granted++
								if after > 0 {
									t.Errorf("round %d: a login begun after the block got tokens", round)
								}
							case r.status == http.StatusUnauthorized && r.str("error") == "unauthorized" && r.str("error_description") == "user is blocked" &&
								r.str("access_token") == "":
								refused++
							default:
								t.Errorf("round %d: login %d %s", round, r.status, r.raw)
							}
							mu.Unlock()
						}
					})
				}
				for range parallel {
					<-started
				}
				s, b := e.api(t, "PATCH", user, map[string]any{"blocked": true, "app_metadata": map[string]any{"round": round}})
				blocked.Store(true)
				if s != http.StatusOK || b["blocked"] != true {
					t.Fatalf("block: %d %v", s, b)
				}
				wg.Wait()
				counted += granted + refused

				_, u := e.api(t, "GET", user, nil)
				md, _ := u["app_metadata"].(map[string]any)
				umd, _ := u["user_metadata"].(map[string]any)
				if u["blocked"] != true || md["round"] != float64(round) || umd["theme"] != "dark" {
					t.Errorf("round %d: after the race, blocked %v, app_metadata %v, user_metadata %v", round, u["blocked"], u["app_metadata"], u["user_metadata"])
				}
				if u["logins_count"] != float64(counted) {
					t.Errorf("round %d: logins_count %v, want %d", round, u["logins_count"], counted)
				}
				if n := refreshTokens(t, e, user); n != granted {
					t.Errorf("round %d: %d refresh tokens stored for %d logins that got tokens", round, n, granted)
				}
				t.Logf("round %d: %d logins got tokens, %d were refused", round, granted, refused)
			}
		})
	}
}

// refreshTokens counts the user's refresh tokens.
func refreshTokens(t *testing.T, e *env, user string) int {
	t.Helper()
	n, path := 0, user+"/refresh-tokens?take=100"
	for {
		s, raw := e.apiRaw(t, "GET", path, nil)
		var page struct {
			Tokens []any  `json:"tokens"`
			Next   string `json:"next"`
		}
		if err := json.Unmarshal(raw, &page); s != http.StatusOK || err != nil {
			t.Fatalf("refresh tokens: %d %s", s, raw)
		}
		n += len(page.Tokens)
		if page.Next == "" {
			return n
		}
		path = fmt.Sprintf("%s/refresh-tokens?take=100&from=%s", user, url.QueryEscape(page.Next))
	}
}
