package server_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
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

// TestNoCanaryInAnyOutput plants distinctive canaries in every secret
// Gatehouse handles (end-user passwords, client secrets, the connection's
// Entra secret, the master key, the admin secret, Gatehouse's and Entra's
// tokens, Authorization headers), drives every flow with them, right and
// wrong, through every error class the Entra emulator produces, and then
// scans every channel: the server's log (at DEBUG, and at INFO), every
// HTTP answer's headers and body, the tenant logs of GET /api/v2/logs,
// the metrics exposition and the database. A secret may appear only where
// an API documents returning it: Gatehouse's own tokens in the token
// response that issues them, client_secret on create, rotation and to
// holders of read:client_keys, and the upstream tokens to holders of
// read:user_idp_tokens.
func TestNoCanaryInAnyOutput(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) { leakScan(t, b, "debug") })
	}
	// INFO drops the DEBUG records, and must not log more instead; the
	// text format quotes otherwise than JSON.
	t.Run(storetest.SQLite+"/info", func(t *testing.T) { leakScan(t, storetest.SQLite, "info") })
}

// leakProbe sends every request of the scan and keeps every answer.
type leakProbe struct {
	t   *testing.T
	env *servertest.Env
	mu  sync.Mutex
	// variants maps each searchable form of a canary to its name.
	variants map[string]string
	plain    []string
	answers  []answer
}

// answer is one HTTP exchange as the caller saw it. allowed are the JSON
// paths ("*" for any element or key) documented to carry a secret.
type answer struct {
	what    string
	status  int
	header  http.Header
	body    []byte
	allowed []string
}

func newCanary(name string) string {
	return "Cnry" + name + rand.Text()[:20]
}

// add registers a secret under name: as sent, URL- and base64-encoded, and
// for a JWT its signature alone.
func (p *leakProbe) add(name, v string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(v) < 12 {
		p.t.Fatalf("canary %s too short to search for: %q", name, v)
	}
	p.plain = append(p.plain, v)
	for _, s := range []string{v, url.QueryEscape(v), url.PathEscape(v),
		base64.StdEncoding.EncodeToString([]byte(v)), base64.RawURLEncoding.EncodeToString([]byte(v))} {
		p.variants[s] = name
	}
	// A JWT's signature, or the secret half of an id.secret token, is
	// the secret alone.
	if parts := strings.Split(v, "."); len(parts) >= 2 && len(parts[len(parts)-1]) >= 16 {
		p.variants[parts[len(parts)-1]] = name + " (last segment)"
		p.plain = append(p.plain, parts[len(parts)-1])
	}
	// The random tail alone catches a secret cut short ("%.20s").
	if strings.HasPrefix(v, "Cnry") {
		p.variants[v[len(v)-14:]] = name + " (tail)"
	}
}

// addBasic registers the Authorization: Basic credentials of id and secret
// in both the encodings clients use.
func (p *leakProbe) addBasic(name, id, secret string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range []string{id + ":" + secret, url.QueryEscape(id) + ":" + url.QueryEscape(secret)} {
		p.variants[base64.StdEncoding.EncodeToString([]byte(s))] = name + " (Basic)"
	}
}

func (p *leakProbe) find(s string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var found []string
	for v, name := range p.variants {
		if strings.Contains(s, v) {
			found = append(found, name)
		}
	}
	sort.Strings(found)
	return found
}

// send runs req and records the answer.
func (p *leakProbe) send(what string, req *http.Request, allowed ...string) (int, http.Header, []byte) {
	p.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
	p.mu.Lock()
	p.answers = append(p.answers, answer{what: what, status: resp.StatusCode, header: resp.Header, body: body, allowed: allowed})
	p.mu.Unlock()
	return resp.StatusCode, resp.Header, body
}

// token posts body to /oauth/token; query is added to the URL, headers
// to the request.
func (p *leakProbe) token(what, contentType, body, query string, header map[string]string, allowed ...string) (int, map[string]any) {
	p.t.Helper()
	u := p.env.URL + "oauth/token"
	if query != "" {
		u += "?" + query
	}
	req, _ := http.NewRequest("POST", u, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	status, _, raw := p.send(what, req, allowed...)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return status, m
}

// form posts v as a form to /oauth/token.
func (p *leakProbe) form(what string, v url.Values, header map[string]string, allowed ...string) (int, map[string]any) {
	p.t.Helper()
	return p.token(what, "application/x-www-form-urlencoded", v.Encode(), "", header, allowed...)
}

// api calls the Management API; body is JSON unless a string.
func (p *leakProbe) api(what, method, path, bearer string, body any, allowed ...string) (int, []byte) {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		s, ok := body.(string)
		if !ok {
			b, _ := json.Marshal(body)
			s = string(b)
		}
		rd = strings.NewReader(s)
	}
	req, _ := http.NewRequest(method, p.env.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	status, _, raw := p.send(what, req, allowed...)
	return status, raw
}

// tokens registers the tokens of a successful token response.
func (p *leakProbe) tokens(what string, m map[string]any) {
	for _, k := range []string{"access_token", "id_token", "refresh_token"} {
		if s, ok := m[k].(string); ok && s != "" {
			p.add(what+" "+k, s)
		}
	}
}

// strip removes the allowed paths from a JSON document.
func strip(v any, path []string) any {
	if len(path) == 0 {
		return nil
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if path[0] != "*" && path[0] != k {
				continue
			}
			if len(path) == 1 {
				delete(x, k)
			} else {
				x[k] = strip(e, path[1:])
			}
		}
	case []any:
		for i, e := range x {
			if path[0] == "*" || path[0] == strconv.Itoa(i) {
				x[i] = strip(e, path[1:])
			}
		}
	}
	return v
}

func (a answer) scanned() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d\n", a.status)
	_ = a.header.Write(&b)
	body := a.body
	if len(a.allowed) > 0 {
		var doc any
		dec := json.NewDecoder(bytes.NewReader(a.body))
		dec.UseNumber()
		if dec.Decode(&doc) == nil {
			for _, path := range a.allowed {
				doc = strip(doc, strings.Split(path, "."))
			}
			var out bytes.Buffer
			enc := json.NewEncoder(&out)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(doc)
			body = out.Bytes()
		}
	}
	b.Write(body)
	return b.String()
}

