package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	emulator "github.com/gatehouse/gatehouse/emulator/entra"
	"github.com/gatehouse/gatehouse/emulator/entra/entratest"
	"github.com/gatehouse/gatehouse/internal/server/servertest"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestSealedValuesDoNotMoveBetweenRows: someone who can write to the
// database but lacks the master key copies a sealed value into another
// row or another kind of field, hoping Gatehouse opens it there: client
// A's secret into client B (B then authenticates with A's secret, or the
// Management API shows it as B's), a connection's secret into another
// connection (its logins would use it), a user's upstream tokens into
// another user, a connection's secret into a user's upstream tokens (the
// Management API would show it). Each sealed value is bound to its row
// and field, so none opens where it was copied: the request fails, and
// nothing reaches Entra.
func TestSealedValuesDoNotMoveBetweenRows(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) { sealedSwap(t, backend) })
	}
}

func sealedSwap(t *testing.T, backend string) {
	var upstreamTokens atomic.Int32
	_, emuURL := entratest.Start(t, entratest.Example(t), emulator.Options{}, func(emu http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/token") {
				upstreamTokens.Add(1)
			}
			emu.ServeHTTP(w, r)
		})
	})
	env := servertest.Start(t, backend, servertest.AllowUpstream(emuURL))
	admin := env.ManagementToken(t)
	mgmt := env.URL + "api/v2/"

	newClient := func(name, appType string, grants ...string) (id, secret string) {
		t.Helper()
		c := env.MustDo(t, "POST", "api/v2/clients", admin, map[string]any{"name": name, "app_type": appType, "grant_types": grants})
		id, _ = c["client_id"].(string)
		secret, _ = c["client_secret"].(string)
		return id, secret
	}
	native, _ := newClient("Mobile", "native", "http://auth0.com/oauth/grant-type/password-realm")
	clientA, secretA := newClient("A", "non_interactive", "client_credentials")
	clientB, _ := newClient("B", "non_interactive", "client_credentials")
	clientD, _ := newClient("D", "non_interactive", "client_credentials")
	for _, id := range []string{clientA, clientB} {
		env.MustDo(t, "POST", "api/v2/client-grants", admin, map[string]any{"client_id": id, "audience": mgmt, "scope": []string{"read:clients"}})
	}
	newConnection := func(name, secret string) string {
		t.Helper()
		c := env.MustDo(t, "POST", "api/v2/connections", admin, map[string]any{"name": name, "strategy": "waad",
			"enabled_clients": []string{native},
			"options": map[string]any{"client_id": "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b", "client_secret": secret,
				"tenant_domain": "contoso.onmicrosoft.com", "authority_host": emuURL, "graph_host": emuURL,
				"ext_access_token": true, "ext_refresh_token": true}})
		id, _ := c["id"].(string)
		return id
	}
	const connSecret = "native-secret-value" // the emulator app's real secret
	conn1 := newConnection("contoso", connSecret)
	conn2 := newConnection("contoso-copy", "a-secret-entra-does-not-know")

	login := func(realm, user, password string) (int, string) {
		t.Helper()
		resp, err := http.PostForm(env.URL+"oauth/token", url.Values{"grant_type": {"http://auth0.com/oauth/grant-type/password-realm"},
			"realm": {realm}, "client_id": {native}, "username": {user}, "password": {password}, "scope": {"openid"}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	for _, u := range [][2]string{{"alice@contoso.com", "Alice-Passw0rd!"}, {"judy@contoso.onmicrosoft.com", "Judy-Passw0rd!"}} {
		if status, raw := login("contoso", u[0], u[1]); status != http.StatusOK {
			t.Fatalf("login of %s: %d %s", u[0], status, raw)
		}
	}
	userID := func(email string) string {
		t.Helper()
		_, _, raw := env.Do(t, "GET", "api/v2/users-by-email?email="+url.QueryEscape(email), admin, nil)
		var users []struct {
			UserID string `json:"user_id"`
		}
		if err := json.Unmarshal(raw, &users); err != nil || len(users) != 1 {
			t.Fatalf("user %s: %s", email, raw)
		}
		return users[0].UserID
	}
	alice, judy := userID("alice@contoso.com"), userID("judy@contoso.com")
	aliceView := string(mustGet(t, env, "api/v2/users/"+url.PathEscape(alice), admin))
	aliceToken := identityToken(t, aliceView)
	if aliceToken == "" {
		t.Fatalf("alice's upstream access token is not stored: %s", aliceView)
	}

	db := storetest.RawDB(t, env.Config.Database)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	blob := func(table, key, column, id string) []byte {
		t.Helper()
		var b []byte
		if err := db.QueryRowContext(ctx, "SELECT "+column+" FROM "+table+" WHERE "+key+" = $1", id).Scan(&b); err != nil || len(b) == 0 {
			t.Fatalf("%s %s: %v", table, id, err)
		}
		return b
	}
	set := func(table, key, column, id string, b []byte) {
		t.Helper()
		if _, err := db.ExecContext(ctx, "UPDATE "+table+" SET "+column+" = $1 WHERE "+key+" = $2", b, id); err != nil {
			t.Fatal(err)
		}
	}

	// Client A's secret in client B.
	set("clients", "client_id", "secret_enc", clientB, blob("clients", "client_id", "secret_enc", clientA))
	resp, err := http.PostForm(env.URL+"oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {clientB},
		"client_secret": {secretA}, "audience": {mgmt}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("client B with client A's secret and sealed secret: %d, want 500", resp.StatusCode)
	}
	if status, _, raw := env.Do(t, "GET", "api/v2/clients/"+clientB, admin, nil); status != http.StatusInternalServerError || strings.Contains(string(raw), secretA) {
		t.Errorf("client B with client A's sealed secret in the Management API: %d %s, want 500", status, raw)
	}

	// A connection's secret in another connection.
	set("connections", "id", "secret_enc", conn2, blob("connections", "id", "secret_enc", conn1))
	before := upstreamTokens.Load()
	if status, raw := login("contoso-copy", "alice@contoso.com", "Alice-Passw0rd!"); status == http.StatusOK || upstreamTokens.Load() != before {
		t.Errorf("login through a connection holding another's sealed secret: %d %s, %d calls to Entra", status, raw, upstreamTokens.Load()-before)
	}

	// Alice's upstream tokens in Judy's row, then a connection's secret.
	judyPath := "api/v2/users/" + url.PathEscape(judy)
	for what, b := range map[string][]byte{
		"alice's upstream tokens": blob("users", "user_id", "idp_tokens_enc", alice),
		"a connection's secret":   blob("connections", "id", "secret_enc", conn1),
	} {
		set("users", "user_id", "idp_tokens_enc", judy, b)
		if status, _, raw := env.Do(t, "GET", judyPath, admin, nil); status != http.StatusInternalServerError ||
			strings.Contains(string(raw), aliceToken) || strings.Contains(string(raw), connSecret) {
			t.Errorf("judy holding %s: %d %s, want 500", what, status, raw)
		}
	}

	// A connection's secret in a client.
	set("clients", "client_id", "secret_enc", clientD, blob("connections", "id", "secret_enc", conn1))
	if status, _, raw := env.Do(t, "GET", "api/v2/clients/"+clientD, admin, nil); status != http.StatusInternalServerError || strings.Contains(string(raw), connSecret) {
		t.Errorf("client D holding a connection's sealed secret: %d %s, want 500", status, raw)
	}

	// In their own rows the same values still open: the failures above
	// were the binding's.
	if got := identityToken(t, string(mustGet(t, env, "api/v2/users/"+url.PathEscape(alice), admin))); got != aliceToken {
		t.Errorf("alice's own upstream tokens: %q", got)
	}
	if c := env.MustDo(t, "GET", "api/v2/clients/"+clientA, admin, nil); c["client_secret"] != secretA {
		t.Errorf("client A's own secret: %v", c["client_secret"])
	}
	if status, raw := login("contoso", "alice@contoso.com", "Alice-Passw0rd!"); status != http.StatusOK {
		t.Errorf("login through the connection that sealed the secret: %d %s", status, raw)
	}
}

func mustGet(t *testing.T, env *servertest.Env, path, token string) []byte {
	t.Helper()
	status, _, raw := env.Do(t, "GET", path, token, nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, status, raw)
	}
	return raw
}

// identityToken is identities[0].access_token of a user's JSON.
func identityToken(t *testing.T, user string) string {
	t.Helper()
	var u struct {
		Identities []struct {
			AccessToken string `json:"access_token"`
		} `json:"identities"`
	}
	if err := json.Unmarshal([]byte(user), &u); err != nil || len(u.Identities) == 0 {
		t.Fatalf("user JSON: %v %s", err, user)
	}
	return u.Identities[0].AccessToken
}
