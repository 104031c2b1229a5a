package attack_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // raw writes of PostgreSQL rows
	_ "modernc.org/sqlite"             // raw writes of SQLite rows

	emulator "github.com/gatehouse/gatehouse/emulator/entra"
	"github.com/gatehouse/gatehouse/emulator/entra/entratest"
	"github.com/gatehouse/gatehouse/internal/attack"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/server/servertest"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

const (
	nativeAppID  = "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b"
	nativeSecret = "native-secret-value"
)

// site is a Gatehouse in front of the Entra emulator, with a public and
// a confidential application enabled on one waad connection.
type site struct {
	*servertest.Env
	mgmt      string
	emu       string
	upstream  atomic.Int32 // token requests that reached the emulator
	delay     atomic.Int64 // how long the emulator takes to answer a token request, in ns
	public    string
	confID    string
	confSec   string
	trustedID string
	trustSec  string
}

func newSite(t *testing.T, backend string, connOpts map[string]any, opts ...servertest.Option) *site {
	t.Helper()
	s := &site{}
	_, emuURL := entratest.Start(t, entratest.Example(t), emulator.Options{}, func(emu http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/token") {
				s.upstream.Add(1)
				time.Sleep(time.Duration(s.delay.Load()))
			}
			emu.ServeHTTP(w, r)
		})
	})
	s.emu = emuURL
	s.Env = servertest.Start(t, backend, append(opts, servertest.AllowUpstream(emuURL))...)
	s.mgmt = s.ManagementToken(t)

	s.public, _ = s.client(t, map[string]any{"name": "Mobile", "app_type": "native", "token_endpoint_auth_method": "none"})
	s.confID, s.confSec = s.client(t, map[string]any{"name": "Backend", "app_type": "regular_web", "token_endpoint_auth_method": "client_secret_post"})
	s.trustedID, s.trustSec = s.client(t, map[string]any{"name": "Trusted backend", "app_type": "regular_web",
		"token_endpoint_auth_method": "client_secret_post", "is_token_endpoint_ip_header_trusted": true})
	connection := map[string]any{
		"client_id": nativeAppID, "client_secret": nativeSecret, "tenant_domain": "contoso.onmicrosoft.com",
		"authority_host": emuURL, "graph_host": emuURL,
	}
	for k, v := range connOpts {
		connection[k] = v
	}
	status, _, body := s.Do(t, "POST", "api/v2/connections", s.mgmt, map[string]any{
		"name": "contoso", "strategy": "waad", "options": connection,
		"enabled_clients": []string{s.public, s.confID, s.trustedID},
	})
	if status != http.StatusCreated {
		t.Fatalf("create connection: %d %s", status, body)
	}
	return s
}

func (s *site) client(t *testing.T, body map[string]any) (string, string) {
	t.Helper()
	body["grant_types"] = []string{"password", "http://auth0.com/oauth/grant-type/password-realm"}
	status, _, raw := s.Do(t, "POST", "api/v2/clients", s.mgmt, body)
	if status != http.StatusCreated {
		t.Fatalf("create client: %d %s", status, raw)
	}
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	_ = json.Unmarshal(raw, &c)
	return c.ClientID, c.ClientSecret
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// login posts a password-realm grant for clientID (with secret when
// given) and extra headers.
func (s *site) login(t *testing.T, clientID, secret, user, password string, headers map[string]string) answer {
	t.Helper()
	form := url.Values{
		"grant_type": {"http://auth0.com/oauth/grant-type/password-realm"}, "realm": {"contoso"},
		"client_id": {clientID}, "username": {user}, "password": {password}, "scope": {"openid"},
	}
	if secret != "" {
		form.Set("client_secret", secret)
	}
	req, _ := http.NewRequest("POST", s.URL+"oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return answer{}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

func (s *site) api(t *testing.T, method, path string, body any) (int, string) {
	t.Helper()
	status, _, raw := s.Do(t, method, path, s.mgmt, body)
	return status, string(raw)
}

func (s *site) logTypes(t *testing.T, typ string) int {
	t.Helper()
	status, raw := s.api(t, "GET", "api/v2/logs?q=type:"+typ, nil)
	if status != http.StatusOK {
		t.Fatalf("logs: %d %s", status, raw)
	}
	var events []map[string]any
	_ = json.Unmarshal([]byte(raw), &events)
	return len(events)
}

// TestParallelWrongPasswords: 50 parallel wrong passwords against one
// user make at most max_attempts upstream calls; the rest are refused
// with 429 before Entra, logged as limit_wc, listed and lifted by the
// user-blocks API.
func TestParallelWrongPasswords(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			s := newSite(t, b, nil)
			if st, raw := s.api(t, "PATCH", "api/v2/attack-protection/brute-force-protection", map[string]any{"max_attempts": 5}); st != http.StatusOK {
				t.Fatalf("patch: %d %s", st, raw)
			}
			var (
				wg        sync.WaitGroup
				refused   atomic.Int32
				wrongPass atomic.Int32
			)
			for range 50 {
				wg.Go(func() {
					a := s.login(t, s.public, "", "alice@contoso.com", "wrong-password", nil)
					switch {
					case a.status == http.StatusTooManyRequests && a.body["error"] == "too_many_attempts":
						refused.Add(1)
					case a.status == http.StatusForbidden && a.body["error"] == "invalid_grant":
						wrongPass.Add(1)
					default:
						t.Errorf("unexpected answer %d %s", a.status, a.raw)
					}
				})
			}
			wg.Wait()
			if n := s.upstream.Load(); n > 5 {
				t.Fatalf("%d upstream token calls, want at most max_attempts (5)", n)
			}
			if wrongPass.Load() != 5 || refused.Load() != 45 {
				t.Fatalf("%d wrong-password answers and %d refusals, want 5 and 45", wrongPass.Load(), refused.Load())
			}
			if n := s.logTypes(t, "limit_wc"); n != 45 {
				t.Errorf("%d limit_wc events, want 45", n)
			}
			// Even the right password is refused now, without reaching Entra.
			before := s.upstream.Load()
			if a := s.login(t, s.public, "", "alice@contoso.com", "Alice-Passw0rd!", nil); a.status != http.StatusTooManyRequests {
				t.Fatalf("right password while blocked: %d %s", a.status, a.raw)
			}
			if s.upstream.Load() != before {
				t.Fatal("a blocked attempt reached Entra")
			}

			st, raw := s.api(t, "GET", "api/v2/user-blocks?identifier=ALICE@contoso.com", nil)
			if st != http.StatusOK || raw != `{"blocked_for":[{"identifier":"alice@contoso.com","ip":"127.0.0.1","connection":"contoso"}]}`+"\n" {
				t.Fatalf("user-blocks: %d %s", st, raw)
			}
			if st, raw := s.api(t, "DELETE", "api/v2/user-blocks?identifier=alice@contoso.com", nil); st != http.StatusNoContent {
				t.Fatalf("unblock: %d %s", st, raw)
			}
			a := s.login(t, s.public, "", "alice@contoso.com", "Alice-Passw0rd!", nil)
			if a.status != http.StatusOK {
				t.Fatalf("login after unblock: %d %s", a.status, a.raw)
			}
			st, raw = s.api(t, "GET", "api/v2/user-blocks?identifier=alice@contoso.com", nil)
			if st != http.StatusOK || raw != `{"blocked_for":[]}`+"\n" {
				t.Fatalf("user-blocks after unblock: %d %s", st, raw)
			}
		})
	}
}

