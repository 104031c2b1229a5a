package oauth_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	emulator "github.com/gatehouse/gatehouse/emulator/entra"
	"github.com/gatehouse/gatehouse/emulator/entra/entratest"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/entra"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/server/servertest"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

const (
	nativeAppID  = "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b"
	nativeSecret = "native-secret-value"
	webAPIURI    = "api://8c3d9e2f-1a4b-4c5d-8e6f-7a8b9c0d1e2f"
)

const loadPassword = "Load-Passw0rd!"

func loadUser(i int) string { return fmt.Sprintf("load%05d@contoso.com", i) }

// env is a Gatehouse on a fresh database talking to an in-process Entra
// emulator over loopback HTTP, with a native app and two waad connections.
type env struct {
	url    string
	emu    *emulator.Server
	emuURL string
	logs   *servertest.Buffer
	dsn    string // the database, for tests that change it behind the server
	// secretKey and adminID are the server's master key and bootstrap
	// admin client id, for tests that sign as another replica would.
	secretKey, adminID string
	mgmt               string
	clientID           string
	hc                 *http.Client
	// token2 returns a Management API token narrowed to scopes.
	token2 func(t testing.TB, scopes ...string) string
	// metricsHandler is set with envOptions.metrics.
	metricsHandler http.Handler
	// cfg is the server's configuration, for tests that start another
	// replica on the same database (replica).
	cfg *config.Config
}

// metrics returns the metrics in the Prometheus text format.
func (e *env) metrics(t testing.TB) string {
	t.Helper()
	if e.metricsHandler == nil {
		t.Fatal("metrics are off: set envOptions.metrics")
	}
	rec := httptest.NewRecorder()
	e.metricsHandler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

type envOptions struct {
	emu       emulator.Options
	graphPage int
	quietLogs bool
	// servedLogs logs as gatehouse serve does by default (text, level
	// info: a line per request) to the null device through a real file, so a
	// benchmark pays what a served login pays for its logs, write
	// included.
	servedLogs bool
	// trustLoopback believes X-Forwarded-For from 127.0.0.1, so a load
	// test can spread logins over client addresses as real traffic does.
	trustLoopback bool
	// loadUsers adds users load00000@contoso.com… with loadPassword.
	loadUsers  int
	connection map[string]any // extra options of the v2 connection
	// directory changes the emulator's example directory before it starts.
	directory func(*emulator.Directory)
	// metrics turns the metrics on; env.metrics reads them.
	metrics bool
	// upstream wraps the emulator's handler, to answer what the emulator
	// cannot produce.
	upstream func(http.Handler) http.Handler
}

func newEnv(t testing.TB, backend string, o envOptions) *env {
	t.Helper()
	dir := entratest.Example(t)
	for i := range o.loadUsers {
		dir.Tenants[0].Users = append(dir.Tenants[0].Users, &emulator.User{
			ID:                fmt.Sprintf("d0000000-0000-4000-8000-%012d", i),
			UserPrincipalName: loadUser(i), DisplayName: "Load " + strconv.Itoa(i), Password: loadPassword,
		})
	}
	if o.directory != nil {
		o.directory(dir)
	}
	emu, emuURL := entratest.Start(t, dir, o.emu, o.upstream)

	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String() + "/"
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	cfg := &config.Config{
		Addr:                    ts.Listener.Addr().String(),
		Issuer:                  issuer,
		Database:                storetest.DSN(t, backend),
		AdminClientID:           "admin-" + hex.EncodeToString(key[:4]),
		AdminClientSecret:       "admin-secret-" + hex.EncodeToString(key[4:]),
		SecretKey:               hex.EncodeToString(key),
		LogFormat:               "json",
		LogLevel:                "debug",
		ManagementTokenLifetime: 24 * time.Hour,
		ShutdownTimeout:         5 * time.Second,
		// The operator's allowance for the emulator: Gatehouse sends
		// credentials to no host the operator has not allowed.
		UpstreamHosts: []string{emuURL},
	}
	if o.quietLogs {
		cfg.LogLevel = "warn"
	}
	if o.trustLoopback {
		cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	}
	if o.metrics {
		// Not listened on: the test reads the handler directly.
		cfg.MetricsAddr = "127.0.0.1:0"
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &servertest.Buffer{}
	logger := server.NewLogger(logs, cfg.LogFormat, cfg.LogLevel)
	if o.servedLogs {
		null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { null.Close() })
		cfg.LogFormat, cfg.LogLevel = "text", "info"
		logger = server.NewLogger(null, cfg.LogFormat, cfg.LogLevel)
	}
	srv, err := server.New(context.Background(), cfg, logger, io.Discard,
		server.WithEntraOptions(entra.Options{GraphPageSize: o.graphPage}))
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Config.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	ts.Start()
	t.Cleanup(func() { ts.Close(); srv.Close() })

	e := &env{url: issuer, emu: emu, emuURL: emuURL, logs: logs, dsn: cfg.Database, secretKey: cfg.SecretKey, adminID: cfg.AdminClientID,
		metricsHandler: srv.MetricsHandler(), cfg: cfg,
		hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512}}}
	se := &servertest.Env{URL: issuer, AdminID: cfg.AdminClientID, AdminSecret: cfg.AdminClientSecret}
	e.mgmt = se.ManagementToken(t)
	e.token2 = func(t testing.TB, scopes ...string) string { return se.ManagementToken(t, scopes...) }

	status, body := e.api(t, "POST", "api/v2/clients", map[string]any{
		"name": "Contoso Mobile", "app_type": "native", "token_endpoint_auth_method": "none",
		"grant_types": []string{"password", "http://auth0.com/oauth/grant-type/password-realm"},
	})
	if status != http.StatusCreated {
		t.Fatalf("create client: %d %v", status, body)
	}
	e.clientID = body["client_id"].(string)
	v2 := map[string]any{
		"client_id": nativeAppID, "client_secret": nativeSecret, "tenant_domain": "contoso.onmicrosoft.com",
		"authority_host": emuURL, "graph_host": emuURL,
		"ext_profile": true, "ext_groups": true, "ext_nested_groups": true,
	}
	for k, v := range o.connection {
		v2[k] = v
	}
	e.connection(t, "contoso-v2", v2)
	e.connection(t, "contoso-v1", map[string]any{
		"client_id": nativeAppID, "client_secret": nativeSecret, "tenant_domain": "contoso.onmicrosoft.com",
		"authority_host": emuURL, "graph_host": emuURL,
		"identity_api": "azure-active-directory-v1.0", "app_id": webAPIURI,
		"ext_groups": true, "set_user_root_attributes": "on_first_login",
	})
	return e
}

