package oauth_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestEntraRequestPerConnection checks what Entra receives for each kind of
// waad connection, through the token endpoint: the entra package's own
// tests take the scopes and resource as given, so only this shows that a
// connection's options choose the ones issue 5 names. v1 posts resource
// and scope=openid; v2 posts the OIDC scopes and one resource, Graph when
// the profile needs it, else the App ID URI's .default; the common
// endpoint is organizations on v2; and the retired Azure AD Graph of the
// seed's workaround is asked for as Microsoft Graph.
func TestEntraRequestPerConnection(t *testing.T) {
	type post struct {
		path string
		form url.Values
	}
	var (
		mu    sync.Mutex
		posts []post
	)
	e := newEnv(t, storetest.SQLite, envOptions{upstream: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/token") {
				b, _ := io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader(b))
				f, _ := url.ParseQuery(string(b))
				mu.Lock()
				posts = append(posts, post{r.URL.Path, f})
				mu.Unlock()
			}
			next.ServeHTTP(w, r)
		})
	}})
	const contosoTenant = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
	base := func(extra map[string]any) map[string]any {
		o := map[string]any{"client_id": nativeAppID, "client_secret": nativeSecret, "tenant_domain": "contoso.onmicrosoft.com",
			"authority_host": e.emuURL, "graph_host": e.emuURL}
		for k, v := range extra {
			o[k] = v
		}
		return o
	}
	e.connection(t, "v2-app-id", base(map[string]any{"app_id": webAPIURI}))
	e.connection(t, "v2-app-id-groups", base(map[string]any{"app_id": webAPIURI, "ext_groups": true}))
	e.connection(t, "v2-common", base(map[string]any{"useCommonEndpoint": true, "allowed_tenants": []string{contosoTenant}}))
	e.connection(t, "v1-legacy-graph", base(map[string]any{"identity_api": "azure-active-directory-v1.0", "app_id": "https://graph.windows.net"}))

	const oidc = "openid profile email offline_access "
	const graph = "https://graph.microsoft.com/"
	for _, tc := range []struct {
		realm, path, scope, resource string
	}{
		{"contoso-v1", "/contoso.onmicrosoft.com/oauth2/token", "openid", webAPIURI},
		{"contoso-v2", "/contoso.onmicrosoft.com/oauth2/v2.0/token", oidc + graph + "User.Read " + graph + "Directory.Read.All", ""},
		{"v2-app-id", "/contoso.onmicrosoft.com/oauth2/v2.0/token", oidc + webAPIURI + "/.default", ""},
		// Entra issues a token for one resource: groups need Graph's.
		{"v2-app-id-groups", "/contoso.onmicrosoft.com/oauth2/v2.0/token", oidc + graph + "User.Read " + graph + "Directory.Read.All", ""},
		{"v2-common", "/organizations/oauth2/v2.0/token", oidc + graph + "User.Read", ""},
		{"v1-legacy-graph", "/contoso.onmicrosoft.com/oauth2/token", "openid", "https://graph.microsoft.com"},
	} {
		mu.Lock()
		posts = nil
		mu.Unlock()
		r := e.login(t, tc.realm, "alice@contoso.com", "Alice-Passw0rd!", "openid")
		if r.status != http.StatusOK {
			t.Errorf("%s: %d %s", tc.realm, r.status, r.raw)
		}
		mu.Lock()
		got := posts
		mu.Unlock()
		if len(got) != 1 {
			t.Errorf("%s: %d credential POSTs to Entra, want 1", tc.realm, len(got))
			continue
		}
		p := got[0]
		want := url.Values{"grant_type": {"password"}, "client_id": {nativeAppID}, "client_secret": {nativeSecret},
			"username": {"alice@contoso.com"}, "password": {"Alice-Passw0rd!"}, "scope": {tc.scope}}
		if tc.resource != "" {
			want.Set("resource", tc.resource)
		}
		if p.path != tc.path || p.form.Encode() != want.Encode() {
			p.form.Del("password")
			p.form.Del("client_secret")
			t.Errorf("%s: POST %s %v\nwant POST %s scope %q resource %q", tc.realm, p.path, p.form, tc.path, tc.scope, tc.resource)
		}
	}
}

// TestDefaultAudienceThroughPasswordGrant: without an audience in the
// request, the tenant's default_audience decides the access token, as an
// audience would: a JWT for the API, with {issuer}userinfo in aud when
// openid was granted, so that it also opens /userinfo.
func TestDefaultAudienceThroughPasswordGrant(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{})
			const api = "https://api.contoso.test/"
			if s, b := e.api(t, "POST", "api/v2/resource-servers", map[string]any{"identifier": api, "name": "api",
				"scopes": []map[string]any{{"value": "read:x"}}}); s != http.StatusCreated {
				t.Fatalf("create API: %d %v", s, b)
			}
			if s, b := e.api(t, "PATCH", "api/v2/tenants/settings", map[string]any{"default_audience": api}); s != http.StatusOK {
				t.Fatalf("set default_audience: %d %v", s, b)
			}
			for _, tc := range []struct {
				scope string
				aud   []any
			}{
				{"openid read:x", []any{api, e.url + "userinfo"}},
				{"read:x", []any{api}},
			} {
				r := e.login(t, "contoso-v2", "alice@contoso.com", "Alice-Passw0rd!", tc.scope)
				if r.status != http.StatusOK || strings.Count(r.str("access_token"), ".") != 2 {
					t.Fatalf("scope %q: %d %s", tc.scope, r.status, r.raw)
				}
				claims := jwtClaims(t, r.str("access_token"))
				aud, ok := claims["aud"].([]any)
				if !ok {
					aud = []any{claims["aud"]}
				}
				if len(aud) != len(tc.aud) || aud[0] != tc.aud[0] || aud[len(aud)-1] != tc.aud[len(tc.aud)-1] ||
					claims["sub"] != aliceID || claims["scope"] != tc.scope || claims["gty"] != "password" {
					t.Errorf("scope %q: access token claims %v", tc.scope, claims)
				}
				if len(tc.aud) == 2 {
					if ui := userinfo(t, e, r.str("access_token")); ui["sub"] != aliceID {
						t.Errorf("userinfo %v", ui)
					}
				}
			}
		})
	}
}