// TestForwardedForSpoofing: an untrusted client's auth0-forwarded-for and
// an untrusted peer's X-Forwarded-For are ignored, so rotating them does
// not escape the brute-force block; a trusted backend's header is used.
func TestForwardedForSpoofing(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			s := newSite(t, b, map[string]any{"entra_lockout_threshold": 0})
			if st, raw := s.api(t, "PATCH", "api/v2/attack-protection/brute-force-protection", map[string]any{"max_attempts": 3}); st != http.StatusOK {
				t.Fatalf("patch: %d %s", st, raw)
			}
			for i := range 6 {
				h := map[string]string{
					"auth0-forwarded-for": fmt.Sprintf("203.0.113.%d", i+1),
					"X-Forwarded-For":     fmt.Sprintf("198.51.100.%d", i+1),
				}
				a := s.login(t, s.confID, s.confSec, "alice@contoso.com", "nope", h)
				want := http.StatusForbidden
				if i >= 3 {
					want = http.StatusTooManyRequests
				}
				if a.status != want {
					t.Fatalf("untrusted client, attempt %d: %d %s, want %d", i+1, a.status, a.raw, want)
				}
			}
			_, raw := s.api(t, "GET", "api/v2/user-blocks?identifier=alice@contoso.com", nil)
			if !strings.Contains(raw, `"ip":"127.0.0.1"`) || strings.Contains(raw, "203.0.113.") {
				t.Fatalf("the block is not on the socket address: %s", raw)
			}

			// A trusted backend's end users are counted apart.
			for i := range 6 {
				h := map[string]string{"auth0-forwarded-for": fmt.Sprintf("203.0.113.%d", i+1)}
				if a := s.login(t, s.trustedID, s.trustSec, "alice@contoso.com", "nope", h); a.status != http.StatusForbidden {
					t.Fatalf("trusted client, user IP %d: %d %s", i+1, a.status, a.raw)
				}
			}
			// The forwarded IP is what the log event records.
			_, raw = s.api(t, "GET", "api/v2/logs?q=type:fp", nil)
			if !strings.Contains(raw, `"ip":"203.0.113.6"`) {
				t.Fatalf("fp events do not carry the forwarded IP: %s", raw)
			}
		})
	}
}

// TestUpstreamBudget: failures spread over many IPs stop one below the
// connection's Entra lockout threshold; a user-blocks DELETE lifts it.
func TestUpstreamBudget(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			s := newSite(t, b, map[string]any{"entra_lockout_threshold": 4, "entra_lockout_duration_seconds": 300})
			for i := range 3 {
				h := map[string]string{"auth0-forwarded-for": fmt.Sprintf("192.0.2.%d", i+1)}
				if a := s.login(t, s.trustedID, s.trustSec, "alice@contoso.com", "nope", h); a.status != http.StatusForbidden {
					t.Fatalf("attempt %d: %d %s", i+1, a.status, a.raw)
				}
			}
			before := s.upstream.Load()
			a := s.login(t, s.trustedID, s.trustSec, "alice@contoso.com", "Alice-Passw0rd!", map[string]string{"auth0-forwarded-for": "192.0.2.99"})
			if a.status != http.StatusTooManyRequests || a.body["error"] != "too_many_attempts" || s.upstream.Load() != before {
				t.Fatalf("4th attempt: %d %s (upstream calls %d → %d)", a.status, a.raw, before, s.upstream.Load())
			}
			_, raw := s.api(t, "GET", "api/v2/user-blocks?identifier=alice@contoso.com", nil)
			if raw != `{"blocked_for":[{"identifier":"alice@contoso.com","connection":"contoso"}]}`+"\n" {
				t.Fatalf("user-blocks: %s", raw)
			}
			if st, _ := s.api(t, "DELETE", "api/v2/user-blocks?identifier=alice@contoso.com", nil); st != http.StatusNoContent {
				t.Fatal("unblock failed")
			}
			if a := s.login(t, s.trustedID, s.trustSec, "alice@contoso.com", "Alice-Passw0rd!", map[string]string{"auth0-forwarded-for": "192.0.2.99"}); a.status != http.StatusOK {
				t.Fatalf("after unblock: %d %s", a.status, a.raw)
			}
		})
	}
}