func (e *env) connection(t testing.TB, name string, opts map[string]any) string {
	t.Helper()
	status, body := e.api(t, "POST", "api/v2/connections", map[string]any{
		"name": name, "strategy": "waad", "options": opts, "enabled_clients": []string{e.clientID},
	})
	if status != http.StatusCreated {
		t.Fatalf("create connection %s: %d %v", name, status, body)
	}
	return body["id"].(string)
}

// api calls the Management API with the admin token.
func (e *env) api(t testing.TB, method, path string, body any) (int, map[string]any) {
	t.Helper()
	status, raw := e.apiRaw(t, method, path, body)
	var m map[string]any
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &m)
	}
	return status, m
}

func (e *env) apiRaw(t testing.TB, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, e.url+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+e.mgmt)
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// tokenResult is an /oauth/token answer.
type tokenResult struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func (r tokenResult) str(k string) string { s, _ := r.body[k].(string); return s }

// login posts a password-realm grant as a form.
func (e *env) login(t testing.TB, realm, user, password, scope string) tokenResult {
	t.Helper()
	return e.token(t, url.Values{
		"grant_type": {"http://auth0.com/oauth/grant-type/password-realm"},
		"client_id":  {e.clientID}, "realm": {realm},
		"username": {user}, "password": {password}, "scope": {scope},
	})
}

func (e *env) token(t testing.TB, form url.Values) tokenResult {
	t.Helper()
	return e.tokenFrom(t, form, "")
}

// tokenFrom posts form as if from client address ip (X-Forwarded-For).
func (e *env) tokenFrom(t testing.TB, form url.Values, ip string) tokenResult {
	t.Helper()
	var h http.Header
	if ip != "" {
		h = http.Header{"X-Forwarded-For": {ip}}
	}
	return e.tokenWith(t, form, h)
}

// tokenWith posts form with the headers h besides its Content-Type.
func (e *env) tokenWith(t testing.TB, form url.Values, h http.Header) tokenResult {
	t.Helper()
	req, _ := http.NewRequest("POST", e.url+"oauth/token", strings.NewReader(form.Encode()))
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := tokenResult{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// replica starts another server on e's database and master key, with the
// same settings, as a second replica runs: its configuration cache is its
// own. The env it returns sends its requests there.
func (e *env) replica(t testing.TB) *env {
	t.Helper()
	srv, err := server.New(context.Background(), e.cfg, server.NewLogger(io.Discard, e.cfg.LogFormat, e.cfg.LogLevel), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); srv.Close() })
	r := *e
	r.url = ts.URL + "/"
	return &r
}
