package management_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/management"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// auth0RouteScopes is the scope each route requires, as Auth0's
// Management API v2 reference names it for the endpoint
// (https://auth0.com/docs/api/management/v2, the "Scopes" of each
// operation). Where Auth0 accepts any of several, Gatehouse requires the
// one that matches the operation; "a b" means both are required, as
// Auth0's key rotation does. POST /connections/{id}/try is Gatehouse's
// own: it posts a password to the connection's upstream, a use of the
// connection's credentials, hence update:connections.
var auth0RouteScopes = map[string]string{
	"GET /api/v2/anomaly/blocks/ips/{id}":                      "read:anomaly_blocks",
	"DELETE /api/v2/anomaly/blocks/ips/{id}":                   "delete:anomaly_blocks",
	"GET /api/v2/attack-protection/brute-force-protection":     "read:attack_protection",
	"PATCH /api/v2/attack-protection/brute-force-protection":   "update:attack_protection",
	"GET /api/v2/attack-protection/suspicious-ip-throttling":   "read:attack_protection",
	"PATCH /api/v2/attack-protection/suspicious-ip-throttling": "update:attack_protection",
	"GET /api/v2/clients/{id}/credentials":                     "read:client_credentials",
	"POST /api/v2/clients/{id}/credentials":                    "create:client_credentials",
	"GET /api/v2/clients/{id}/credentials/{cid}":               "read:client_credentials",
	"PATCH /api/v2/clients/{id}/credentials/{cid}":             "update:client_credentials",
	"DELETE /api/v2/clients/{id}/credentials/{cid}":            "delete:client_credentials",
	"POST /api/v2/client-grants":                               "create:client_grants",
	"GET /api/v2/client-grants":                                "read:client_grants",
	"GET /api/v2/client-grants/{id}":                           "read:client_grants",
	"PATCH /api/v2/client-grants/{id}":                         "update:client_grants",
	"DELETE /api/v2/client-grants/{id}":                        "delete:client_grants",
	"POST /api/v2/clients":                                     "create:clients",
	"GET /api/v2/clients":                                      "read:clients",
	"GET /api/v2/clients/{id}":                                 "read:clients",
	"PATCH /api/v2/clients/{id}":                               "update:clients",
	"DELETE /api/v2/clients/{id}":                              "delete:clients",
	"POST /api/v2/clients/{id}/rotate-secret":                  "update:client_keys",
	"POST /api/v2/connections/{id}/try":                        "update:connections",
	"POST /api/v2/connections":                                 "create:connections",
	"GET /api/v2/connections":                                  "read:connections",
	"GET /api/v2/connections/{id}":                             "read:connections",
	"PATCH /api/v2/connections/{id}":                           "update:connections",
	"DELETE /api/v2/connections/{id}":                          "delete:connections",
	"GET /api/v2/connections/{id}/clients":                     "read:connections",
	"PATCH /api/v2/connections/{id}/clients":                   "update:connections",
	"GET /api/v2/device-credentials":                           "read:device_credentials",
	"DELETE /api/v2/device-credentials/{id}":                   "delete:device_credentials",
	"GET /api/v2/keys/signing":                                 "read:signing_keys",
	"GET /api/v2/keys/signing/{kid}":                           "read:signing_keys",
	"POST /api/v2/keys/signing/rotate":                         "create:signing_keys update:signing_keys",
	"PUT /api/v2/keys/signing/{kid}/revoke":                    "update:signing_keys",
	"GET /api/v2/logs":                                         "read:logs",
	"GET /api/v2/logs/{id}":                                    "read:logs",
	"GET /api/v2/users/{id}/logs":                              "read:logs",
	"GET /api/v2/users/{id}/refresh-tokens":                    "read:refresh_tokens",
	"DELETE /api/v2/users/{id}/refresh-tokens":                 "delete:refresh_tokens",
	"GET /api/v2/refresh-tokens/{id}":                          "read:refresh_tokens",
	"DELETE /api/v2/refresh-tokens/{id}":                       "delete:refresh_tokens",
	"POST /api/v2/resource-servers":                            "create:resource_servers",
	"GET /api/v2/resource-servers":                             "read:resource_servers",
	"GET /api/v2/resource-servers/{id}":                        "read:resource_servers",
	"PATCH /api/v2/resource-servers/{id}":                      "update:resource_servers",
	"DELETE /api/v2/resource-servers/{id}":                     "delete:resource_servers",
	"GET /api/v2/tenants/settings":                             "read:tenant_settings",
	"PATCH /api/v2/tenants/settings":                           "update:tenant_settings",
	"GET /api/v2/user-blocks":                                  "read:users",
	"DELETE /api/v2/user-blocks":                               "update:users",
	"GET /api/v2/user-blocks/{id}":                             "read:users",
	"DELETE /api/v2/user-blocks/{id}":                          "update:users",
	"GET /api/v2/users":                                        "read:users",
	"GET /api/v2/users/{id}":                                   "read:users",
	"PATCH /api/v2/users/{id}":                                 "update:users",
	"DELETE /api/v2/users/{id}":                                "delete:users",
	"GET /api/v2/users-by-email":                               "read:users",
}