func leakScan(t *testing.T, backend, level string) {
	format := "json"
	if level == "info" {
		format = "text"
	}
	p := &leakProbe{t: t, variants: map[string]string{}}

	// The emulator's directory, with a canary for every password and
	// for the Native app's secret, which the connection holds.
	dir := entratest.Example(t)
	userPw := map[string]string{}
	for _, tn := range dir.Tenants {
		for _, u := range tn.Users {
			local, _, _ := strings.Cut(u.UserPrincipalName, "@")
			pw := newCanary("Pw" + local)
			if u.Password != "" {
				u.Password = pw
			}
			userPw[u.UserPrincipalName] = pw
			p.add("password of "+u.UserPrincipalName, pw)
		}
	}
	entraSecret := newCanary("EntraSecret")
	var native *emulator.Application
	for _, a := range dir.Tenants[0].Applications {
		if a.AppID == "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b" {
			native = a
		}
	}
	native.PasswordCredentials[0].SecretText = entraSecret
	p.add("connection's Entra client secret", entraSecret)
	confApp := dir.Tenants[0].Applications[2]
	expiredSecret := newCanary("ExpiredEntraSecret")
	for _, pc := range confApp.PasswordCredentials {
		if pc.DisplayName == "expired" {
			pc.SecretText = expiredSecret
		} else {
			pc.SecretText = newCanary("UnusedEntraSecret")
			p.add("Entra secret", pc.SecretText)
		}
	}
	p.add("expired Entra client secret", expiredSecret)

	// Every token Entra issues is a canary: access, refresh and id. The
	// emulator logs where `serve --demo` puts it: into Gatehouse's log.
	var (
		upstreamMu sync.Mutex
		upstream   = map[string]string{}
		emuLogs    servertest.Buffer
	)
	emu, emuURL := entratest.Start(t, dir, emulator.Options{Logger: server.NewLogger(&emuLogs, "json", "debug")}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			var tok map[string]any
			if strings.HasSuffix(r.URL.Path, "/token") && json.Unmarshal(rec.Body.Bytes(), &tok) == nil {
				for _, k := range []string{"access_token", "refresh_token", "id_token"} {
					if s, ok := tok[k].(string); ok {
						p.add("Entra's "+k, s)
						upstreamMu.Lock()
						upstream[k] = s
						upstreamMu.Unlock()
					}
				}
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
		})
	})
	up := func(k string) string {
		upstreamMu.Lock()
		defer upstreamMu.Unlock()
		return upstream[k]
	}
	if emu == nil {
		t.Fatal("no emulator")
	}

	key := make([]byte, 32)
	_, _ = rand.Read(key)
	adminSecret := newCanary("AdminSecret") + newCanary("")
	env := servertest.StartWith(t, backend,
		// Short upstream deadlines, so that a hung Entra is a timeout
		// within the test.
		[]server.Option{server.WithEntraOptions(entra.Options{Timeout: 2 * time.Second, RealmTimeout: 500 * time.Millisecond})},
		servertest.AllowUpstream(emuURL),
		func(c *config.Config) {
			c.LogLevel = level
			c.LogFormat = format
			c.SecretKey = hex.EncodeToString(key)
			c.AdminClientSecret = adminSecret
			c.MetricsAddr = "127.0.0.1:0"
		})
	p.env = env
	p.add("master key", env.Config.SecretKey)
	p.add("master key (base64)", base64.StdEncoding.EncodeToString(key))
	p.add("master key (base64url)", base64.RawURLEncoding.EncodeToString(key))
	p.add("admin client secret", adminSecret)
	p.addBasic("admin client secret", env.AdminID, adminSecret)
	metrics := httptest.NewServer(env.Server.MetricsHandler())
	t.Cleanup(metrics.Close)

	mgmt := func(scope string) string {
		t.Helper()
		v := url.Values{"grant_type": {"client_credentials"}, "client_id": {env.AdminID}, "client_secret": {adminSecret},
			"audience": {env.URL + "api/v2/"}}
		if scope != "" {
			v.Set("scope", scope)
		}
		status, m := p.form("management token "+scope, v, nil, "access_token")
		tok, _ := m["access_token"].(string)
		if status != 200 || tok == "" {
			t.Fatalf("management token: %d %v", status, m)
		}
		p.add("management token "+scope, tok)
		return tok
	}
	admin := mgmt("")
	mustAPI := func(what, method, path string, body any, want int, allowed ...string) map[string]any {
		t.Helper()
		status, raw := p.api(what, method, path, admin, body, allowed...)
		if status != want {
			t.Fatalf("%s: %d %s, want %d", what, status, raw, want)
		}
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		return m
	}

	// Attack protection would block the users the scan refuses again and
	// again; its answers are not what is under test here.
	mustAPI("disable brute force", "PATCH", "api/v2/attack-protection/brute-force-protection", map[string]any{"enabled": false}, 200)
	mustAPI("disable IP throttling", "PATCH", "api/v2/attack-protection/suspicious-ip-throttling", map[string]any{"enabled": false}, 200)

	grants := []string{"password", "http://auth0.com/oauth/grant-type/password-realm", "refresh_token"}
	public := mustAPI("create public client", "POST", "api/v2/clients", map[string]any{"name": "Mobile", "app_type": "native",
		"token_endpoint_auth_method": "none", "grant_types": grants}, 201)
	publicID, _ := public["client_id"].(string)
	conf := mustAPI("create confidential client", "POST", "api/v2/clients", map[string]any{"name": "Backend", "app_type": "regular_web",
		"grant_types": append(grants, "client_credentials"), "refresh_token": map[string]any{"rotation_type": "rotating", "expiration_type": "expiring"}},
		201, "client_secret")
	confID, _ := conf["client_id"].(string)
	confSecret, _ := conf["client_secret"].(string)
	p.add("generated client secret", confSecret)
	p.addBasic("generated client secret", confID, confSecret)
	basicSecret := newCanary("BasicSecret") + newCanary("")
	p.add("chosen client secret", basicSecret)
	basicApp := mustAPI("create Basic client", "POST", "api/v2/clients", map[string]any{"name": "Basic", "app_type": "regular_web",
		"token_endpoint_auth_method": "client_secret_basic", "grant_types": grants}, 201, "client_secret")
	basicID, _ := basicApp["client_id"].(string)
	p.add("generated Basic client secret", fmt.Sprint(basicApp["client_secret"]))
	basicApp = mustAPI("set client secret", "PATCH", "api/v2/clients/"+basicID, map[string]any{"client_secret": basicSecret}, 200, "client_secret")
	p.addBasic("chosen client secret", basicID, basicSecret)
	if confSecret == "" || basicApp["client_secret"] != basicSecret {
		t.Fatalf("create and patch answers lack the client_secret: %v %v", conf["client_secret"], basicApp["client_secret"])
	}
	mustAPI("create API", "POST", "api/v2/resource-servers", map[string]any{"name": "Orders", "identifier": "https://orders.example/",
		"scopes": []map[string]string{{"value": "read:orders"}}}, 201)
	mustAPI("grant API", "POST", "api/v2/client-grants", map[string]any{"client_id": confID, "audience": "https://orders.example/",
		"scope": []string{"read:orders"}}, 201)

	connOptions := func(secret string) map[string]any {
		return map[string]any{"client_id": native.AppID, "client_secret": secret, "tenant_domain": "contoso.onmicrosoft.com",
			"authority_host": emuURL, "graph_host": emuURL, "ext_access_token": true, "ext_refresh_token": true,
			"ext_profile": true, "ext_groups": true}
	}
	conn := mustAPI("create connection", "POST", "api/v2/connections", map[string]any{"name": "contoso", "strategy": "waad",
		"enabled_clients": []string{publicID, confID, basicID}, "options": connOptions(entraSecret)}, 201)
	connID, _ := conn["id"].(string)
	wrongEntra := newCanary("WrongEntraSecret")
	p.add("wrong Entra client secret", wrongEntra)
	badConn := mustAPI("create connection with a wrong secret", "POST", "api/v2/connections", map[string]any{"name": "contoso-wrong-secret",
		"strategy": "waad", "enabled_clients": []string{publicID}, "options": connOptions(wrongEntra)}, 201)
	badConnID, _ := badConn["id"].(string)
	// Connections Entra refuses in other ways: each class of
	// misconfiguration, the v1 endpoint, the common endpoint.
	variants := map[string]map[string]any{
		"contoso-v1":           {"identity_api": "azure-active-directory-v1.0", "app_id": "https://graph.microsoft.com"},
		"contoso-common":       {"useCommonEndpoint": true, "allowed_tenants": []string{"9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"}},
		"contoso-expired":      {"client_id": confApp.AppID, "client_secret": expiredSecret},
		"contoso-no-secret":    {"client_id": confApp.AppID, "client_secret": nil},
		"contoso-unconsented":  {"client_id": dir.Tenants[0].Applications[3].AppID, "client_secret": nil},
		"contoso-wrong-tenant": {"tenant_domain": "fabrikam.onmicrosoft.com"},
	}
	var variantIDs []string
	for name, opts := range variants {
		o := connOptions(entraSecret)
		for k, v := range opts {
			if v == nil {
				delete(o, k)
			} else {
				o[k] = v
			}
		}
		c := mustAPI("create connection "+name, "POST", "api/v2/connections", map[string]any{"name": name, "strategy": "waad",
			"enabled_clients": []string{publicID}, "options": o}, 201)
		id, _ := c["id"].(string)
		variantIDs = append(variantIDs, id)
	}
	mustAPI("default directory", "PATCH", "api/v2/tenants/settings", map[string]any{"default_directory": "contoso"}, 200)
	mustAPI("patch connection with its secret", "PATCH", "api/v2/connections/"+connID, map[string]any{"options": connOptions(entraSecret)}, 200)
	mustAPI("get connection", "GET", "api/v2/connections/"+connID, nil, 200)
	mustAPI("list connections", "GET", "api/v2/connections", nil, 200)
	urlCred := newCanary("UrlPassword")
	p.add("password in a URL", urlCred)
	optsWith := func(k string, v any) string {
		o := connOptions(entraSecret)
		o[k] = v
		b, _ := json.Marshal(map[string]any{"options": o})
		return string(b)
	}
	full := optsWith("client_secret", entraSecret)
	for name, body := range map[string]string{
		"malformed connection patch":     strings.TrimSuffix(full, "}"),
		"connection patch, bad type":     optsWith("client_secret", []string{entraSecret}),
		"connection patch, bad host":     optsWith("authority_host", "https://u:"+urlCred+"@login.example"),
		"connection patch, graph host":   optsWith("graph_host", "https://graph.example/?key="+urlCred),
		"connection patch, unknown host": optsWith("authority_host", "https://"+strings.ToLower(urlCred)+".example"),
		"connection patch, repeated":     strings.Replace(full, `"client_secret":`, `"client_secret":"x","client_secret":`, 1),
		"connection patch, extra":        strings.TrimSuffix(full, "}") + `,"secret":"` + entraSecret + `"}`,
		"connection patch, trailing":     full + entraSecret,
	} {
		if status, raw := p.api(name, "PATCH", "api/v2/connections/"+connID, admin, body); status != 400 {
			t.Errorf("%s: %d %s", name, status, raw)
		}
	}

	// An application's URLs, pasted with a password.
	for name, body := range map[string]any{
		"callback with a password":       map[string]any{"callbacks": []string{"https://u:" + urlCred + "@app.example/cb"}},
		"callback with a password, bad":  map[string]any{"callbacks": []string{"https://u:" + urlCred + "@app.example/cb#x"}},
		"callback with a token as user":  map[string]any{"callbacks": []string{"https://" + urlCred + "@app.example/cb"}},
		"origin with a password":         map[string]any{"web_origins": []string{"https://u:" + urlCred + "@app.example"}},
		"logout URL with a bad password": map[string]any{"allowed_logout_urls": []string{"https://u:" + urlCred + "%zz@app.example/"}},
	} {
		if status, raw := p.api(name, "PATCH", "api/v2/clients/"+confID, admin, body); status != 400 {
			t.Errorf("%s: %d %s", name, status, raw)
		}
	}
	// A start refused for an upstream host pasted with a password: the
	// error is what `gatehouse serve` prints.
	for _, host := range []string{"https://u:" + urlCred + "@proxy.example", "https://proxy.example/?key=" + urlCred,
		"https://u:" + urlCred + "%zz@proxy.example"} {
		cfg := *env.Config
		cfg.Database = storetest.DSN(t, backend)
		cfg.UpstreamHosts = []string{host}
		if srv, err := server.New(t.Context(), &cfg, server.NewLogger(env.Logs, format, level), io.Discard); err == nil {
			srv.Close()
			t.Errorf("start with upstream host %s succeeded", host)
		} else {
			p.answers = append(p.answers, answer{what: "start refused", body: []byte(err.Error())})
		}
	}

	// Configuration refused at start, each setting that holds a secret
	// or may be pasted with one: the error goes to the terminal or the
	// container's log.
	cfgSecret := newCanary("ConfigSecret")
	p.add("secret in the configuration", cfgSecret)
	for _, env := range []map[string]string{
		{"GATEHOUSE_UPSTREAM_HOSTS": "https://u:" + cfgSecret + "@proxy.example"},
		{"GATEHOUSE_UPSTREAM_HOSTS": "https://proxy.example/?key=" + cfgSecret},
		{"GATEHOUSE_UPSTREAM_HOSTS": "https://u:" + cfgSecret + "%zz@proxy.example"},
		{"GATEHOUSE_UPSTREAM_HOSTS": "http://u:" + cfgSecret + "@proxy.example"},
		{"GATEHOUSE_ISSUER": "https://u:" + cfgSecret + "@id.example/"},
		{"GATEHOUSE_ISSUER": "https://u:" + cfgSecret + "%zz@id.example/"},
		{"GATEHOUSE_ISSUER": "https://id.example/?key=" + cfgSecret},
		{"GATEHOUSE_ADMIN_CLIENT_ID": "admin", "GATEHOUSE_ADMIN_CLIENT_SECRET": cfgSecret[:20]},
		{"GATEHOUSE_DATABASE": "mysql://u:" + cfgSecret + "@db.example/x"},
	} {
		_, err := config.Load(nil, func(k string) string { return env[k] })
		if err == nil {
			t.Errorf("configuration %v accepted", env)
			continue
		}
		p.answers = append(p.answers, answer{what: fmt.Sprintf("configuration %v refused", env), body: []byte(err.Error())})
	}
	for _, dsn := range []string{"postgres://u:" + cfgSecret + "@127.0.0.1:badport/x", "postgres://u:" + cfgSecret + "%zz@127.0.0.1/x",
		"postgres://u:" + cfgSecret + "@127.0.0.1:1/x?connect_timeout=1", "postgres://u@127.0.0.1/x?sslmode=bogus&password=" + cfgSecret, "key:" + cfgSecret, "old key:" + cfgSecret} {
		cfg := *env.Config
		switch k, v, _ := strings.Cut(dsn, ":"); k {
		case "key":
			cfg.Database, cfg.SecretKey = storetest.DSN(t, backend), v
		case "old key":
			cfg.Database, cfg.SecretKeyOld = storetest.DSN(t, backend), env.Config.SecretKey+","+v
		default:
			cfg.Database = dsn
		}
		if srv, err := server.New(t.Context(), &cfg, server.NewLogger(env.Logs, format, level), io.Discard); err == nil {
			srv.Close()
			t.Errorf("start with %s succeeded", dsn)
		} else {
			p.answers = append(p.answers, answer{what: "start with a bad database or key refused", body: []byte(err.Error())})
		}
	}

	form := func(grant, client, user, pw string) url.Values {
		v := url.Values{"grant_type": {grant}, "client_id": {client}, "username": {user}, "password": {pw}, "scope": {"openid profile offline_access"}}
		if grant != "password" {
			v.Set("realm", "contoso")
		}
		return v
	}
	const realmGrant = "http://auth0.com/oauth/grant-type/password-realm"
	alice, alicePw := "alice@contoso.com", userPw["alice@contoso.com"]
	wrongPw := newCanary("WrongPw")
	p.add("wrong password", wrongPw)
	issued := map[string]string{}
	login := func(what string, v url.Values, header map[string]string) map[string]any {
		t.Helper()
		status, m := p.form(what, v, header, "access_token", "id_token", "refresh_token")
		if status != 200 {
			t.Fatalf("%s: %d %v", what, status, m)
		}
		p.tokens(what, m)
		return m
	}

	// Upstream failures before the first login: metadata, then keys.
	for _, f := range []struct {
		endpoint string
		fault    emulator.Fault
	}{
		{"metadata", emulator.Fault{Status: 500, Times: 1}},
		{"metadata", emulator.Fault{Drop: true, Times: 1}},
		{"keys", emulator.Fault{Status: 503, Times: 1}},
	} {
		if err := emu.SetFault(f.endpoint, f.fault); err != nil {
			t.Fatal(err)
		}
		// The metadata GET is retried, so the login may still succeed.
		if status, m := p.form("login while "+f.endpoint+" fails", form(realmGrant, publicID, alice, alicePw), nil,
			"access_token", "id_token", "refresh_token"); status == 200 {
			p.tokens("login while "+f.endpoint+" fails", m)
		}
		emu.ClearFaults()
	}

	// The logins that succeed, one per client authentication.
	first := login("password-realm login", form(realmGrant, publicID, alice, alicePw), nil)
	issued["public refresh"], _ = first["refresh_token"].(string)
	issued["access"], _ = first["access_token"].(string)
	issued["id"], _ = first["id_token"].(string)
	confLogin := form("password", confID, "judy@contoso.onmicrosoft.com", userPw["judy@contoso.onmicrosoft.com"])
	confLogin.Set("client_secret", confSecret)
	second := login("password grant, secret in the form", confLogin, nil)
	issued["conf refresh"], _ = second["refresh_token"].(string)
	basicLogin := form(realmGrant, basicID, alice, alicePw)
	basicLogin.Del("client_id")
	login("password-realm login, Basic secret", basicLogin, map[string]string{"Authorization": "Basic " + basic(basicID, basicSecret)})
	jsonOf := func(v url.Values) string {
		m := map[string]string{}
		for k := range v {
			m[k] = v.Get(k)
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	if status, m := p.token("password grant as JSON", "application/json", jsonOf(confLogin), "", nil, "access_token", "id_token", "refresh_token"); status != 200 {
		t.Fatalf("password grant as JSON: %d %v", status, m)
	} else {
		p.tokens("JSON login", m)
	}

	// Every refusal Entra can give, each user with their own canary.
	for _, u := range []string{"bob@contoso.com", "carol@contoso.com", "dave@contoso.com", "erin@contoso.com", "frank@contoso.com",
		"grace@corp.contoso.com", "heidi@contoso.com", "ivan@contoso.com", "mallory@fabrikam.onmicrosoft.com", "nobody@contoso.com"} {
		pw := userPw[u]
		if pw == "" {
			pw = wrongPw
		}
		if status, m := p.form("login of "+u, form(realmGrant, publicID, u, pw), nil); status == 200 {
			t.Errorf("login of %s succeeded: %v", u, m)
		}
	}
	if status, m := p.form("login with the wrong Entra secret", url.Values{"grant_type": {realmGrant}, "realm": {"contoso-wrong-secret"},
		"client_id": {publicID}, "username": {alice}, "password": {alicePw}}, nil); status != 500 {
		t.Errorf("login with the wrong Entra secret: %d %v", status, m)
	}

	for name := range variants {
		for _, u := range []string{alice, "mallory@fabrikam.onmicrosoft.com"} {
			what := "login of " + u + " at " + name
			status, m := p.form(what, url.Values{"grant_type": {realmGrant}, "realm": {name}, "client_id": {publicID},
				"username": {u}, "password": {userPw[u]}, "scope": {"openid offline_access"}}, nil, "access_token", "id_token", "refresh_token")
			if status == 200 {
				p.tokens(what, m)
			}
		}
	}
	for _, id := range variantIDs {
		p.api("try "+id, "POST", "api/v2/connections/"+id+"/try", admin, `{"username":"`+alice+`","password":"`+alicePw+`"}`)
	}

	// Entra failing or slow, at each endpoint of a login.
	for i, f := range []struct {
		endpoint string
		fault    emulator.Fault
		pw       string
	}{
		{"token", emulator.Fault{Status: 500, Times: 1}, alicePw},
		{"token", emulator.Fault{Status: 503, RetryAfter: 7, Times: 1}, alicePw},
		{"token", emulator.Fault{Status: 429, RetryAfter: 2.5, Times: 1}, alicePw},
		{"token", emulator.Fault{Drop: true, Times: 1}, alicePw},
		{"token", emulator.Fault{Delay: emulator.Duration(3 * time.Second), Times: 1}, alicePw},
		{"token", emulator.Fault{SlowBody: emulator.Duration(3 * time.Second), Times: 1}, alicePw},
		{"userrealm", emulator.Fault{Status: 500, Times: 1}, wrongPw},
		{"userrealm", emulator.Fault{Drop: true, Times: 1}, wrongPw},
		{"userrealm", emulator.Fault{Delay: emulator.Duration(time.Second), Times: 1}, wrongPw},
		{"graph", emulator.Fault{Status: 500, Times: 2}, alicePw},
		{"graph", emulator.Fault{Status: 429, RetryAfter: 1, Times: 2}, alicePw},
		{"graph", emulator.Fault{Drop: true, Times: 2}, alicePw},
		{"graph", emulator.Fault{Delay: emulator.Duration(3 * time.Second), Times: 2}, alicePw},
	} {
		if err := emu.SetFault(f.endpoint, f.fault); err != nil {
			t.Fatal(err)
		}
		what := fmt.Sprintf("login while %s answers %+v", f.endpoint, f.fault)
		user := alice
		if f.endpoint == "userrealm" {
			// Realms are cached by domain: each fault needs a domain not
			// looked up yet.
			user = fmt.Sprintf("nobody@realm%d.example", i)
		}
		status, m := p.form(what, form(realmGrant, publicID, user, f.pw), nil, "access_token", "id_token", "refresh_token")
		if status == 200 {
			p.tokens(what, m)
		}
		emu.ClearFaults()
	}

	// Malformed and hostile requests carrying passwords and secrets.
	wrongSecret := newCanary("WrongSecret")
	p.add("wrong client secret", wrongSecret)
	p.addBasic("wrong client secret", confID, wrongSecret)
	p.addBasic("wrong client secret", basicID, wrongSecret)
	wrong := form(realmGrant, publicID, alice, wrongPw)
	withSecret := func(v url.Values, id, secret string) url.Values {
		out := url.Values{}
		for k, vs := range v {
			out[k] = vs
		}
		out.Set("client_id", id)
		out.Set("client_secret", secret)
		return out
	}
	noPw := form(realmGrant, publicID, alice, "")
	noPw.Del("password")
	for _, tc := range []struct {
		name, ct, body, query string
		header                map[string]string
		status                int
	}{
		{"wrong password", "application/x-www-form-urlencoded", wrong.Encode(), "", nil, 403},
		{"wrong password as JSON", "application/json", jsonOf(wrong), "", nil, 403},
		{"password sent twice", "application/x-www-form-urlencoded", wrong.Encode() + "&password=" + url.QueryEscape(alicePw), "", nil, 400},
		{"password in the query", "application/x-www-form-urlencoded", noPw.Encode(), "password=" + url.QueryEscape(alicePw) +
			"&client_secret=" + url.QueryEscape(wrongSecret), nil, 400},
		{"password in the query and the body", "application/x-www-form-urlencoded", wrong.Encode(), "password=" + url.QueryEscape(alicePw), nil, 403},
		{"JSON with a malformed tail", "application/json", jsonOf(wrong) + `,"password":"` + alicePw + `"`, "", nil, 400},
		{"JSON cut short", "application/json", `{"grant_type":"password","password":"` + alicePw, "", nil, 400},
		{"JSON with trailing data", "application/json", jsonOf(wrong) + alicePw, "", nil, 400},
		{"JSON password repeated", "application/json", strings.TrimSuffix(jsonOf(wrong), "}") + `,"password":"` + alicePw + `"}`, "", nil, 400},
		{"JSON password not a string", "application/json", `{"grant_type":"password","password":["` + alicePw + `"]}`, "", nil, 400},
		{"JSON password a number", "application/json", `{"grant_type":"password","password":1` + alicePw[4:] + `}`, "", nil, 400},
		{"password not UTF-8", "application/x-www-form-urlencoded", wrong.Encode() + "&x=%FF" + alicePw, "", nil, 400},
		{"malformed form", "application/x-www-form-urlencoded", "password=" + alicePw + "%zz&grant_type=password", "", nil, 400},
		{"wrong content type", "text/plain", wrong.Encode(), "", nil, 400},
		{"body too large", "application/x-www-form-urlencoded", wrong.Encode() + "&pad=" + strings.Repeat("x", 70<<10), "", nil, 413},
		{"wrong client secret in the form", "application/x-www-form-urlencoded", withSecret(confLogin, confID, wrongSecret).Encode(), "", nil, 401},
		{"wrong client secret as JSON", "application/json", jsonOf(withSecret(confLogin, confID, wrongSecret)), "", nil, 401},
		{"wrong Basic secret", "application/x-www-form-urlencoded", basicLogin.Encode(), "",
			map[string]string{"Authorization": "Basic " + basic(basicID, wrongSecret)}, 401},
		{"Basic secret sent in the form", "application/x-www-form-urlencoded", withSecret(basicLogin, basicID, basicSecret).Encode(), "", nil, 401},
		{"secrets in the header and the form", "application/x-www-form-urlencoded", withSecret(confLogin, confID, confSecret).Encode(), "",
			map[string]string{"Authorization": "Basic " + basic(confID, confSecret)}, 401},
		{"malformed Basic header", "application/x-www-form-urlencoded", basicLogin.Encode(), "",
			map[string]string{"Authorization": "Basic " + basicSecret}, 401},
		{"Bearer at the token endpoint", "application/x-www-form-urlencoded", basicLogin.Encode(), "",
			map[string]string{"Authorization": "Bearer " + basicSecret}, 401},
		{"public client sending a secret", "application/x-www-form-urlencoded", withSecret(wrong, publicID, wrongSecret).Encode(), "", nil, 401},
		{"unknown client with a secret", "application/x-www-form-urlencoded", withSecret(wrong, "nope", wrongSecret).Encode(), "", nil, 401},
		{"unknown realm", "application/x-www-form-urlencoded", strings.Replace(wrong.Encode(), "realm=contoso", "realm="+wrongSecret, 1), "", nil, 400},
		{"unknown grant", "application/x-www-form-urlencoded", strings.Replace(wrong.Encode(), "grant_type=", "grant_type=x", 1), "", nil, 400},
		{"wrong refresh token", "application/x-www-form-urlencoded", url.Values{"grant_type": {"refresh_token"}, "client_id": {publicID},
			"refresh_token": {wrongSecret}}.Encode(), "", nil, 403},
		{"refresh token of another client", "application/x-www-form-urlencoded", url.Values{"grant_type": {"refresh_token"},
			"client_id": {confID}, "client_secret": {confSecret}, "refresh_token": {issued["public refresh"]}}.Encode(), "", nil, 403},
		{"Entra refresh token as refresh token", "application/x-www-form-urlencoded", url.Values{"grant_type": {"refresh_token"},
			"client_id": {publicID}, "refresh_token": {up("refresh_token")}}.Encode(), "", nil, 403},
		{"access token as refresh token", "application/x-www-form-urlencoded", url.Values{"grant_type": {"refresh_token"},
			"client_id": {publicID}, "refresh_token": {issued["access"]}}.Encode(), "", nil, 403},
		{"Entra access token as client assertion", "application/x-www-form-urlencoded", url.Values{"grant_type": {"client_credentials"},
			"client_id": {confID}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion": {up("access_token")}}.Encode(), "", nil, 401},
		{"ID token as client assertion", "application/x-www-form-urlencoded", url.Values{"grant_type": {"client_credentials"},
			"client_id": {confID}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion": {issued["id"]}}.Encode(), "", nil, 401},
		{"refresh token in the query", "application/x-www-form-urlencoded", url.Values{"grant_type": {"refresh_token"}, "client_id": {publicID}}.Encode(),
			"refresh_token=" + url.QueryEscape(issued["public refresh"]), nil, 400},
		{"client credentials, wrong secret", "application/x-www-form-urlencoded", url.Values{"grant_type": {"client_credentials"},
			"client_id": {confID}, "client_secret": {wrongSecret}, "audience": {"https://orders.example/"}}.Encode(), "", nil, 401},
		{"client credentials, wrong Basic secret", "application/x-www-form-urlencoded", url.Values{"grant_type": {"client_credentials"},
			"audience": {"https://orders.example/"}}.Encode(), "", map[string]string{"Authorization": "Basic " + basic(confID, wrongSecret)}, 401},
		{"client credentials, unknown audience", "application/x-www-form-urlencoded", url.Values{"grant_type": {"client_credentials"},
			"client_id": {confID}, "client_secret": {confSecret}, "audience": {"https://unknown.example/"}}.Encode(), "", nil, 403},
	} {
		status, m := p.token(tc.name, tc.ct, tc.body, tc.query, tc.header)
		if status != tc.status {
			t.Errorf("%s: %d %v, want %d", tc.name, status, m, tc.status)
		}
	}
	// Two Authorization headers, and a header too large to be read.
	req, _ := http.NewRequest("POST", env.URL+"oauth/token", strings.NewReader(basicLogin.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Add("Authorization", "Basic "+basic(basicID, basicSecret))
	req.Header.Add("Authorization", "Basic "+basic(basicID, wrongSecret))
	p.send("two Authorization headers", req)
	req, _ = http.NewRequest("POST", env.URL+"oauth/token", strings.NewReader(wrong.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Pad", strings.Repeat("y", 2<<20)+alicePw)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		p.mu.Lock()
		p.answers = append(p.answers, answer{what: "huge header", status: resp.StatusCode, header: resp.Header, body: b})
		p.mu.Unlock()
	}

	// Requests net/http itself refuses, written raw: its answers must not
	// echo the header or request line that carried the secret.
	host := strings.TrimSuffix(strings.TrimPrefix(env.URL, "http://"), "/")
	for name, raw := range map[string]string{
		"control character in Authorization": "POST /oauth/token HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Basic " + basic(confID, confSecret) + "\x01\r\n\r\n",
		"header without a colon":             "POST /oauth/token HTTP/1.1\r\nHost: " + host + "\r\nclient_secret " + confSecret + "\r\n\r\n",
		"space in the request target":        "GET /userinfo?access_token=" + issued["access"] + " x HTTP/1.1\r\nHost: " + host + "\r\n\r\n",
		"bad transfer encoding":              "POST /oauth/token HTTP/1.1\r\nHost: " + host + "\r\nTransfer-Encoding: " + confSecret + "\r\n\r\n",
		"bad chunked body":                   "POST /oauth/token HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n5\r\npassword=" + alicePw + "\r\n",
		"bad host":                           "POST /oauth/token HTTP/1.1\r\nHost: u:" + confSecret + "@" + host + "\r\n\r\n",
		"folded header":                      "POST /oauth/token HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Basic\r\n " + basic(confID, confSecret) + "\r\n\r\n",
	} {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(c, raw)
		out, _ := io.ReadAll(c)
		c.Close()
		p.mu.Lock()
		p.answers = append(p.answers, answer{what: "raw: " + name, body: out})
		p.mu.Unlock()
	}

	// Client credentials, each way of sending the secret.
	cc := url.Values{"grant_type": {"client_credentials"}, "audience": {"https://orders.example/"}}
	for _, tc := range []struct {
		name, ct, body string
		header         map[string]string
	}{
		{"client credentials, form", "application/x-www-form-urlencoded", withSecret(cc, confID, confSecret).Encode(), nil},
		{"client credentials, JSON", "application/json", jsonOf(withSecret(cc, confID, confSecret)), nil},
		{"client credentials, Basic", "application/x-www-form-urlencoded", cc.Encode(), map[string]string{"Authorization": "Basic " + basic(confID, confSecret)}},
	} {
		status, m := p.token(tc.name, tc.ct, tc.body, "", tc.header, "access_token")
		if status != 200 {
			t.Errorf("%s: %d %v", tc.name, status, m)
		}
		p.tokens(tc.name, m)
	}

	// private_key_jwt: the assertion is a credential until it expires, and
	// a private key sent in place of the public one must not come back.
	signer, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&signer.PublicKey)
	privDER, _ := x509.MarshalPKCS8PrivateKey(signer)
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))
	for i, line := range strings.Split(privPEM, "\n") {
		if len(line) == 64 && i > 2 {
			p.add(fmt.Sprintf("private key, line %d", i), line)
		}
	}
	p.add("private key (DER, base64)", base64.StdEncoding.EncodeToString(privDER))
	signed := mustAPI("create private_key_jwt client", "POST", "api/v2/clients", map[string]any{"name": "Signed", "app_type": "non_interactive",
		"grant_types": []string{"client_credentials"}}, 201, "client_secret")
	signedID, _ := signed["client_id"].(string)
	p.add("private_key_jwt client's first secret", fmt.Sprint(signed["client_secret"]))
	mustAPI("grant API to the signed client", "POST", "api/v2/client-grants", map[string]any{"client_id": signedID, "audience": "https://orders.example/",
		"scope": []string{"read:orders"}}, 201)
	for _, body := range []map[string]any{
		{"credential_type": "public_key", "pem": privPEM},
		{"credential_type": "public_key", "pem": strings.Replace(privPEM, "PRIVATE KEY", "PUBLIC KEY", 2)},
		{"credential_type": "public_key", "pem": strings.Replace(privPEM, "PRIVATE KEY", "CERTIFICATE", 2)},
		{"credential_type": "public_key", "pem": privPEM + privPEM},
		{"credential_type": "x509_cert", "pem": privPEM},
	} {
		if status, raw := p.api("private key as credential", "POST", "api/v2/clients/"+signedID+"/credentials", admin, body); status != 400 {
			t.Errorf("private key as credential: %d %s", status, raw)
		}
	}
	cred := mustAPI("add public key", "POST", "api/v2/clients/"+signedID+"/credentials", map[string]any{"credential_type": "public_key",
		"pem": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))}, 201)
	mustAPI("use private_key_jwt", "PATCH", "api/v2/clients/"+signedID, map[string]any{"client_authentication_methods": map[string]any{
		"private_key_jwt": map[string]any{"credentials": []map[string]any{{"id": cred["id"]}}}}}, 200, "client_secret")
	assertion := func(aud string, exp time.Duration) string {
		seg := func(v any) string {
			b, _ := json.Marshal(v)
			return base64.RawURLEncoding.EncodeToString(b)
		}
		now := time.Now()
		in := seg(map[string]any{"alg": "RS256", "typ": "JWT"}) + "." + seg(map[string]any{"iss": signedID, "sub": signedID, "aud": aud,
			"iat": now.Unix(), "exp": now.Add(exp).Unix(), "jti": rand.Text()})
		sum := sha256.Sum256([]byte(in))
		sig, err := rsa.SignPKCS1v15(rand.Reader, signer, crypto.SHA256, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		a := in + "." + base64.RawURLEncoding.EncodeToString(sig)
		p.add("client assertion", a)
		return a
	}
	good := assertion(env.URL+"oauth/token", time.Minute)
	ccAssertion := func(a string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {signedID}, "audience": {"https://orders.example/"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
	}
	if status, m := p.form("client assertion", ccAssertion(good), nil, "access_token"); status != 200 {
		t.Errorf("client assertion: %d %v", status, m)
	} else {
		p.tokens("client assertion", m)
	}
	for name, a := range map[string]string{
		"replayed assertion":        good,
		"assertion for another aud": assertion("https://elsewhere.example/", time.Minute),
		"assertion too long-lived":  assertion(env.URL, 24*time.Hour),
		"expired assertion":         assertion(env.URL, -time.Minute),
		"assertion, bad signature":  good[:len(good)-8] + "AAAAAAAA",
		"assertion cut short":       good[:len(good)/2],
	} {
		if status, m := p.form(name, ccAssertion(a), nil); status != 401 {
			t.Errorf("%s: %d %v", name, status, m)
		}
	}
	if status, m := p.token("assertion as JSON with a secret", "application/json", jsonOf(withSecret(ccAssertion(good), signedID, wrongSecret)), "", nil); status != 401 {
		t.Errorf("assertion with a secret: %d %v", status, m)
	}

	// Refresh: form, JSON with a secret, and a reused rotated token.
	status, m := p.form("refresh", url.Values{"grant_type": {"refresh_token"}, "client_id": {publicID}, "refresh_token": {issued["public refresh"]}},
		nil, "access_token", "id_token", "refresh_token")
	if status != 200 {
		t.Errorf("refresh: %d %v", status, m)
	}
	p.tokens("refresh", m)
	refreshJSON := jsonOf(url.Values{"grant_type": {"refresh_token"}, "client_id": {confID}, "client_secret": {confSecret}, "refresh_token": {issued["conf refresh"]}})
	status, m = p.token("rotating refresh as JSON", "application/json", refreshJSON, "", nil, "access_token", "id_token", "refresh_token")
	if status != 200 {
		t.Errorf("rotating refresh: %d %v", status, m)
	}
	p.tokens("rotating refresh", m)
	rotated, _ := m["refresh_token"].(string)
	time.Sleep(10 * time.Millisecond)
	if status, m = p.token("reused refresh token", "application/json", refreshJSON, "", nil); status != 403 {
		t.Errorf("reused refresh token: %d %v", status, m)
	}

	// Userinfo: header, form, query, and a wrong token.
	access := issued["access"]
	for _, tc := range []struct {
		name, method, path, body, auth string
	}{
		{"userinfo", "GET", "userinfo", "", "Bearer " + access},
		{"userinfo by POST", "POST", "userinfo", "access_token=" + url.QueryEscape(access), ""},
		{"userinfo token in the query", "GET", "userinfo?access_token=" + url.QueryEscape(access), "", ""},
		{"userinfo wrong token", "GET", "userinfo", "", "Bearer " + wrongSecret},
		{"userinfo Basic", "GET", "userinfo", "", "Basic " + basic(confID, confSecret)},
		{"userinfo refresh token as bearer", "GET", "userinfo", "", "Bearer " + issued["public refresh"]},
		{"userinfo ID token as bearer", "GET", "userinfo", "", "Bearer " + issued["id"]},
		{"userinfo Entra access token", "GET", "userinfo", "", "Bearer " + up("access_token")},
		{"userinfo Entra ID token", "GET", "userinfo", "", "Bearer " + up("id_token")},
	} {
		var rd io.Reader
		if tc.body != "" {
			rd = strings.NewReader(tc.body)
		}
		req, _ := http.NewRequest(tc.method, env.URL+tc.path, rd)
		if tc.body != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		p.send(tc.name, req)
	}

	// Revocation: the right token, a wrong one, another client's.
	for _, tc := range []struct {
		name string
		v    url.Values
	}{
		{"revoke wrong token", url.Values{"client_id": {publicID}, "token": {wrongSecret}}},
		{"revoke another client's token", url.Values{"client_id": {confID}, "client_secret": {confSecret}, "token": {issued["public refresh"]}}},
		{"revoke with a wrong secret", url.Values{"client_id": {confID}, "client_secret": {wrongSecret}, "token": {rotated}}},
		{"revoke", url.Values{"client_id": {confID}, "client_secret": {confSecret}, "token": {rotated}}},
		{"revoke public", url.Values{"client_id": {publicID}, "token": {issued["public refresh"]}}},
	} {
		req, _ := http.NewRequest("POST", env.URL+"oauth/revoke", strings.NewReader(tc.v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		p.send(tc.name, req)
	}
	req, _ = http.NewRequest("POST", env.URL+"oauth/revoke", strings.NewReader(`{"client_id":"`+publicID+`","token":"`+wrongSecret))
	req.Header.Set("Content-Type", "application/json")
	p.send("revoke malformed JSON", req)

	// The try endpoint: right, wrong, malformed.
	for _, tc := range []struct {
		name, conn, body string
	}{
		{"try", connID, `{"username":"` + alice + `","password":"` + alicePw + `"}`},
		{"try wrong password", connID, `{"username":"` + alice + `","password":"` + wrongPw + `"}`},
		{"try wrong Entra secret", badConnID, `{"username":"` + alice + `","password":"` + alicePw + `"}`},
		{"try locked user", connID, `{"username":"bob@contoso.com","password":"` + userPw["bob@contoso.com"] + `"}`},
		{"try malformed", connID, `{"username":"` + alice + `","password":"` + alicePw},
		{"try password not a string", connID, `{"username":"` + alice + `","password":["` + alicePw + `"]}`},
		{"try extra field", connID, `{"username":"` + alice + `","password":"` + alicePw + `","x":"` + alicePw + `"}`},
		{"try trailing data", connID, `{"username":"` + alice + `","password":"` + alicePw + `"}` + alicePw},
	} {
		p.api(tc.name, "POST", "api/v2/connections/"+tc.conn+"/try", admin, tc.body)
	}
	if err := emu.SetFault("token", emulator.Fault{Drop: true, Times: 1}); err != nil {
		t.Fatal(err)
	}
	p.api("try while Entra drops", "POST", "api/v2/connections/"+connID+"/try", admin, `{"username":"`+alice+`","password":"`+alicePw+`"}`)
	emu.ClearFaults()

	// Clients: patch, rotate, read with and without read:client_keys.
	mustAPI("patch client secret", "PATCH", "api/v2/clients/"+basicID, map[string]any{"client_secret": basicSecret}, 200, "client_secret")
	for name, body := range map[string]string{
		"client patch, malformed":  `{"client_secret":"` + basicSecret + `"`,
		"client patch, too short":  `{"client_secret":"` + basicSecret[:20] + `"}`,
		"client patch, not string": `{"client_secret":["` + basicSecret + `"]}`,
		"client create, malformed": `{"name":"x","client_secret":"` + basicSecret,
	} {
		path, method := "api/v2/clients/"+basicID, "PATCH"
		if strings.HasPrefix(name, "client create") {
			path, method = "api/v2/clients", "POST"
		}
		if status, raw := p.api(name, method, path, admin, body); status != 400 {
			t.Errorf("%s: %d %s", name, status, raw)
		}
	}
	rot := mustAPI("rotate secret", "POST", "api/v2/clients/"+confID+"/rotate-secret", nil, 200, "client_secret")
	newSecret, _ := rot["client_secret"].(string)
	if newSecret == "" || newSecret == confSecret {
		t.Fatalf("rotation answered no new secret: %v", rot)
	}
	p.add("rotated client secret", newSecret)
	mustAPI("get client with read:client_keys", "GET", "api/v2/clients/"+confID, nil, 200, "client_secret")
	mustAPI("list clients with read:client_keys", "GET", "api/v2/clients", nil, 200, "*.client_secret")
	reader := mgmt("read:users read:connections read:clients read:logs read:refresh_tokens read:device_credentials read:tenant_settings read:attack_protection")
	for _, path := range []string{"api/v2/clients", "api/v2/clients/" + confID, "api/v2/clients/" + basicID + "?fields=client_secret",
		"api/v2/connections", "api/v2/connections/" + connID, "api/v2/connections/" + badConnID, "api/v2/tenants/settings",
		"api/v2/users", "api/v2/users-by-email?email=" + url.QueryEscape(alice), "api/v2/device-credentials",
		"api/v2/user-blocks?identifier=" + url.QueryEscape(alice), "api/v2/users?per_page=" + wrongSecret,
		"api/v2/logs?from=" + wrongSecret + "&take=2", "api/v2/users?q=" + url.QueryEscape("password:"+alicePw)} {
		p.api("GET "+path+" without secret scopes", "GET", path, reader, nil)
	}

	// Users, with and without read:user_idp_tokens.
	status, raw := p.api("users", "GET", "api/v2/users", reader, nil)
	var users []map[string]any
	if status != 200 || json.Unmarshal(raw, &users) != nil || len(users) == 0 {
		t.Fatalf("users: %d %s", status, raw)
	}
	idp := mgmt("read:users read:user_idp_tokens")
	sawIdP := false
	for _, u := range users {
		id, _ := u["user_id"].(string)
		for _, path := range []string{"api/v2/users/" + url.PathEscape(id), "api/v2/users/" + url.PathEscape(id) + "/logs",
			"api/v2/users/" + url.PathEscape(id) + "/refresh-tokens", "api/v2/user-blocks/" + url.PathEscape(id)} {
			p.api("GET "+path, "GET", path, reader, nil)
		}
		status, raw := p.api("GET user with read:user_idp_tokens", "GET", "api/v2/users/"+url.PathEscape(id), idp, nil,
			"identities.0.access_token", "identities.0.refresh_token")
		var doc struct {
			Identities []map[string]any `json:"identities"`
		}
		if status == 200 && json.Unmarshal(raw, &doc) == nil && len(doc.Identities) > 0 && doc.Identities[0]["access_token"] != nil {
			at, _ := doc.Identities[0]["access_token"].(string)
			if name := p.find(at); len(name) == 0 || !strings.HasPrefix(name[0], "Entra's access_token") {
				t.Errorf("identities[0].access_token is not an Entra access token: %v", name)
			}
			sawIdP = true
		}
		p.api("list users with read:user_idp_tokens", "GET", "api/v2/users?q="+url.QueryEscape(`email:"`+fmt.Sprint(u["email"])+`"`), idp, nil,
			"*.identities.0.access_token", "*.identities.0.refresh_token")
	}
	if !sawIdP {
		t.Error("no user showed its Entra tokens to read:user_idp_tokens: the scan checked nothing there")
	}
	for _, path := range []string{"api/v2/users?fields=identities", "api/v2/users-by-email?email=" + url.QueryEscape(alice)} {
		p.api("GET "+path+" with read:user_idp_tokens", "GET", path, idp, nil, "*.identities.0.access_token", "*.identities.0.refresh_token")
	}

	// Brute-force protection blocking a user and an IP, then the blocks
	// read and lifted; the token endpoint and try alike.
	mustAPI("enable brute force", "PATCH", "api/v2/attack-protection/brute-force-protection", map[string]any{"enabled": true,
		"max_attempts": 2, "shields": []string{"block"}}, 200)
	mustAPI("enable IP throttling", "PATCH", "api/v2/attack-protection/suspicious-ip-throttling", map[string]any{"enabled": true,
		"shields": []string{"block"}, "stage": map[string]any{"pre-login": map[string]any{"max_attempts": 3, "rate": 864000}}}, 200)
	judy := "judy@contoso.onmicrosoft.com"
	for i := range 5 {
		p.form(fmt.Sprintf("wrong password %d until blocked", i), form(realmGrant, publicID, judy, wrongPw), nil)
	}
	if status, m := p.form("right password while blocked", form(realmGrant, publicID, judy, userPw[judy]), nil); status == 200 {
		t.Errorf("login not blocked: %v", m)
	}
	p.api("try while blocked", "POST", "api/v2/connections/"+connID+"/try", admin, `{"username":"`+judy+`","password":"`+userPw[judy]+`"}`)
	for _, path := range []string{"api/v2/user-blocks?identifier=" + url.QueryEscape(judy), "api/v2/anomaly/blocks/ips/127.0.0.1"} {
		p.api("GET "+path, "GET", path, admin, nil)
		p.api("DELETE "+path, "DELETE", path, admin, nil)
	}

	// Every tenant log event, in full and one by one.
	var logs []map[string]any
	for page := 0; ; page++ {
		status, raw := p.api("logs", "GET", "api/v2/logs?per_page=100&page="+strconv.Itoa(page), reader, nil)
		var batch []map[string]any
		if status != 200 || json.Unmarshal(raw, &batch) != nil {
			t.Fatalf("logs: %d %s", status, raw)
		}
		logs = append(logs, batch...)
		if len(batch) < 100 {
			break
		}
	}
	for _, e := range logs {
		if id, _ := e["log_id"].(string); id != "" {
			p.api("log "+id, "GET", "api/v2/logs/"+url.PathEscape(id), reader, nil)
		}
	}

	// Bearer tokens the Management API refuses.
	for name, h := range map[string][]string{
		"wrong bearer":     {"Bearer " + wrongSecret},
		"Basic at the API": {"Basic " + basic(confID, confSecret)},
		"two bearers":      {"Bearer " + admin, "Bearer " + wrongSecret},
		"user token":       {"Bearer " + access},
		"ID token":         {"Bearer " + issued["id"]},
		"Entra token":      {"Bearer " + up("access_token")},
		"Entra ID token":   {"Bearer " + up("id_token")},
		"scheme only":      {wrongSecret},
	} {
		req, _ := http.NewRequest("GET", env.URL+"api/v2/clients", nil)
		for _, v := range h {
			req.Header.Add("Authorization", v)
		}
		p.send(name, req)
	}
	p.api("token in the query", "GET", "api/v2/clients?access_token="+url.QueryEscape(admin)+"&client_secret="+url.QueryEscape(confSecret), "", nil)

	// The metrics exposition.
	req, _ = http.NewRequest("GET", metrics.URL+"/metrics", nil)
	if status, _, raw := p.send("metrics", req); status != 200 || !bytes.Contains(raw, []byte("gatehouse_")) {
		t.Errorf("metrics: %d %.200s", status, raw)
	}

	// The scan: only the documented places may hold a secret.
	for _, a := range p.answers {
		if found := p.find(a.scanned()); len(found) > 0 {
			t.Errorf("%s: answer (%d) holds %q:\n%.2000s", a.what, a.status, found, a.scanned())
		}
		// The documented places must hold what they document: a
		// successful answer allowed a secret carries one, and only there.
		if len(a.allowed) > 0 && a.status < 300 && len(p.find(string(a.body))) == 0 {
			t.Errorf("%s: answer (%d) carries no secret at %v:\n%.2000s", a.what, a.status, a.allowed, a.body)
		}
	}
	logText := env.Logs.String()
	for _, line := range strings.Split(logText, "\n") {
		if found := p.find(line); len(found) > 0 {
			t.Errorf("log line holds %q: %.2000s", found, line)
		}
	}
	if !strings.Contains(emuLogs.String(), `"endpoint":"token"`) {
		t.Error("the emulator logged no request: its scan proves nothing")
	}
	for _, line := range strings.Split(emuLogs.String(), "\n") {
		if found := p.find(line); len(found) > 0 {
			t.Errorf("emulator log line holds %q: %.2000s", found, line)
		}
	}
	if strings.Contains(logText, "panic serving request") {
		t.Errorf("a handler panicked:\n%s", logText)
	}
	// The scan must have seen what it claims to: failed logins of every
	// kind, upstream errors, debug records at DEBUG, and the tokens.
	for _, want := range []string{"status.:?=?403", "status.:?=?503", "status.:?=?401", "status.:?=?500"} {
		if !regexp.MustCompile(want).MatchString(logText) {
			t.Errorf("the log has no %s: the scan would prove nothing", want)
		}
	}
	for _, want := range []string{`"type":"fp"`, `"type":"fu"`, `"type":"fepft"`, `"type":"fertft"`, `"type":"ferrt"`, `"type":"feccft"`, `"type":"srrt"`, `"type":"fapi"`, `"type":"limit_wc"`} {
		if !p.answered(want) {
			t.Errorf("the scan saw no %s: it would prove nothing", want)
		}
	}
	if level == "debug" && !strings.Contains(logText, `"level":"DEBUG"`) {
		t.Error("no DEBUG record was logged: the debug scan proves nothing more than the info one")
	}
	if level == "info" && strings.Contains(logText, "level=DEBUG") {
		t.Error("DEBUG records logged at INFO")
	}
	if found := storetest.RawContains(t, env.Config.Database, p.plain...); len(found) > 0 {
		t.Errorf("secrets in clear in the database: %q", p.find(strings.Join(found, " ")))
	}
}

func (p *leakProbe) answered(s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.answers {
		if bytes.Contains(a.body, []byte(s)) {
			return true
		}
	}
	return false
}
