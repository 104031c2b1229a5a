package oauth_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestLoginMetrics: password logins are counted at the token endpoint by
// outcome, and at the identity provider by what it answered.
func TestLoginMetrics(t *testing.T) {
	e := newEnv(t, storetest.SQLite, envOptions{quietLogs: true, metrics: true})
	if r := e.login(t, "contoso-v2", "alice@contoso.com", "Alice-Passw0rd!", "openid"); r.status != http.StatusOK {
		t.Fatalf("login: %d %s", r.status, r.raw)
	}
	if r := e.login(t, "contoso-v2", "alice@contoso.com", "wrong", "openid"); r.status != http.StatusForbidden {
		t.Fatalf("wrong password: %d %s", r.status, r.raw)
	}
	m := e.metrics(t)
	for _, want := range []string{
		`gatehouse_token_requests_total{grant="http://auth0.com/oauth/grant-type/password-realm",outcome="ok"} 1`,
		`gatehouse_token_requests_total{grant="http://auth0.com/oauth/grant-type/password-realm",outcome="invalid_grant"} 1`,
		`gatehouse_upstream_logins_total{outcome="ok",strategy="waad"} 1`,
		`gatehouse_upstream_logins_total{outcome="invalid_credentials",strategy="waad"} 1`,
		`gatehouse_upstream_login_duration_seconds_count{strategy="waad"} 2`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(m, "alice") || strings.Contains(m, e.clientID) {
		t.Error("metrics name a user or a client")
	}
}
