package entra

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// fakeEntra serves Entra's metadata, keys and token endpoints with the wire
// formats of the reference (Dex-style fake, independent of the emulator).
type fakeEntra struct {
	t        testing.TB
	srv      *httptest.Server
	tid      string
	domain   string
	mu       sync.Mutex
	keys     map[string]*rsa.PrivateKey // published
	token    http.HandlerFunc
	metaHits atomic.Int32
	keyHits  atomic.Int32
	fail     atomic.Bool   // metadata answers 503
	slow     chan struct{} // when set, metadata waits for it to close
}

const testTID = "72f988bf-86f1-41af-91ab-2d7cd011db47"

var (
	keyOnce  sync.Once
	testKeys []*rsa.PrivateKey
)

// rsaKey returns one of a few keys generated once per test binary.
func rsaKey(t testing.TB, i int) *rsa.PrivateKey {
	keyOnce.Do(func() {
		for range 3 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			testKeys = append(testKeys, k)
		}
	})
	return testKeys[i]
}

func newFakeEntra(t testing.TB) *fakeEntra {
	f := &fakeEntra{t: t, tid: testTID, domain: "contoso.onmicrosoft.com",
		keys: map[string]*rsa.PrivateKey{"kid-1": rsaKey(t, 0)}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		f.metadata(w, r, V2)
	})
	mux.HandleFunc("GET /{tenant}/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		f.metadata(w, r, V1)
	})
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", f.jwks)
	mux.HandleFunc("GET /{tenant}/discovery/keys", f.jwks)
	token := func(w http.ResponseWriter, r *http.Request) {
		if f.token == nil {
			http.NotFound(w, r)
			return
		}
		f.token(w, r)
	}
	mux.HandleFunc("POST /{tenant}/oauth2/token", token)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", token)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeEntra) endpoint(v Version) Endpoint {
	return Endpoint{Authority: f.srv.URL, Tenant: f.domain, Version: v}
}

func (f *fakeEntra) issuer(v Version, tid string) string {
	if v == V1 {
		return "https://sts.windows.net/" + tid + "/"
	}
	return "https://login.microsoftonline.com/" + tid + "/v2.0"
}

func (f *fakeEntra) metadata(w http.ResponseWriter, r *http.Request, v Version) {
	f.metaHits.Add(1)
	if f.slow != nil {
		<-f.slow
	}
	if f.fail.Load() {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("<html>Service Unavailable</html>"))
		return
	}
	tenant := r.PathValue("tenant")
	tid := f.tid
	switch tenant {
	case "organizations", "common":
		if v == V1 && tenant == "organizations" {
			// An alias of the v2 endpoint only (panva/openid-client#175).
			entraError(w, 400, "invalid_tenant", 90002, "Tenant 'organizations' not found.")
			return
		}
		tid = "{tenantid}"
	case f.tid, f.domain:
	default:
		entraError(w, 400, "invalid_tenant", 90002, "Tenant '"+tenant+"' not found.")
		return
	}
	keys := f.srv.URL + "/" + tenant + "/discovery/v2.0/keys"
	token := f.srv.URL + "/" + tenant + "/oauth2/v2.0/token"
	if v == V1 {
		keys = f.srv.URL + "/common/discovery/keys"
		token = f.srv.URL + "/" + tenant + "/oauth2/token"
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(map[string]any{
		"token_endpoint":                        token,
		"jwks_uri":                              keys,
		"issuer":                                f.issuer(v, tid),
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"tenant_region_scope":                   "NA",
		"cloud_instance_name":                   "microsoftonline.com",
		"cloud_graph_host_name":                 "graph.windows.net",
		"msgraph_host":                          "graph.microsoft.com",
	})
}

func (f *fakeEntra) jwks(w http.ResponseWriter, r *http.Request) {
	f.keyHits.Add(1)
	f.mu.Lock()
	var set []map[string]any
	for kid, k := range f.keys {
		jwk := jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Use: "sig"}
		b, _ := jwk.MarshalJSON()
		var m map[string]any
		json.Unmarshal(b, &m)
		set = append(set, m)
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(map[string]any{"keys": set})
}

// rotate publishes a new key (and keeps the old ones).
func (f *fakeEntra) publish(kid string, k *rsa.PrivateKey) {
	f.mu.Lock()
	f.keys[kid] = k
	f.mu.Unlock()
}

// sign makes an id_token with the given claims, signed by key under kid.
func sign(t testing.TB, k *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// idClaims are an id_token's claims as Entra issues them for each version.
func (f *fakeEntra) idClaims(v Version, now time.Time) map[string]any {
	c := map[string]any{
		"aud": "11111111-2222-3333-4444-555555555555",
		"iss": f.issuer(v, f.tid),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"oid": "00000000-0000-0000-66f3-3332eca7ea81", "tid": f.tid,
		"sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "name": "Adele Vance",
	}
	if v == V1 {
		c["ver"] = "1.0"
		c["upn"] = "adele@contoso.onmicrosoft.com"
		c["unique_name"] = "adele@contoso.onmicrosoft.com"
		c["given_name"], c["family_name"] = "Adele", "Vance"
		c["amr"] = []string{"pwd"}
		c["ipaddr"] = "203.0.113.7"
	} else {
		c["ver"] = "2.0"
		c["preferred_username"] = "adele@contoso.onmicrosoft.com"
		c["email"] = "adele@contoso.com"
	}
	return c
}

// entraError writes Entra's error body for an AADSTS code.
func entraError(w http.ResponseWriter, status int, code string, aadsts int, text string) {
	ts := "2024-05-01 10:00:00Z"
	desc := "AADSTS" + strconv.Itoa(aadsts) + ": " + text + "\r\nTrace ID: 0000aaaa-11bb-cc22-dd33-444444eeeeee\r\nCorrelation ID: aaaa0000-bb11-2222-33cc-444444dddddd\r\nTimestamp: " + ts
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"error": code, "error_description": desc, "error_codes": []int{aadsts}, "timestamp": ts,
		"trace_id": "0000aaaa-11bb-cc22-dd33-444444eeeeee", "correlation_id": "aaaa0000-bb11-2222-33cc-444444dddddd",
		"error_uri": "https://login.microsoftonline.com/error?code=" + strconv.Itoa(aadsts),
	})
}