// TestAbandonedLoginsAreNotFailures: a client that gives up while
// Gatehouse waits for Entra proves nothing about the password, so its
// attempt comes back; it used to stay counted (settled with the request's
// cancelled context), and three impatient clients locked the user out.
func TestAbandonedLoginsAreNotFailures(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			s := newSite(t, b, map[string]any{"entra_lockout_threshold": 4, "entra_lockout_duration_seconds": 300})
			s.delay.Store(int64(time.Second))
			impatient := &http.Client{Timeout: 100 * time.Millisecond}
			form := url.Values{
				"grant_type": {"http://auth0.com/oauth/grant-type/password-realm"}, "realm": {"contoso"},
				"client_id": {s.public}, "username": {"alice@contoso.com"}, "password": {"Alice-Passw0rd!"}, "scope": {"openid"},
			}
			for i := range 3 {
				if resp, err := impatient.PostForm(s.URL+"oauth/token", form); err == nil {
					resp.Body.Close()
					t.Fatalf("attempt %d answered before Entra: %s", i+1, resp.Status)
				}
			}
			s.delay.Store(0)
			deadline := time.Now().Add(5 * time.Second)
			for {
				a := s.login(t, s.public, "", "alice@contoso.com", "Alice-Passw0rd!", nil)
				if a.status == http.StatusOK {
					break
				}
				// The abandoned attempts settle when their upstream calls
				// end; until then they hold their places.
				if time.Now().After(deadline) {
					t.Fatalf("login after three abandoned ones: %d %s", a.status, a.raw)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// TestAbandonedWrongPasswordsCount: a caller that gives up after the
// password went upstream cannot make Entra's failures uncounted: Entra
// checked the password and counts the failure towards its own lockout,
// which the budget exists to stay under. That holds for a login and for
// `try`, which posts the password to Entra as a login does.
func TestAbandonedWrongPasswordsCount(t *testing.T) {
	for _, b := range storetest.Backends() {
		for _, via := range []string{"login", "try"} {
			t.Run(b+"/"+via, func(t *testing.T) {
				s := newSite(t, b, map[string]any{"entra_lockout_threshold": 4, "entra_lockout_duration_seconds": 300})
				req := func() *http.Request {
					form := url.Values{
						"grant_type": {"http://auth0.com/oauth/grant-type/password-realm"}, "realm": {"contoso"},
						"client_id": {s.public}, "username": {"alice@contoso.com"}, "password": {"nope"}, "scope": {"openid"},
					}
					r, _ := http.NewRequest("POST", s.URL+"oauth/token", strings.NewReader(form.Encode()))
					r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					return r
				}
				if via == "try" {
					status, raw := s.api(t, "GET", "api/v2/connections?name=contoso", nil)
					var conns []struct{ ID string }
					if err := json.Unmarshal([]byte(raw), &conns); status != http.StatusOK || err != nil || len(conns) != 1 {
						t.Fatalf("connections: %d %s", status, raw)
					}
					req = func() *http.Request {
						r, _ := http.NewRequest("POST", s.URL+"api/v2/connections/"+conns[0].ID+"/try",
							strings.NewReader(`{"username":"alice@contoso.com","password":"nope"}`))
						r.Header.Set("Authorization", "Bearer "+s.mgmt)
						r.Header.Set("Content-Type", "application/json")
						return r
					}
				}
				s.delay.Store(int64(300 * time.Millisecond))
				impatient := &http.Client{Timeout: 100 * time.Millisecond}
				for i := range 3 {
					if resp, err := impatient.Do(req()); err == nil {
						resp.Body.Close()
						t.Fatalf("%s %d answered before Entra: %s", via, i+1, resp.Status)
					}
					// Let the abandoned attempt reach Entra and settle.
					time.Sleep(400 * time.Millisecond)
				}
				s.delay.Store(0)
				reached := s.upstream.Load()
				a := s.login(t, s.public, "", "alice@contoso.com", "Alice-Passw0rd!", nil)
				if a.status != http.StatusTooManyRequests {
					t.Fatalf("after %d wrong passwords reached Entra through %s (budget 3), a login got %d %s", reached, via, a.status, a.raw)
				}
			})
		}
	}
}

// TestUpstreamBudgetStoredOptions: lockout options the Management API
// now refuses, stored before it checked them, are read one by one. A
// duration too large for a time.Duration in nanoseconds (here about 317
// years) keeps the budget, as the longest window Gatehouse keeps counters
// for, instead of overflowing into a negative window that never refuses;
// an option of the wrong type falls back to its default without
// resetting the other.
func TestUpstreamBudgetStoredOptions(t *testing.T) {
	for _, b := range storetest.Backends() {
		for _, c := range []struct {
			name    string
			options string
			refused int // the failure that is refused
		}{
			{"huge duration", `"entra_lockout_threshold":4,"entra_lockout_duration_seconds":10000000000`, 4},
			{"duration of the wrong type", `"entra_lockout_threshold":4,"entra_lockout_duration_seconds":"300"`, 4},
			{"threshold of the wrong type", `"entra_lockout_threshold":"4","entra_lockout_duration_seconds":300`, 10},
		} {
			t.Run(b+"/"+c.name, func(t *testing.T) {
				s := newSite(t, b, nil)
				s.storeOptions(t, "contoso", `{"client_id":"`+nativeAppID+`","tenant_domain":"contoso.onmicrosoft.com",`+
					`"authority_host":"`+s.emu+`","graph_host":"`+s.emu+`",`+c.options+`}`)
				for i := range c.refused - 1 {
					h := map[string]string{"auth0-forwarded-for": fmt.Sprintf("192.0.2.%d", i+1)}
					if a := s.login(t, s.trustedID, s.trustSec, "alice@contoso.com", "nope", h); a.status != http.StatusForbidden {
						t.Fatalf("attempt %d: %d %s", i+1, a.status, a.raw)
					}
				}
				before := s.upstream.Load()
				a := s.login(t, s.trustedID, s.trustSec, "alice@contoso.com", "nope", map[string]string{"auth0-forwarded-for": "192.0.2.99"})
				if a.status != http.StatusTooManyRequests || s.upstream.Load() != before {
					t.Fatalf("attempt %d: %d %s (upstream calls %d → %d)", c.refused, a.status, a.raw, before, s.upstream.Load())
				}
				_, raw := s.api(t, "GET", "api/v2/user-blocks?identifier=alice@contoso.com", nil)
				if raw != `{"blocked_for":[{"identifier":"alice@contoso.com","connection":"contoso"}]}`+"\n" {
					t.Fatalf("user-blocks: %s", raw)
				}
			})
		}
	}
}

// storeOptions writes a connection's options straight into the database,
// as a row saved before the Management API checked them was. Called
// before any login, so that no cached copy of the connection hides it.
func (s *site) storeOptions(t *testing.T, name, options string) {
	t.Helper()
	driver, dsn := "pgx", s.Config.Database
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		driver, dsn = "sqlite", path
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec("UPDATE connections SET options = $1 WHERE name = $2", options, name)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("storeOptions: %d rows", n)
	}
}

// TestSuccessClearsOnlyItsConnection: counters are per connection, so a
// successful login on one connection resets that connection's counts
// only. Otherwise whoever holds an account with the same identifier on
// another connection could reset its brute-force block there after every
// max_attempts guesses, without limit.
func TestSuccessClearsOnlyItsConnection(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			s := twoConnectionSite(t, b)
			login := func(realm, password string) answer {
				form := url.Values{
					"grant_type": {"http://auth0.com/oauth/grant-type/password-realm"}, "realm": {realm},
					"client_id": {s.public}, "username": {"alice@contoso.com"}, "password": {password}, "scope": {"openid"},
				}
				resp, err := http.PostForm(s.URL+"oauth/token", form)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				raw, _ := io.ReadAll(resp.Body)
				return answer{status: resp.StatusCode, raw: string(raw)}
			}
			for i := range 3 {
				if a := login("fabrikam", "nope"); a.status != http.StatusForbidden {
					t.Fatalf("attempt %d: %d %s", i+1, a.status, a.raw)
				}
			}
			if a := login("contoso", "Alice-Passw0rd!"); a.status != http.StatusOK {
				t.Fatalf("login on the other connection: %d %s", a.status, a.raw)
			}
			before := s.upstream.Load()
			if a := login("fabrikam", "nope"); a.status != http.StatusTooManyRequests || s.upstream.Load() != before {
				t.Fatalf("after a success on the other connection: %d %s (upstream calls %d → %d)", a.status, a.raw, before, s.upstream.Load())
			}
			_, raw := s.api(t, "GET", "api/v2/user-blocks?identifier=alice@contoso.com", nil)
			if raw != `{"blocked_for":[{"identifier":"alice@contoso.com","ip":"127.0.0.1","connection":"fabrikam"}]}`+"\n" {
				t.Fatalf("user-blocks: %s", raw)
			}
		})
	}
}