// TestEveryRouteNeedsItsScope walks every route the API registers: each
// requires exactly Auth0's scope for it, refuses a token that holds every
// other scope of the Management API, refuses a missing token, and runs
// for a token that holds its scope alone.
func TestEveryRouteNeedsItsScope(t *testing.T) {
	registered := management.RouteScopes()
	for _, p := range slices.Sorted(maps.Keys(registered)) {
		if want, ok := auth0RouteScopes[p]; !ok || want != registered[p] {
			t.Errorf("%s requires %q; Auth0's scope is %q", p, registered[p], want)
		}
	}
	for p := range auth0RouteScopes {
		if _, ok := registered[p]; !ok {
			t.Errorf("%s is not registered", p)
		}
	}
	for _, s := range registered {
		for _, f := range strings.Fields(s) {
			if !slices.Contains(management.Scopes, f) {
				t.Errorf("scope %s is not in management.Scopes: no token could hold it", f)
			}
		}
	}

	a := start(t, storetest.SQLite)
	for _, pattern := range slices.Sorted(maps.Keys(registered)) {
		scope := registered[pattern]
		method, path, _ := strings.Cut(pattern, " ")
		for _, param := range []string{"{id}", "{cid}", "{kid}"} {
			path = strings.ReplaceAll(path, param, "x")
		}
		t.Run(pattern, func(t *testing.T) {
			need := strings.Fields(scope)
			others := slices.DeleteFunc(slices.Clone(management.Scopes), func(s string) bool { return slices.Contains(need, s) })
			status, h, v := a.callWith(a.ManagementToken(t, others...), method, path, map[string]any{})
			wording := "any of"
			if len(need) > 1 {
				wording = "all of"
			}
			errorIs(t, status, v, http.StatusForbidden, "insufficient_scope", "Insufficient scope, expected "+wording+": "+strings.Join(need, ","))
			if got := h.Get("WWW-Authenticate"); got != `Bearer error="insufficient_scope", scope="`+scope+`"` {
				t.Errorf("403 WWW-Authenticate %q", got)
			}
			for _, one := range need {
				if len(need) == 1 {
					break
				}
				status, _, v := a.callWith(a.ManagementToken(t, append(slices.Clone(others), one)...), method, path, map[string]any{})
				errorIs(t, status, v, http.StatusForbidden, "insufficient_scope", strings.Join(need, ","))
			}
			status, h, v = a.callWith("", method, path, map[string]any{})
			errorIs(t, status, v, http.StatusUnauthorized, "", "Missing authentication")
			if got := h.Get("WWW-Authenticate"); got != "Bearer" {
				t.Errorf("401 without a token: WWW-Authenticate %q", got)
			}
			status, _, v = a.callWith(a.ManagementToken(t, need...), method, path, map[string]any{})
			if status == http.StatusUnauthorized || status == http.StatusForbidden {
				t.Errorf("with %s alone: %d %v", scope, status, v)
			}
		})
	}
}

// TestMethodNotAllowed: a method no route serves at a path that routes
// serve for other methods is 405 with the methods that are served, in the
// API's error format, token or not; a path nothing serves stays 404.
func TestMethodNotAllowed(t *testing.T) {
	a := start(t, storetest.SQLite)
	for _, c := range []struct {
		method, path, token string
		status              int
		allow               string
	}{
		{"PUT", "/api/v2/clients", a.token, 405, "GET, HEAD, POST"},
		{"PUT", "/api/v2/clients", "", 405, "GET, HEAD, POST"},
		{"POST", "/api/v2/clients/x", a.token, 405, "GET, HEAD, PATCH, DELETE"},
		{"POST", "/api/v2/users", a.token, 405, "GET, HEAD"},
		{"DELETE", "/api/v2/keys/signing/x/revoke", a.token, 405, "PUT"},
		{"OPTIONS", "/api/v2/tenants/settings", "", 405, "GET, HEAD, PATCH"},
		{"GET", "/api/v2/nothing", a.token, 404, ""},
		{"PUT", "/api/v2/nothing", "", 404, ""},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			status, h, v := a.callWith(c.token, c.method, c.path, nil)
			errorIs(t, status, v, c.status, "", http.StatusText(c.status))
			if got := h.Get("Allow"); got != c.allow {
				t.Errorf("Allow %q, want %q", got, c.allow)
			}
		})
	}
}

// TestWritesNeedJSON: every route that reads a body refuses one that is
// not declared application/json, whatever it holds, before acting on it
// (a form post, a text/plain body a browser sends cross-origin without
// asking, or no Content-Type at all); JSON with a charset is JSON.
func TestWritesNeedJSON(t *testing.T) {
	a := start(t, storetest.SQLite)
	noBody := []string{"POST /api/v2/clients/{id}/rotate-secret", "POST /api/v2/keys/signing/rotate", "PUT /api/v2/keys/signing/{kid}/revoke"}
	for _, pattern := range slices.Sorted(maps.Keys(management.RouteScopes())) {
		method, path, _ := strings.Cut(pattern, " ")
		if method == http.MethodGet || method == http.MethodDelete || slices.Contains(noBody, pattern) {
			continue
		}
		for _, param := range []string{"{id}", "{cid}", "{kid}"} {
			path = strings.ReplaceAll(path, param, "x")
		}
		t.Run(pattern, func(t *testing.T) {
			for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "application/jsonx"} {
				req, _ := http.NewRequest(method, a.URL+strings.TrimPrefix(path, "/"), strings.NewReader(`{"name":"x"}`))
				req.Header.Set("Authorization", "Bearer "+a.token)
				if ct != "" {
					req.Header.Set("Content-Type", ct)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var body map[string]any
				_ = json.NewDecoder(resp.Body).Decode(&body)
				resp.Body.Close()
				errorIs(t, resp.StatusCode, body, http.StatusUnsupportedMediaType, "invalid_content_type", "Content-Type must be application/json")
			}
			req, _ := http.NewRequest(method, a.URL+strings.TrimPrefix(path, "/"), strings.NewReader(`{}`))
			req.Header.Set("Authorization", "Bearer "+a.token)
			req.Header.Set("Content-Type", "Application/JSON; charset=utf-8")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnsupportedMediaType {
				t.Errorf("JSON with a charset: %d", resp.StatusCode)
			}
		})
	}
}
