package oauth_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/server/servertest"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestBasicSecretEncodings: a client secret an administrator set with '+',
// '%' or a space in it authenticates over HTTP Basic whether the client
// form-encodes the pair first, as RFC 6749 §2.3.1 asks, or sends it as
// is, as curl -u and Go's SetBasicAuth do (RFC 7617), at the token and the
// revocation endpoints, on both backends. Before, only the encoded form
// passed: a raw '+' read as a space and a raw '%' as an escape. A wrong
// secret, or another reading of the right one, still gets Auth0's 401.
func TestBasicSecretEncodings(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			env := servertest.Start(t, backend)
			admin := env.ManagementToken(t)
			api := func(method, path string, body any) map[string]any {
				t.Helper()
				return env.MustDo(t, method, path, admin, body)
			}
			const aud = "https://jobs.example/api"
			api("POST", "api/v2/resource-servers", map[string]any{"identifier": aud})
			// Secrets are at least 32 characters at the Management API.
			const pad = "-0123456789abcdefghijklmnopqrstuvwxyz"
			secrets := []struct{ name, secret string }{
				{"plus", "plus+sign" + pad},
				{"bare percent", "100%" + pad},
				{"literal %2B", "lit%2Beral" + pad},
				{"space", "has space" + pad},
				{"all of them", "a+b%c%2Bd e%" + pad},
				{"a valid escape", "%41" + pad},
			}
			const denied = `{"error":"access_denied","error_description":"Unauthorized"}`
			send := func(path, body string, setAuth func(*http.Request)) (int, http.Header, string) {
				t.Helper()
				req, _ := http.NewRequest("POST", env.URL+path, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				setAuth(req)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := readAnswer(resp)
				return resp.StatusCode, resp.Header, strings.TrimSpace(string(raw))
			}
			raw := func(id, secret string) func(*http.Request) {
				return func(r *http.Request) { r.SetBasicAuth(id, secret) }
			}
			encoded := func(id, secret string) func(*http.Request) {
				return func(r *http.Request) {
					r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret))))
				}
			}
			cc := "grant_type=client_credentials&audience=" + url.QueryEscape(aud)
			for _, s := range secrets {
				secret := s.secret
				t.Run(s.name, func(t *testing.T) {
					c := api("POST", "api/v2/clients", map[string]any{"name": "batch", "app_type": "non_interactive",
						"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "client_secret_basic"})
					id := c["client_id"].(string)
					api("PATCH", "api/v2/clients/"+id, map[string]any{"client_secret": secret})
					api("POST", "api/v2/client-grants", map[string]any{"client_id": id, "audience": aud, "scope": []string{}})
					for _, tc := range []struct {
						how  string
						auth func(*http.Request)
						ok   bool
					}{
						{"as sent (curl -u)", raw(id, secret), true},
						{"form-encoded (RFC 6749)", encoded(id, secret), true},
						{"wrong secret as sent", raw(id, "WRONG"+secret), false},
						{"wrong secret form-encoded", encoded(id, "WRONG"+secret), false},
						// The secret's other reading is not the secret.
						{"the secret's form-decoding as sent", raw(id, mustUnescape(secret)), secret == mustUnescape(secret)},
						{"the secret form-encoded twice", encoded(id, url.QueryEscape(secret)), false},
						{"an unknown client with a '%' in its id", raw(id+"%zz", secret), false},
					} {
						for _, at := range []struct{ path, body string }{{"oauth/token", cc}, {"oauth/revoke", "token=unknown"}} {
							status, h, body := send(at.path, at.body, tc.auth)
							switch {
							case tc.ok && status != http.StatusOK:
								t.Errorf("%s at %s: %d %s", tc.how, at.path, status, body)
							case !tc.ok && (status != http.StatusUnauthorized || body != denied || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic realm=")):
								t.Errorf("%s at %s: %d %s, want Auth0's 401 with a Basic challenge", tc.how, at.path, status, body)
							}
						}
					}
					if logs := env.Logs.String(); strings.Contains(logs, secret) || strings.Contains(logs, url.QueryEscape(secret)) {
						t.Errorf("the secret is in the logs")
					}
				})
			}
		})
	}
}

// mustUnescape is url.QueryUnescape, or s itself where s does not decode.
func mustUnescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}