// TestUserBlocksByIDStayOnTheUsersConnection: a user's user-blocks routes
// list and lift the blocks of the user's connection only; the same
// identifier on another connection is another user.
func TestUserBlocksByIDStayOnTheUsersConnection(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			s := twoConnectionSite(t, b)
			if a := s.login(t, s.public, "", "alice@contoso.com", "Alice-Passw0rd!", nil); a.status != http.StatusOK {
				t.Fatalf("login on contoso: %d %s", a.status, a.raw)
			}
			st, raw := s.api(t, "GET", "api/v2/users-by-email?email=alice@contoso.com", nil)
			var users []struct {
				UserID string `json:"user_id"`
			}
			if err := json.Unmarshal([]byte(raw), &users); st != http.StatusOK || err != nil || len(users) != 1 {
				t.Fatalf("users-by-email: %d %s", st, raw)
			}
			path := "api/v2/user-blocks/" + url.PathEscape(users[0].UserID)
			for i := range 3 {
				form := url.Values{
					"grant_type": {"http://auth0.com/oauth/grant-type/password-realm"}, "realm": {"fabrikam"},
					"client_id": {s.public}, "username": {"alice@contoso.com"}, "password": {"nope"}, "scope": {"openid"},
				}
				resp, err := http.PostForm(s.URL+"oauth/token", form)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusForbidden {
					t.Fatalf("attempt %d on fabrikam: %d", i+1, resp.StatusCode)
				}
			}
			fabrikamBlock := `{"blocked_for":[{"identifier":"alice@contoso.com","ip":"127.0.0.1","connection":"fabrikam"}]}` + "\n"
			if _, raw := s.api(t, "GET", "api/v2/user-blocks?identifier=alice@contoso.com", nil); raw != fabrikamBlock {
				t.Fatalf("user-blocks by identifier: %s", raw)
			}
			if st, raw := s.api(t, "GET", path, nil); st != http.StatusOK || raw != `{"blocked_for":[]}`+"\n" {
				t.Fatalf("user-blocks of the contoso user: %d %s", st, raw)
			}
			if st, raw := s.api(t, "DELETE", path, nil); st != http.StatusNoContent {
				t.Fatalf("delete user-blocks of the contoso user: %d %s", st, raw)
			}
			if _, raw := s.api(t, "GET", "api/v2/user-blocks?identifier=alice@contoso.com", nil); raw != fabrikamBlock {
				t.Fatalf("fabrikam block after deleting the contoso user's blocks: %s", raw)
			}
		})
	}
}

// TestSuspiciousIPThrottling: failures from one IP across users are
// throttled with 429 and X-RateLimit headers, logged as limit_mu.
func TestSuspiciousIPThrottling(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			s := newSite(t, b, nil)
			st, raw := s.api(t, "PATCH", "api/v2/attack-protection/suspicious-ip-throttling",
				map[string]any{"stage": map[string]any{"pre-login": map[string]any{"max_attempts": 2, "rate": 3600000}}})
			if st != http.StatusOK || !strings.Contains(raw, `"pre-user-registration":{"max_attempts":50,"rate":1200}`) {
				t.Fatalf("patch: %d %s", st, raw)
			}
			before := time.Now()
			for i, u := range []string{"erin@contoso.com", "frank@contoso.com"} {
				if a := s.login(t, s.public, "", u, "nope", nil); a.status != http.StatusForbidden {
					t.Fatalf("attempt %d: %d %s", i+1, a.status, a.raw)
				}
			}
			a := s.login(t, s.public, "", "grace@corp.contoso.com", "nope", nil)
			if a.status != http.StatusTooManyRequests || a.body["error"] != "too_many_attempts" {
				t.Fatalf("3rd failure from one IP: %d %s", a.status, a.raw)
			}
			if a.header.Get("X-RateLimit-Limit") != "2" || a.header.Get("X-RateLimit-Remaining") != "0" || a.header.Get("X-RateLimit-Reset") == "" {
				t.Fatalf("rate-limit headers: %v", a.header)
			}
			// The next token comes one rate after the first failure; a Reset
			// rounded down would send a client back before it.
			reset, err := strconv.ParseInt(a.header.Get("X-RateLimit-Reset"), 10, 64)
			if err != nil || reset*1000 < before.UnixMilli()+3600000 || reset > time.Now().Unix()+3601 {
				t.Fatalf("X-RateLimit-Reset = %q, want the first second at or after %d ms", a.header.Get("X-RateLimit-Reset"), before.UnixMilli()+3600000)
			}
			if n := s.logTypes(t, "limit_mu"); n != 1 {
				t.Fatalf("%d limit_mu events, want 1", n)
			}
		})
	}
}

// trustLoopback makes the test client a trusted proxy.
func trustLoopback(c *config.Config) {
	c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
}

