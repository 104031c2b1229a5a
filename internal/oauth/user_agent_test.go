package oauth_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestUserAgentIsStoredAsText: HTTP allows a User-Agent of bytes that are
// not UTF-8 (obs-text) and as long as the header limit. A login and a
// refresh with such a header work on both backends, and what the log
// event keeps of it is bounded UTF-8 text.
func TestUserAgentIsStoredAsText(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{})
			refreshClient(t, e, rotating(0))
			post := func(form url.Values, ua string) tokenResult {
				t.Helper()
				return e.tokenWith(t, form, http.Header{"User-Agent": {ua}})
			}
			for name, ua := range map[string]string{
				"not UTF-8": "Mozilla/5.0 (\xff\xfe)",
				"long":      "Mozilla/5.0 " + strings.Repeat("é", 15000),
			} {
				r := post(url.Values{"grant_type": {"http://auth0.com/oauth/grant-type/password-realm"}, "client_id": {e.clientID},
					"realm": {"contoso-v2"}, "username": {"alice@contoso.com"}, "password": {"Alice-Passw0rd!"}, "scope": {"openid offline_access"}}, ua)
				if r.status != http.StatusOK || r.str("refresh_token") == "" {
					t.Fatalf("%s: login %d %s", name, r.status, r.raw)
				}
				ev := lastEvent(t, e, "sepft")
				if got, _ := ev["user_agent"].(string); !utf8.ValidString(got) || len(got) > 1024 || !strings.HasPrefix(got, "Mozilla/5.0 ") {
					t.Errorf("%s: sepft user_agent of %d bytes: %.40q", name, len(got), got)
				}
				r = post(url.Values{"grant_type": {"refresh_token"}, "client_id": {e.clientID}, "refresh_token": {r.str("refresh_token")}}, ua)
				if r.status != http.StatusOK {
					t.Errorf("%s: refresh %d %s", name, r.status, r.raw)
				}
				if got, _ := lastEvent(t, e, "sertft")["user_agent"].(string); !utf8.ValidString(got) || len(got) > 1024 {
					t.Errorf("%s: sertft user_agent of %d bytes", name, len(got))
				}
			}
		})
	}
}
