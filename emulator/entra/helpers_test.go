package entra_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/emulator/entra"
)

// Identifiers from examples/entra-directory.yaml.
const (
	tenantID       = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
	otherTenantID  = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
	apiAppID       = "8c3d9e2f-1a4b-4c5d-8e6f-7a8b9c0d1e2f"
	apiURI         = "api://8c3d9e2f-1a4b-4c5d-8e6f-7a8b9c0d1e2f"
	nativeID       = "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b"
	nativeSecret   = "native-secret-value"
	confID         = "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d"
	confSecret     = "confidential-secret-value"
	expiredSecret  = "expired-secret-value"
	unconsentedID  = "3b4c5d6e-7f8a-4b9c-8d0e-1f2a3b4c5d6e"
	aliceID        = "a0000000-0000-4000-8000-000000000001"
	alice          = "alice@contoso.com"
	alicePassword  = "Alice-Passw0rd!"
	examplePath    = "../../examples/entra-directory.yaml"
	graphAppID     = "00000003-0000-0000-c000-000000000000"
	nativeRedirect = "http://localhost:8080/callback"
)

// sharedKey spares every test server a 2048-bit key generation.
var sharedKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	t     *testing.T
	srv   *entra.Server
	hs    *httptest.Server
	clock *clock
	base  string
}

func newEnv(t *testing.T, opts ...func(*entra.Options)) *env {
	t.Helper()
	dir, err := entra.LoadDirectory(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	return newEnvDir(t, dir, opts...)
}

func newEnvDir(t *testing.T, dir *entra.Directory, opts ...func(*entra.Options)) *env {
	t.Helper()
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	o := entra.Options{Clock: c.Now, SigningKey: sharedKey()}
	for _, f := range opts {
		f(&o)
	}
	srv, err := entra.New(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	srv.SetBaseURL(hs.URL)
	return &env{t: t, srv: srv, hs: hs, clock: c, base: hs.URL}
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (e *env) do(req *http.Request) response {
	e.t.Helper()
	res, err := noRedirect.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := response{status: res.StatusCode, header: res.Header, raw: string(b)}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		d := json.NewDecoder(strings.NewReader(string(b)))
		d.UseNumber()
		if err := d.Decode(&out.body); err != nil {
			e.t.Fatalf("decode %s: %v", b, err)
		}
	}
	return out
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (e *env) postForm(path string, form url.Values, hdr ...string) response {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return e.do(req)
}

func (e *env) get(path, token string) response {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.base+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return e.do(req)
}

func (e *env) postJSON(path, token, body string) response {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return e.do(req)
}

// passwordV2 is a successful-by-default v2 ROPC request for alice.
func passwordV2(scope string) url.Values {
	return url.Values{"grant_type": {"password"}, "client_id": {nativeID}, "client_secret": {nativeSecret},
		"username": {alice}, "password": {alicePassword}, "scope": {scope}}
}

func passwordV1(resource string) url.Values {
	return url.Values{"grant_type": {"password"}, "client_id": {nativeID}, "client_secret": {nativeSecret},
		"username": {alice}, "password": {alicePassword}, "resource": {resource}, "scope": {"openid"}}
}

// token obtains a token and fails the test on error.
func (e *env) token(path string, form url.Values, field string) string {
	e.t.Helper()
	r := e.postForm(path, form)
	if r.status != http.StatusOK {
		e.t.Fatalf("token: %d %s", r.status, r.raw)
	}
	s, _ := r.body[field].(string)
	if s == "" {
		e.t.Fatalf("no %s in %s", field, r.raw)
	}
	return s
}

func (e *env) graphToken() string {
	return e.token("/"+tenantID+"/oauth2/v2.0/token", passwordV2("https://graph.microsoft.com/.default"), "access_token")
}

// unsigned checks that tok is an unsecured JWT exactly as Entra's v1
// token endpoint sends its id_tokens (header {"typ":"JWT","alg":"none"},
// empty signature) and returns its claims.
func (e *env) unsigned(tok string) map[string]any {
	e.t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[2] != "" {
		e.t.Fatalf("not an unsecured JWT: %q", tok)
	}
	if h, err := base64.RawURLEncoding.DecodeString(parts[0]); err != nil || string(h) != `{"typ":"JWT","alg":"none"}` {
		e.t.Fatalf("header %q, %v", h, err)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		e.t.Fatalf("payload: %v", err)
	}
	return decodeClaims(e.t, payload)
}

func decodeClaims(t testing.TB, payload []byte) map[string]any {
	t.Helper()
	var c map[string]any
	d := json.NewDecoder(strings.NewReader(string(payload)))
	d.UseNumber()
	if err := d.Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// verify checks a JWT with go-jose against the published keys document and
// returns its header and claims.
func (e *env) verify(tok, keysPath string) (jose.Header, map[string]any) {
	e.t.Helper()
	r := e.get(keysPath, "")
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(r.raw), &set); err != nil {
		e.t.Fatalf("keys: %v", err)
	}
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		e.t.Fatalf("parse: %v", err)
	}
	h := jws.Signatures[0].Header
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		e.t.Fatalf("kid %q not published", h.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		e.t.Fatalf("verify: %v", err)
	}
	return h, decodeClaims(e.t, payload)
}