// TestForwardedAddressesWithPorts: behind a proxy that writes hops as
// address:port (Azure Application Gateway), users are still counted by
// their own address: one client draining its pre-login bucket or blocking
// alice does not touch the others.
func TestForwardedAddressesWithPorts(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			s := newSite(t, b, map[string]any{"entra_lockout_threshold": 0}, trustLoopback)
			if st, raw := s.api(t, "PATCH", "api/v2/attack-protection/brute-force-protection", map[string]any{"max_attempts": 3}); st != http.StatusOK {
				t.Fatalf("patch: %d %s", st, raw)
			}
			if st, raw := s.api(t, "PATCH", "api/v2/attack-protection/suspicious-ip-throttling",
				map[string]any{"stage": map[string]any{"pre-login": map[string]any{"max_attempts": 5, "rate": 3600000}}}); st != http.StatusOK {
				t.Fatalf("patch: %d %s", st, raw)
			}
			attacker := map[string]string{"X-Forwarded-For": "203.0.113.7:51234"}
			for i, u := range []string{"alice@contoso.com", "alice@contoso.com", "alice@contoso.com", "erin@contoso.com", "frank@contoso.com"} {
				if a := s.login(t, s.public, "", u, "nope", attacker); a.status != http.StatusForbidden {
					t.Fatalf("attacker, attempt %d: %d %s", i+1, a.status, a.raw)
				}
			}
			if a := s.login(t, s.public, "", "grace@corp.contoso.com", "nope", attacker); a.status != http.StatusTooManyRequests {
				t.Fatalf("attacker, 6th failure: %d %s, want 429", a.status, a.raw)
			}
			if a := s.login(t, s.public, "", "alice@contoso.com", "Alice-Passw0rd!", map[string]string{"X-Forwarded-For": "[2001:db8::1]:443"}); a.status != http.StatusOK {
				t.Fatalf("alice from her own address: %d %s", a.status, a.raw)
			}
			_, raw := s.api(t, "GET", "api/v2/logs?q=type:fp", nil)
			if !strings.Contains(raw, `"ip":"203.0.113.7"`) {
				t.Fatalf("fp events do not carry the forwarded address: %s", raw)
			}
		})
	}
}

// TestIPv6Prefix: attack protection counts an IPv6 client by its /64, so
// taking a new address of the same /64 for every attempt does not escape
// the block, while the log keeps each address.
func TestIPv6Prefix(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			s := newSite(t, b, map[string]any{"entra_lockout_threshold": 0}, trustLoopback)
			if st, raw := s.api(t, "PATCH", "api/v2/attack-protection/brute-force-protection", map[string]any{"max_attempts": 3}); st != http.StatusOK {
				t.Fatalf("patch: %d %s", st, raw)
			}
			for i := range 4 {
				h := map[string]string{"X-Forwarded-For": fmt.Sprintf("2001:db8:1:2::%x", i+1)}
				a := s.login(t, s.public, "", "alice@contoso.com", "nope", h)
				want := http.StatusForbidden
				if i >= 3 {
					want = http.StatusTooManyRequests
				}
				if a.status != want {
					t.Fatalf("attempt %d: %d %s, want %d", i+1, a.status, a.raw, want)
				}
			}
			_, raw := s.api(t, "GET", "api/v2/user-blocks?identifier=alice@contoso.com", nil)
			if raw != `{"blocked_for":[{"identifier":"alice@contoso.com","ip":"2001:db8:1:2::/64","connection":"contoso"}]}`+"\n" {
				t.Fatalf("user-blocks: %s", raw)
			}
			if a := s.login(t, s.public, "", "alice@contoso.com", "Alice-Passw0rd!", map[string]string{"X-Forwarded-For": "2001:db8:1:3::1"}); a.status != http.StatusOK {
				t.Fatalf("another /64: %d %s", a.status, a.raw)
			}
			_, raw = s.api(t, "GET", "api/v2/logs?q=type:fp", nil)
			if !strings.Contains(raw, `"ip":"2001:db8:1:2::3"`) {
				t.Fatalf("fp events do not carry the full address: %s", raw)
			}
		})
	}
}

// TestAllowlistEntries: an allowlisted client is neither blocked nor
// throttled, whichever way an admin wrote the entry that Auth0 accepts:
// a range with host bits set, IPv4-mapped IPv6 addresses and ranges for
// IPv4 clients, a range for a link-local client that came with a zone.
func TestAllowlistEntries(t *testing.T) {
	for _, b := range storetest.Backends() {
		for _, c := range []struct {
			name, entry, client string
		}{
			{"range with host bits", "10.1.2.3/8", "10.200.0.1"},
			{"IPv4-mapped address", "::ffff:192.0.2.7", "192.0.2.7"},
			{"IPv4-mapped address as a /128", "::ffff:192.0.2.7/128", "192.0.2.7"},
			{"IPv4-mapped range", "::ffff:192.0.2.0/120", "192.0.2.7"},
			{"client with a zone", "fe80::/10", "fe80::1%eth0"},
		} {
			t.Run(b+"/"+c.name, func(t *testing.T) {
				s := newSite(t, b, map[string]any{"entra_lockout_threshold": 0}, trustLoopback)
				allow := []string{c.entry}
				if st, raw := s.api(t, "PATCH", "api/v2/attack-protection/brute-force-protection",
					map[string]any{"max_attempts": 1, "allowlist": allow}); st != http.StatusOK {
					t.Fatalf("patch: %d %s", st, raw)
				}
				if st, raw := s.api(t, "PATCH", "api/v2/attack-protection/suspicious-ip-throttling",
					map[string]any{"allowlist": allow, "stage": map[string]any{"pre-login": map[string]any{"max_attempts": 1, "rate": 3600000}}}); st != http.StatusOK {
					t.Fatalf("patch: %d %s", st, raw)
				}
				for i := range 3 {
					a := s.login(t, s.public, "", "alice@contoso.com", "nope", map[string]string{"X-Forwarded-For": c.client})
					if a.status != http.StatusForbidden {
						t.Fatalf("attempt %d from %s, allowlisted by %s: %d %s", i+1, c.client, c.entry, a.status, a.raw)
					}
				}
				// The same limits still apply to everyone else.
				other := map[string]string{"X-Forwarded-For": "203.0.113.9"}
				if a := s.login(t, s.public, "", "alice@contoso.com", "nope", other); a.status != http.StatusForbidden {
					t.Fatalf("first attempt from another address: %d %s", a.status, a.raw)
				}
				if a := s.login(t, s.public, "", "alice@contoso.com", "nope", other); a.status != http.StatusTooManyRequests {
					t.Fatalf("second attempt from another address: %d %s, want 429", a.status, a.raw)
				}
			})
		}
	}
}

// twoConnectionSite is a site with a second connection, "fabrikam", to the
// same tenant as "contoso" (so one identifier has an account on each),
// brute-force protection at 3 attempts and no upstream budget.
func twoConnectionSite(t *testing.T, backend string) *site {
	t.Helper()
	s := newSite(t, backend, map[string]any{"entra_lockout_threshold": 0})
	status, _, body := s.Do(t, "POST", "api/v2/connections", s.mgmt, map[string]any{
		"name": "fabrikam", "strategy": "waad", "enabled_clients": []string{s.public},
		"options": map[string]any{
			"client_id": nativeAppID, "client_secret": nativeSecret, "tenant_domain": "contoso.onmicrosoft.com",
			"authority_host": s.emu, "graph_host": s.emu, "entra_lockout_threshold": 0,
		},
	})
	if status != http.StatusCreated {
		t.Fatalf("create connection: %d %s", status, body)
	}
	if st, raw := s.api(t, "PATCH", "api/v2/attack-protection/brute-force-protection", map[string]any{"max_attempts": 3}); st != http.StatusOK {
		t.Fatalf("patch: %d %s", st, raw)
	}
	return s
}

