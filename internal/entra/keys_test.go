package entra

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
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
