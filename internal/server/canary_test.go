package server_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	emulator "github.com/gatehouse/gatehouse/emulator/entra"
	"github.com/gatehouse/gatehouse/emulator/entra/entratest"
	"github.com/gatehouse/gatehouse/internal/server/servertest"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// canaries collects secrets that must never be seen outside the one
// response that legitimately carries them.
type canaries struct {
	mu   sync.Mutex
	list []string
}

func (c *canaries) add(vs ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range vs {
		if len(v) >= 8 {
			c.list = append(c.list, v, url.QueryEscape(v))
		}
	}
}

func (c *canaries) in(s string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var found []string
	for _, v := range c.list {
		if strings.Contains(s, v) {
			found = append(found, v)
		}
	}
	return found
}

// TestNoSecretInAnyOutput drives logins (right, wrong, malformed,
// hostile), client authentication failures and Management API reads with
// canary passwords, client secrets and tokens, then scans every log line,
// log event, error body and API response, and the raw database.
func TestNoSecretInAnyOutput(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) { canaryScan(t, b) })
	}
}

func canaryScan(t *testing.T, backend string) {
	secret := &canaries{}
	// Every token the upstream issues is a canary.
	_, emuURL := entratest.Start(t, entratest.Example(t), emulator.Options{}, func(emu http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			emu.ServeHTTP(rec, r)
			var tok map[string]any
			if json.Unmarshal(rec.Body.Bytes(), &tok) == nil {
				for _, k := range []string{"access_token", "refresh_token", "id_token"} {
					if s, ok := tok[k].(string); ok {
						secret.add(s)
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

	env := servertest.Start(t, backend, servertest.AllowUpstream(emuURL))
	admin := env.ManagementToken(t)
	var outputs bytes.Buffer // everything that must be clean
	scan := func(what string, status int, body []byte) {
		fmt.Fprintf(&outputs, "%s %d %s\n", what, status, body)
	}
	do := func(method, path, token string, body any) (int, []byte) {
		t.Helper()
		status, _, raw := env.Do(t, method, path, token, body)
		return status, raw
	}

	connSecret := "native-secret-value" // the emulator app's real secret
	status, raw := do("POST", "api/v2/clients", admin, map[string]any{"name": "Mobile", "app_type": "native", "token_endpoint_auth_method": "none",
		"grant_types": []string{"password", "http://auth0.com/oauth/grant-type/password-realm"}})
	var public struct {
		ClientID string `json:"client_id"`
	}
	_ = json.Unmarshal(raw, &public)
	status2, raw2 := do("POST", "api/v2/clients", admin, map[string]any{"name": "Backend", "app_type": "regular_web",
		"grant_types": []string{"password", "http://auth0.com/oauth/grant-type/password-realm"}})
	var conf struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	_ = json.Unmarshal(raw2, &conf)
	if status != 201 || status2 != 201 || conf.ClientSecret == "" {
		t.Fatalf("create clients: %d %d", status, status2)
	}
	status, raw = do("POST", "api/v2/connections", admin, map[string]any{"name": "contoso", "strategy": "waad",
		"enabled_clients": []string{public.ClientID, conf.ClientID},
		"options": map[string]any{"client_id": "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b", "client_secret": connSecret,
			"tenant_domain": "contoso.onmicrosoft.com", "authority_host": emuURL, "graph_host": emuURL,
			"ext_access_token": true, "ext_refresh_token": true, "ext_profile": true}})
	if status != 201 {
		t.Fatalf("create connection: %d %s", status, raw)
	}
	scan("create connection", status, raw)
	wrongPw := "Canary-Wrong-Pw-" + rand.Text()
	wrongSecret := "Canary-Wrong-Secret-" + rand.Text()
	secret.add(env.AdminSecret, conf.ClientSecret, connSecret, admin, "Alice-Passw0rd!", wrongPw, wrongSecret)

	post := func(what, contentType, body string, header map[string]string) (int, []byte) {
		path := "oauth/token"
		if q := header["query"]; q != "" {
			path += "?" + q
			delete(header, "query")
		}
		req, _ := http.NewRequest("POST", env.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}
	form := func(v url.Values) string { return v.Encode() }
	login := url.Values{"grant_type": {"http://auth0.com/oauth/grant-type/password-realm"}, "realm": {"contoso"},
		"client_id": {public.ClientID}, "username": {"alice@contoso.com"}, "password": {"Alice-Passw0rd!"}, "scope": {"openid offline_access"}}

	// The one response allowed to carry tokens.
	status, raw = post("login", "application/x-www-form-urlencoded", form(login), nil)
	var issued map[string]any
	if status != 200 || json.Unmarshal(raw, &issued) != nil {
		t.Fatalf("login: %d %s", status, raw)
	}
	for _, k := range []string{"access_token", "id_token", "refresh_token"} {
		if s, ok := issued[k].(string); ok {
			secret.add(s)
		}
	}
	at, _ := issued["access_token"].(string)
	if req, err := http.NewRequest("GET", env.URL+"userinfo", nil); err == nil {
		req.Header.Set("Authorization", "Bearer "+at)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			scan("userinfo", resp.StatusCode, b)
		}
	}

	wrong := url.Values{}
	for k, v := range login {
		wrong[k] = v
	}
	wrong.Set("password", wrongPw)
	jsonBody := func(v url.Values) string {
		m := map[string]string{}
		for k := range v {
			m[k] = v.Get(k)
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	confLogin := url.Values{}
	for k, v := range login {
		confLogin[k] = v
	}
	confLogin.Set("client_id", conf.ClientID)
	confLogin.Set("client_secret", wrongSecret)
	for _, tc := range []struct {
		name, ct, body string
		header         map[string]string
		status         int
	}{
		{"wrong password", "application/x-www-form-urlencoded", form(wrong), nil, 403},
		{"wrong password as JSON", "application/json", jsonBody(wrong), nil, 403},
		{"unknown user", "application/x-www-form-urlencoded", strings.Replace(form(wrong), "alice", "nobody", 1), nil, 403},
		{"repeated password", "application/x-www-form-urlencoded", form(wrong) + "&password=" + url.QueryEscape(wrongPw), nil, 400},
		{"password not a string", "application/json", `{"grant_type":"password","password":["` + wrongPw + `"]}`, nil, 400},
		{"wrong content type", "text/plain", form(wrong), nil, 400},
		{"malformed JSON", "application/json", `{"password":"` + wrongPw, nil, 400},
		{"body too large", "application/x-www-form-urlencoded", form(wrong) + "&pad=" + strings.Repeat("x", 70<<10), nil, 413},
		{"wrong client secret", "application/x-www-form-urlencoded", form(confLogin), nil, 401},
		{"wrong Basic secret", "application/x-www-form-urlencoded", strings.Replace(form(confLogin), "client_secret="+url.QueryEscape(wrongSecret), "x=1", 1),
			map[string]string{"Authorization": "Basic " + basic(conf.ClientID, wrongSecret)}, 401},
		{"public client sending a secret", "application/x-www-form-urlencoded", form(wrong) + "&client_secret=" + url.QueryEscape(wrongSecret), nil, 401},
		{"unknown realm", "application/x-www-form-urlencoded", strings.Replace(form(wrong), "realm=contoso", "realm=nope", 1), nil, 400},
		// RFC 6749 §2.3.1 forbids credentials in the URI; the access log
		// has the path only, whatever the query holds.
		{"secrets in the query", "application/x-www-form-urlencoded", strings.Replace(form(confLogin), "client_secret="+url.QueryEscape(wrongSecret), "x=1", 1),
			map[string]string{"query": "client_secret=" + url.QueryEscape(wrongSecret) + "&password=" + url.QueryEscape(wrongPw)}, 401},
	} {
		status, raw := post(tc.name, tc.ct, tc.body, tc.header)
		if status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, status, raw, tc.status)
		}
		scan(tc.name, status, raw)
	}

	// A huge header is refused by the server itself.
	req, _ := http.NewRequest("POST", env.URL+"oauth/token", strings.NewReader(form(wrong)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Pad", strings.Repeat("y", 2<<20))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("2 MiB header: %d", resp.StatusCode)
		}
		scan("huge header", resp.StatusCode, b)
	}

	// Management API reads, with a token that may not read secrets.
	reader := env.ManagementToken(t, "read:users", "read:connections", "read:clients", "read:logs", "read:attack_protection")
	secret.add(reader)
	status, raw = do("GET", "api/v2/users", reader, nil)
	scan("users", status, raw)
	var users []map[string]any
	_ = json.Unmarshal(raw, &users)
	for _, u := range users {
		id, _ := u["user_id"].(string)
		status, raw = do("GET", "api/v2/users/"+url.PathEscape(id), reader, nil)
		scan("user", status, raw)
		status, raw = do("GET", "api/v2/user-blocks/"+url.PathEscape(id), reader, nil)
		scan("user blocks", status, raw)
	}
	for _, path := range []string{"api/v2/connections", "api/v2/clients", "api/v2/logs?per_page=100",
		"api/v2/attack-protection/brute-force-protection", "api/v2/user-blocks?identifier=alice@contoso.com"} {
		status, raw = do("GET", path, reader, nil)
		if status != 200 {
			t.Errorf("GET %s: %d %s", path, status, raw)
		}
		scan(path, status, raw)
	}
	status, raw = do("GET", "api/v2/connections", "Canary-Bearer-"+wrongPw, nil)
	scan("bad bearer", status, raw)
	status, raw = do("GET", "api/v2/connections?access_token="+url.QueryEscape(reader)+"&client_secret="+url.QueryEscape(wrongSecret), "", nil)
	scan("token in the query", status, raw)
	if req, err := http.NewRequest("GET", env.URL+"userinfo?access_token="+url.QueryEscape(at), nil); err == nil {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			scan("userinfo token in the query", resp.StatusCode, b)
		}
	}
	status, raw = do("PATCH", "api/v2/connections/nope", admin, `{"options":{"client_secret":"`+wrongSecret+`"}`)
	scan("bad patch", status, raw)

	if found := secret.in(outputs.String()); len(found) > 0 {
		t.Errorf("secrets in API answers: %q", found)
	}
	if found := secret.in(env.Logs.String()); len(found) > 0 {
		t.Errorf("secrets in log lines: %q", found)
	}
	if !strings.Contains(env.Logs.String(), `"status":403`) || !strings.Contains(outputs.String(), `"type":"fp"`) {
		t.Fatal("the scan saw no failed login: it would prove nothing")
	}
	secret.mu.Lock()
	plain := secret.list
	secret.mu.Unlock()
	// 7 fixed canaries, the upstream's and Gatehouse's tokens, the reader token; each raw and escaped.
	if len(plain) < 2*(7+2+2+1) {
		t.Fatalf("only %d canaries: the tokens were not captured", len(plain))
	}
	if found := storetest.RawContains(t, env.Config.Database, plain...); len(found) > 0 {
		t.Errorf("secrets in clear in the database: %q", found)
	}
}

func basic(id, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
}