// TestIdentifierVariantsShareACount: the username is counted lower-cased
// and trimmed, so changing its case or padding it with white space does
// not buy more guesses; the user-blocks routes find the block under any of
// those forms.
func TestIdentifierVariantsShareACount(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			s := newSite(t, b, map[string]any{"entra_lockout_threshold": 0})
			if st, raw := s.api(t, "PATCH", "api/v2/attack-protection/brute-force-protection", map[string]any{"max_attempts": 3}); st != http.StatusOK {
				t.Fatalf("patch: %d %s", st, raw)
			}
			for i, u := range []string{"Alice@Contoso.com", " alice@contoso.com", "ALICE@CONTOSO.COM\t"} {
				if a := s.login(t, s.public, "", u, "nope", nil); a.status != http.StatusForbidden {
					t.Fatalf("attempt %d as %q: %d %s", i+1, u, a.status, a.raw)
				}
			}
			before := s.upstream.Load()
			for _, u := range []string{"alice@contoso.com", "aLiCe@contoso.COM ", "\u00a0alice@contoso.com"} {
				if a := s.login(t, s.public, "", u, "Alice-Passw0rd!", nil); a.status != http.StatusTooManyRequests || a.body["error"] != "too_many_attempts" {
					t.Fatalf("%q after 3 failures under other forms: %d %s, want 429", u, a.status, a.raw)
				}
			}
			if s.upstream.Load() != before {
				t.Fatal("a blocked attempt reached Entra")
			}
			want := `{"blocked_for":[{"identifier":"alice@contoso.com","ip":"127.0.0.1","connection":"contoso"}]}` + "\n"
			if _, raw := s.api(t, "GET", "api/v2/user-blocks?identifier="+url.QueryEscape(" ALICE@contoso.com "), nil); raw != want {
				t.Fatalf("user-blocks: %s", raw)
			}
			if st, raw := s.api(t, "DELETE", "api/v2/user-blocks?identifier=Alice@CONTOSO.com", nil); st != http.StatusNoContent {
				t.Fatalf("unblock: %d %s", st, raw)
			}
			if a := s.login(t, s.public, "", "alice@contoso.com", "Alice-Passw0rd!", nil); a.status != http.StatusOK {
				t.Fatalf("after unblock: %d %s", a.status, a.raw)
			}
		})
	}
}

// TestBlocksConsiderBlockShield: with consider_brute_force_enablement,
// user-blocks lists brute-force blocks only while protection is on and
// configured to block (Auth0: "If true and Brute Force Protection is
// enabled and configured to block logins"). Without the block shield no
// login is refused, so listing the count as a block was wrong.
func TestBlocksConsiderBlockShield(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			s := newSite(t, b, map[string]any{"entra_lockout_threshold": 0})
			if st, raw := s.api(t, "PATCH", "api/v2/attack-protection/brute-force-protection",
				map[string]any{"max_attempts": 2, "shields": []string{"user_notification"}}); st != http.StatusOK {
				t.Fatalf("patch: %d %s", st, raw)
			}
			for i := range 3 {
				if a := s.login(t, s.public, "", "alice@contoso.com", "nope", nil); a.status != http.StatusForbidden {
					t.Fatalf("attempt %d without the block shield: %d %s", i+1, a.status, a.raw)
				}
			}
			const path = "api/v2/user-blocks?identifier=alice@contoso.com"
			block := `{"blocked_for":[{"identifier":"alice@contoso.com","ip":"127.0.0.1","connection":"contoso"}]}` + "\n"
			none := `{"blocked_for":[]}` + "\n"
			if _, raw := s.api(t, "GET", path, nil); raw != block {
				t.Fatalf("user-blocks: %s", raw)
			}
			if _, raw := s.api(t, "GET", path+"&consider_brute_force_enablement=true", nil); raw != none {
				t.Fatalf("user-blocks considering enablement, without the block shield: %s", raw)
			}
			// With the shield back the count blocks, and is listed either way.
			if st, raw := s.api(t, "PATCH", "api/v2/attack-protection/brute-force-protection",
				map[string]any{"shields": []string{"block"}}); st != http.StatusOK {
				t.Fatalf("patch: %d %s", st, raw)
			}
			if a := s.login(t, s.public, "", "alice@contoso.com", "nope", nil); a.status != http.StatusTooManyRequests {
				t.Fatalf("with the block shield: %d %s", a.status, a.raw)
			}
			if _, raw := s.api(t, "GET", path+"&consider_brute_force_enablement=true", nil); raw != block {
				t.Fatalf("user-blocks considering enablement, with the block shield: %s", raw)
			}
		})
	}
}

// TestPruneKeepsActiveBlocks: the background purge (Guard.Prune, run by
// every serving process on the shared database) removes a block only
// once it has expired, 30 days after its last counted failure; a block
// one day younger still refuses the right password without calling Entra,
// as does an upstream budget of a 30-day window.
func TestPruneKeepsActiveBlocks(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			// The upstream budget's longest window, 30 days, blocks as long.
			s := newSite(t, b, map[string]any{"entra_lockout_threshold": 3, "entra_lockout_duration_seconds": 2592000})
			if st, raw := s.api(t, "PATCH", "api/v2/attack-protection/brute-force-protection", map[string]any{"max_attempts": 2}); st != http.StatusOK {
				t.Fatalf("patch: %d %s", st, raw)
			}
			for i := range 2 {
				if a := s.login(t, s.public, "", "alice@contoso.com", "nope", nil); a.status != http.StatusForbidden {
					t.Fatalf("attempt %d: %d %s", i+1, a.status, a.raw)
				}
			}
			st, err := sqlstore.Open(t.Context(), s.Config.Database, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			age := func(d time.Duration) {
				t.Helper()
				s.exec(t, "UPDATE attack_counters SET updated_at = updated_at - $1", d.Milliseconds())
				for {
					n, err := attack.New(st, nil).Prune(t.Context(), 500)
					if err != nil {
						t.Fatal(err)
					}
					if n == 0 {
						return
					}
				}
			}
			const block = `{"blocked_for":[{"identifier":"alice@contoso.com","ip":"127.0.0.1","connection":"contoso"},` +
				`{"identifier":"alice@contoso.com","connection":"contoso"}]}` + "\n"
			age(29 * 24 * time.Hour)
			before := s.upstream.Load()
			if a := s.login(t, s.public, "", "alice@contoso.com", "Alice-Passw0rd!", nil); a.status != http.StatusTooManyRequests || s.upstream.Load() != before {
				t.Fatalf("29 days after the block: %d %s", a.status, a.raw)
			}
			if _, raw := s.api(t, "GET", "api/v2/user-blocks?identifier=alice@contoso.com", nil); raw != block {
				t.Fatalf("user-blocks 29 days after: %s", raw)
			}
			age(2 * 24 * time.Hour)
			if _, raw := s.api(t, "GET", "api/v2/user-blocks?identifier=alice@contoso.com", nil); raw != `{"blocked_for":[]}`+"\n" {
				t.Fatalf("user-blocks 31 days after: %s", raw)
			}
			if a := s.login(t, s.public, "", "alice@contoso.com", "Alice-Passw0rd!", nil); a.status != http.StatusOK {
				t.Fatalf("31 days after the block: %d %s", a.status, a.raw)
			}
		})
	}
}

