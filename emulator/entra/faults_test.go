package entra_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/emulator/entra"
)

func TestFaultStatus(t *testing.T) {
	e := newEnv(t)
	if err := e.srv.SetFault("token", entra.Fault{Status: 429, RetryAfter: 7, Times: 1}); err != nil {
		t.Fatal(err)
	}
	r := e.postForm(v2Token, passwordV2(apiURI+"/API.Access"))
	checkSTSError(t, r, 429, "temporarily_unavailable", 90055, "")
	if r.header.Get("Retry-After") != "7" {
		t.Errorf("Retry-After = %q", r.header.Get("Retry-After"))
	}
	// Times: 1 means the next request is normal again.
	if r := e.postForm(v2Token, passwordV2(apiURI+"/API.Access")); r.status != 200 {
		t.Errorf("after the fault: %d", r.status)
	}
	if e.srv.Count("token") != 2 || e.srv.Count("token:password") != 2 || e.srv.Count("fault:status") != 1 {
		t.Errorf("counters = %v", e.srv.Counters())
	}

	tok := e.graphToken()
	_ = e.srv.SetFault("graph", entra.Fault{Status: 503, RetryAfter: 2})
	checkGraphError(t, e.get("/v1.0/me", tok), 503, "serviceNotAvailable", "")
	// Graph's throttling.md sample: a fractional Retry-After and an
	// innerError carrying code, status and message.
	_ = e.srv.SetFault("graph", entra.Fault{Status: 429, RetryAfter: 2.128})
	r = e.get("/v1.0/me", tok)
	checkGraphError(t, r, 429, "TooManyRequests", "Please retry again later.")
	if inner := r.body["error"].(map[string]any)["innerError"].(map[string]any); inner["code"] != "429" || inner["status"] != "429" || inner["message"] != "Please retry after" {
		t.Errorf("throttling innerError = %v", inner)
	}
	if ra := r.header.Get("Retry-After"); ra != "2.128" {
		t.Errorf("Retry-After = %q, want 2.128", ra)
	}
	e.srv.ClearFault("graph")
	if r := e.get("/v1.0/me", tok); r.status != 200 {
		t.Errorf("cleared: %d", r.status)
	}
	if err := e.srv.SetFault("nowhere", entra.Fault{}); err == nil {
		t.Error("fault on an unknown endpoint accepted")
	}
}

func TestFaultDropAndDelay(t *testing.T) {
	e := newEnv(t)
	_ = e.srv.SetFault("metadata", entra.Fault{Drop: true, Times: 1})
	if _, err := http.Get(e.base + "/" + tenantID + "/v2.0/.well-known/openid-configuration"); err == nil {
		t.Error("dropped connection answered")
	}
	_ = e.srv.SetFault("keys", entra.Fault{Delay: entra.Duration(150 * time.Millisecond), Times: 1})
	start := time.Now()
	if r := e.get("/discovery/v2.0/keys", ""); r.status != 200 || time.Since(start) < 150*time.Millisecond {
		t.Errorf("delay: %d after %v", r.status, time.Since(start))
	}
	_ = e.srv.SetFault("userrealm", entra.Fault{SlowBody: entra.Duration(200 * time.Millisecond)})
	start = time.Now()
	res, err := http.Get(e.base + "/common/userrealm/alice@contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(b), "Managed") || time.Since(start) < 150*time.Millisecond {
		t.Errorf("slow body: %s after %v", b, time.Since(start))
	}
}

func TestAdminEndpoint(t *testing.T) {
	e := newEnv(t)
	put := func(path, body string) int {
		req, _ := http.NewRequest(http.MethodPut, e.base+path, strings.NewReader(body))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if s := put("/_emulator/faults/token", `{"status":500,"times":1}`); s != 204 {
		t.Fatalf("PUT fault: %d", s)
	}
	if s := put("/_emulator/faults/nowhere", `{}`); s != 404 {
		t.Errorf("PUT unknown endpoint: %d", s)
	}
	r := e.get("/_emulator/faults", "")
	if f, _ := r.body["token"].(map[string]any); f["status"] != json.Number("500") {
		t.Errorf("faults = %s", r.raw)
	}
	checkSTSError(t, e.postForm(v2Token, passwordV2(apiURI+"/API.Access")), 500, "temporarily_unavailable", 50000, "")
	e.postForm(v2Token, passwordV2(apiURI+"/API.Access"))

	r = e.get("/_emulator/counters", "")
	if r.body["token"] != json.Number("2") || r.body["token:password"] != json.Number("2") || r.body["error:AADSTS50000"] != json.Number("1") {
		t.Errorf("counters = %s", r.raw)
	}
	req, _ := http.NewRequest(http.MethodDelete, e.base+"/_emulator/counters", nil)
	res, _ := http.DefaultClient.Do(req)
	res.Body.Close()
	if e.srv.Count("token") != 0 {
		t.Error("counters not reset")
	}
	r = e.get("/_emulator/keys", "")
	if r.body["signing"] != e.srv.SigningKeyID() {
		t.Errorf("keys = %s", r.raw)
	}
	res, _ = http.Post(e.base+"/_emulator/keys", "", nil)
	var created map[string]string
	_ = json.NewDecoder(res.Body).Decode(&created)
	res.Body.Close()
	if res.StatusCode != 201 || len(e.srv.PublishedKeyIDs()) != 2 {
		t.Fatalf("publish: %d", res.StatusCode)
	}
	res, _ = http.Post(e.base+"/_emulator/keys/"+created["kid"]+"/activate", "", nil)
	res.Body.Close()
	if res.StatusCode != 204 || e.srv.SigningKeyID() != created["kid"] {
		t.Errorf("activate: %d", res.StatusCode)
	}
}

func TestFaultsFromDirectory(t *testing.T) {
	dir, err := entra.ParseDirectory([]byte(`
faults:
  userrealm: {status: 502}
tenants: [{id: 11111111-2222-4333-8444-555555555555, domains: [{id: a.example, isVerified: true}]}]`))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvDir(t, dir)
	checkSTSError(t, e.get("/common/userrealm/x@a.example", ""), 502, "temporarily_unavailable", 50000, "")
}

func TestLatency(t *testing.T) {
	e := newEnv(t, func(o *entra.Options) { o.Latency = 50 * time.Millisecond })
	start := time.Now()
	e.get("/discovery/keys", "")
	if time.Since(start) < 50*time.Millisecond {
		t.Errorf("latency not applied: %v", time.Since(start))
	}
}

// BenchmarkPasswordGrant measures v2 password grants through HTTP; compare
// KeyBits 2048 with the 1024 benchmark mode and with ReuseTokens.
func BenchmarkPasswordGrant(b *testing.B) {
	for _, mode := range []struct {
		name string
		opts entra.Options
	}{
		{"rsa2048", entra.Options{SigningKey: sharedKey()}},
		{"rsa1024", entra.Options{KeyBits: 1024}},
		{"reuse", entra.Options{SigningKey: sharedKey(), ReuseTokens: time.Minute}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			dir, err := entra.LoadDirectory(examplePath)
			if err != nil {
				b.Fatal(err)
			}
			srv, err := entra.New(dir, mode.opts)
			if err != nil {
				b.Fatal(err)
			}
			hs := httptest.NewServer(srv)
			defer hs.Close()
			srv.SetBaseURL(hs.URL)
			body := passwordV2(apiURI + "/API.Access").Encode()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := client.Post(hs.URL+v2Token, "application/x-www-form-urlencoded", strings.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						b.Errorf("status %d", res.StatusCode)
						return
					}
				}
			})
		})
	}
}
