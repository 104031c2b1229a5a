package entra

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// TestKeysOnlyFromTheLoginHost: the keys that verify id_tokens come from
// the authority's own origin, even when its metadata names another host or
// redirects elsewhere: whoever serves the keys can sign id_tokens.
func TestKeysOnlyFromTheLoginHost(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		fmt.Fprintf(w, `{"issuer":"https://login.microsoftonline.com/%s/v2.0","jwks_uri":"http://%s/keys","keys":[]}`, testTID, r.Host)
	}))
	defer other.Close()
	for name, h := range map[string]http.HandlerFunc{
		"jwks_uri on another host": func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"issuer":"https://login.microsoftonline.com/%s/v2.0","jwks_uri":%q}`, testTID, other.URL+"/keys")
		},
		"metadata redirected to another host": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
		},
	} {
		t.Run(name, func(t *testing.T) {
			elsewhere.Store(0)
			srv := httptest.NewTLSServer(h)
			defer srv.Close()
			c := NewClient(Options{Transport: srv.Client().Transport})
			if _, err := c.Metadata(t.Context(), Endpoint{Authority: srv.URL, Tenant: "contoso.onmicrosoft.com", Version: V2}); err == nil {
				t.Error("metadata and keys accepted")
			}
			if n := elsewhere.Load(); n != 0 {
				t.Errorf("fetched from another host %d times", n)
			}
		})
	}
}

// TestKeysOnLoginHostWithDefaultPort: an authority_host written with its
// default port (https://login.microsoftonline.com:443, which the
// connection's host check accepts as Microsoft's) is the same origin as the
// jwks_uri Entra publishes without one; refusing it failed every login.
func TestKeysOnLoginHostWithDefaultPort(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/common/discovery/v2.0/keys" {
			jwk := jose.JSONWebKey{Key: &rsaKey(t, 0).PublicKey, KeyID: "kid-1", Use: "sig"}
			b, _ := jwk.MarshalJSON()
			fmt.Fprintf(w, `{"keys":[%s]}`, b)
			return
		}
		fmt.Fprintf(w, `{"issuer":"https://login.microsoftonline.com/%s/v2.0","jwks_uri":"https://example.com/common/discovery/v2.0/keys"}`, testTID)
	}))
	defer srv.Close()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	// example.com:443 (the test certificate's name) is the test server.
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}
	c := NewClient(Options{Transport: tr})
	for _, authority := range []string{"https://example.com:443", "https://EXAMPLE.com"} {
		m, err := c.Metadata(t.Context(), Endpoint{Authority: authority, Tenant: "contoso.onmicrosoft.com", Version: V2})
		if err != nil || len(m.KeyIDs) != 1 {
			t.Errorf("%s: %v", authority, err)
		}
	}
}

func TestSameOrigin(t *testing.T) {
	base, _ := url.Parse("https://graph.microsoft.com")
	for link, ok := range map[string]bool{
		"https://graph.microsoft.com/v1.0/me/memberOf?$skiptoken=x":     true,
		"https://graph.microsoft.com:443/v1.0/me/memberOf?$skiptoken=x": true,
		"https://GRAPH.microsoft.com/v1.0/me":                           true,
		"https://graph.microsoft.com:8443/v1.0/me":                      false,
		"http://graph.microsoft.com/v1.0/me":                            false,
		"http://graph.microsoft.com:443/v1.0/me":                        false,
		"https://graph.microsoft.com.evil.example/v1.0/me":              false,
		"https://evil.example/graph.microsoft.com/v1.0/me":              false,
		"/v1.0/me/memberOf":                                             false,
	} {
		if _, err := sameOrigin(base, link); (err == nil) != ok {
			t.Errorf("%s: %v, want accepted %t", link, err, ok)
		}
	}
}