// exec runs one statement straight on the site's database.
func (s *site) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	driver, dsn := "pgx", s.Config.Database
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		driver, dsn = "sqlite", path
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatal(err)
	}
}

// TestFoldedIdentifiersShareACount: "ı" (dotless i) and "ſ" (long s)
// upper-case to ASCII letters, so a directory comparing names by their
// upper case takes "alıce@contoſo.com" for alice; such spellings used to
// be counted apart from alice's, each a fresh count of guesses.
func TestFoldedIdentifiersShareACount(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			s := newSite(t, b, map[string]any{"entra_lockout_threshold": 0})
			if st, raw := s.api(t, "PATCH", "api/v2/attack-protection/brute-force-protection", map[string]any{"max_attempts": 3}); st != http.StatusOK {
				t.Fatalf("patch: %d %s", st, raw)
			}
			for i, u := range []string{"al\u0131ce@contoso.com", "alice@conto\u017fo.com", "AL\u0130CE@CONTO\u017fO.COM"} {
				if a := s.login(t, s.public, "", u, "nope", nil); a.status != http.StatusForbidden {
					t.Fatalf("attempt %d as %q: %d %s", i+1, u, a.status, a.raw)
				}
			}
			if a := s.login(t, s.public, "", "alice@contoso.com", "Alice-Passw0rd!", nil); a.status != http.StatusTooManyRequests {
				t.Fatalf("alice after 3 failures under folded spellings: %d %s, want 429", a.status, a.raw)
			}
			want := `{"blocked_for":[{"identifier":"alice@contoso.com","ip":"127.0.0.1","connection":"contoso"}]}` + "\n"
			if _, raw := s.api(t, "GET", "api/v2/user-blocks?identifier="+url.QueryEscape("al\u0131ce@contoso.com"), nil); raw != want {
				t.Fatalf("user-blocks: %s", raw)
			}
		})
	}
}

// TestMappedTrustedProxy: GATEHOUSE_TRUSTED_PROXIES may name the proxy as
// an IPv4-mapped IPv6 address, as a dual-stack listener shows it. Peers
// are compared unmapped, so such an entry used to match nothing: every
// user behind the proxy was counted as the proxy, and one attacker
// draining its suspicious-IP bucket locked everyone out.
func TestMappedTrustedProxy(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			loaded, err := config.Load(nil, func(k string) string {
				if k == "GATEHOUSE_TRUSTED_PROXIES" {
					return "::ffff:127.0.0.1, ::ffff:127.0.0.0/104"
				}
				return ""
			})
			if err != nil {
				t.Fatal(err)
			}
			s := newSite(t, b, map[string]any{"entra_lockout_threshold": 0}, func(c *config.Config) { c.TrustedProxies = loaded.TrustedProxies })
			if st, raw := s.api(t, "PATCH", "api/v2/attack-protection/suspicious-ip-throttling",
				map[string]any{"stage": map[string]any{"pre-login": map[string]any{"max_attempts": 2, "rate": 3600000}}}); st != http.StatusOK {
				t.Fatalf("patch: %d %s", st, raw)
			}
			attacker := map[string]string{"X-Forwarded-For": "203.0.113.7"}
			for i, u := range []string{"erin@contoso.com", "frank@contoso.com"} {
				if a := s.login(t, s.public, "", u, "nope", attacker); a.status != http.StatusForbidden {
					t.Fatalf("attacker, attempt %d: %d %s", i+1, a.status, a.raw)
				}
			}
			if a := s.login(t, s.public, "", "grace@corp.contoso.com", "nope", attacker); a.status != http.StatusTooManyRequests {
				t.Fatalf("attacker, 3rd failure: %d %s, want 429", a.status, a.raw)
			}
			if a := s.login(t, s.public, "", "alice@contoso.com", "Alice-Passw0rd!", map[string]string{"X-Forwarded-For": "198.51.100.1"}); a.status != http.StatusOK {
				t.Fatalf("alice from her own address behind the proxy: %d %s", a.status, a.raw)
			}
		})
	}
}

// TestParallelSprayFromManyIPs: 50 parallel wrong passwords for one user
// from 50 addresses (a trusted backend's end users) take the brute-force
// counter of each address and the user's upstream budget in one store
// write: at most threshold-1 reach Entra, on both backends, without a
// deadlock between the takes.
func TestParallelSprayFromManyIPs(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			s := newSite(t, b, map[string]any{"entra_lockout_threshold": 6, "entra_lockout_duration_seconds": 300})
			var (
				wg                 sync.WaitGroup
				refused, wrongPass atomic.Int32
			)
			for i := range 50 {
				wg.Go(func() {
					h := map[string]string{"auth0-forwarded-for": fmt.Sprintf("198.51.100.%d", i+1)}
					a := s.login(t, s.trustedID, s.trustSec, "alice@contoso.com", "wrong-password", h)
					switch {
					case a.status == http.StatusTooManyRequests && a.body["error_description"] == "Too many failed sign-in attempts for this account. Try again later.":
						refused.Add(1)
					case a.status == http.StatusForbidden && a.body["error"] == "invalid_grant":
						wrongPass.Add(1)
					default:
						t.Errorf("unexpected answer %d %s", a.status, a.raw)
					}
				})
			}
			wg.Wait()
			if n := s.upstream.Load(); n != 5 || wrongPass.Load() != 5 || refused.Load() != 45 {
				t.Fatalf("%d upstream calls, %d wrong-password answers, %d refusals; want 5, 5, 45", n, wrongPass.Load(), refused.Load())
			}
			// The refused attempts took nothing from the addresses' counts.
			_, raw := s.api(t, "GET", "api/v2/user-blocks?identifier=alice@contoso.com", nil)
			if raw != `{"blocked_for":[{"identifier":"alice@contoso.com","connection":"contoso"}]}`+"\n" {
				t.Fatalf("user-blocks: %s", raw)
			}
		})
	}
}

// TestAnomalyIPBlocks: Auth0's /api/v2/anomaly/blocks/ips/{id} checks and
// lifts a suspicious IP throttling block, so that an administrator need
// not wait a day (or change the settings for everyone) when an office
// address was throttled.
func TestAnomalyIPBlocks(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			s := newSite(t, b, map[string]any{"entra_lockout_threshold": 0}, trustLoopback)
			if st, raw := s.api(t, "PATCH", "api/v2/attack-protection/suspicious-ip-throttling",
				map[string]any{"stage": map[string]any{"pre-login": map[string]any{"max_attempts": 2, "rate": 3600000}}}); st != http.StatusOK {
				t.Fatalf("patch: %d %s", st, raw)
			}
			const path = "api/v2/anomaly/blocks/ips/"
			if st, raw := s.api(t, "GET", path+"2001:db8:1:2::9", nil); st != http.StatusNotFound ||
				raw != `{"statusCode":404,"error":"Not Found","message":"IP address specified is not currently blocked."}`+"\n" {
				t.Fatalf("GET before any failure: %d %s", st, raw)
			}
			office := map[string]string{"X-Forwarded-For": "2001:db8:1:2::1"}
			for i, u := range []string{"erin@contoso.com", "frank@contoso.com", "grace@corp.contoso.com"} {
				want := http.StatusForbidden
				if i == 2 {
					want = http.StatusTooManyRequests
				}
				if a := s.login(t, s.public, "", u, "nope", office); a.status != want {
					t.Fatalf("attempt %d: %d %s, want %d", i+1, a.status, a.raw, want)
				}
			}
			// The block is on the address's /64, as the throttle counts it.
			if st, raw := s.api(t, "GET", path+"2001:db8:1:2::9", nil); st != http.StatusOK || raw != "" {
				t.Fatalf("GET of a blocked /64: %d %s", st, raw)
			}
			if st, _ := s.api(t, "GET", path+"2001:db8:1:3::1", nil); st != http.StatusNotFound {
				t.Fatalf("GET of another /64: %d", st)
			}
			for _, tc := range []struct{ method, scope string }{{"GET", "delete:anomaly_blocks"}, {"DELETE", "read:anomaly_blocks"}} {
				if st, _, raw := s.Do(t, tc.method, path+"2001:db8:1:2::1", s.ManagementToken(t, tc.scope), nil); st != http.StatusForbidden {
					t.Fatalf("%s with %s only: %d %s", tc.method, tc.scope, st, raw)
				}
			}
			if st, raw := s.api(t, "GET", path+"not-an-ip", nil); st != http.StatusBadRequest || !strings.Contains(raw, `"errorCode":"invalid_uri"`) {
				t.Fatalf("GET of no address: %d %s", st, raw)
			}
			if st, raw := s.api(t, "DELETE", path+"2001:db8:1:2::1", nil); st != http.StatusNoContent {
				t.Fatalf("DELETE: %d %s", st, raw)
			}
			if st, _ := s.api(t, "GET", path+"2001:db8:1:2::1", nil); st != http.StatusNotFound {
				t.Fatalf("GET after DELETE: %d", st)
			}
			if a := s.login(t, s.public, "", "alice@contoso.com", "Alice-Passw0rd!", office); a.status != http.StatusOK {
				t.Fatalf("login after the block was lifted: %d %s", a.status, a.raw)
			}
			// Lifting what is not blocked is no error.
			if st, raw := s.api(t, "DELETE", path+"192.0.2.1", nil); st != http.StatusNoContent {
				t.Fatalf("DELETE of an address never throttled: %d %s", st, raw)
			}
		})
	}
}

// TestUserBlocksByIDFindTypedNames: counters are keyed on the name a user
// typed, and Judy signs in with her UPN, which differs from her email and
// which her profile does not hold (ext_upn off). The user-blocks routes of
// her user id still list and lift the block under it, from the names her
// successful logins recorded.
func TestUserBlocksByIDFindTypedNames(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			s := newSite(t, b, map[string]any{"ext_upn": false, "entra_lockout_threshold": 0})
			if st, raw := s.api(t, "PATCH", "api/v2/attack-protection/brute-force-protection", map[string]any{"max_attempts": 3}); st != http.StatusOK {
				t.Fatalf("patch: %d %s", st, raw)
			}
			const upn, password = "judy@contoso.onmicrosoft.com", "Judy-Passw0rd!"
			if a := s.login(t, s.public, "", upn, password, nil); a.status != http.StatusOK {
				t.Fatalf("login with the UPN: %d %s", a.status, a.raw)
			}
			st, raw := s.api(t, "GET", "api/v2/users-by-email?email=judy@contoso.com", nil)
			var users []struct {
				UserID string          `json:"user_id"`
				UPN    json.RawMessage `json:"upn"`
			}
			if err := json.Unmarshal([]byte(raw), &users); st != http.StatusOK || err != nil || len(users) != 1 || users[0].UPN != nil {
				t.Fatalf("users-by-email: %d %s", st, raw)
			}
			path := "api/v2/user-blocks/" + url.PathEscape(users[0].UserID)
			for i := range 3 {
				if a := s.login(t, s.public, "", upn, "nope", nil); a.status != http.StatusForbidden {
					t.Fatalf("attempt %d: %d %s", i+1, a.status, a.raw)
				}
			}
			if a := s.login(t, s.public, "", upn, password, nil); a.status != http.StatusTooManyRequests {
				t.Fatalf("right password while blocked: %d %s", a.status, a.raw)
			}
			block := `{"blocked_for":[{"identifier":"judy@contoso.onmicrosoft.com","ip":"127.0.0.1","connection":"contoso"}]}` + "\n"
			if st, raw := s.api(t, "GET", path, nil); st != http.StatusOK || raw != block {
				t.Fatalf("user-blocks of the user: %d %s", st, raw)
			}
			if st, raw := s.api(t, "DELETE", path, nil); st != http.StatusNoContent {
				t.Fatalf("delete user-blocks of the user: %d %s", st, raw)
			}
			if st, raw := s.api(t, "GET", "api/v2/user-blocks?identifier="+upn, nil); st != http.StatusOK || raw != `{"blocked_for":[]}`+"\n" {
				t.Fatalf("user-blocks by identifier after the delete: %d %s", st, raw)
			}
			if a := s.login(t, s.public, "", upn, password, nil); a.status != http.StatusOK {
				t.Fatalf("login after the delete: %d %s", a.status, a.raw)
			}
		})
	}
}
