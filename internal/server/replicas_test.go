package server_test

import (
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/server/servertest"
	"github.com/gatehouse/gatehouse/internal/store/cache"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestReplicaSeesRotationAndDeletion: two Gatehouse replicas on one
// PostgreSQL schema. After a client secret is rotated, and then the client
// deleted, through replica A's Management API, replica B's token endpoint
// refuses the old credentials well before its cache entries could have
// expired: only B's listener can explain it.
func TestReplicaSeesRotationAndDeletion(t *testing.T) {
	a := servertest.Start(t, storetest.Postgres)
	b := servertest.Start(t, storetest.Postgres, func(c *config.Config) {
		c.Database, c.SecretKey = a.Config.Database, a.Config.SecretKey
	})
	admin := a.ManagementToken(t)
	const aud = "https://orders.example/api"
	mustDo := func(method, path string, body any, want int) map[string]any {
		t.Helper()
		status, _, raw := a.Do(t, method, path, admin, body)
		if status != want {
			t.Fatalf("%s %s: %d %s", method, path, status, raw)
		}
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		return m
	}
	mustDo("POST", "api/v2/resource-servers", map[string]any{"identifier": aud, "name": "Orders"}, http.StatusCreated)
	cl := mustDo("POST", "api/v2/clients", map[string]any{"name": "worker", "app_type": "non_interactive", "grant_types": []string{"client_credentials"}}, http.StatusCreated)
	id, secret := cl["client_id"].(string), cl["client_secret"].(string)
	mustDo("POST", "api/v2/client-grants", map[string]any{"client_id": id, "audience": aud, "scope": []string{}}, http.StatusCreated)

	tokenAtB := func(secret string) int {
		t.Helper()
		resp, err := http.PostForm(b.URL+"oauth/token", url.Values{"grant_type": {"client_credentials"},
			"client_id": {id}, "client_secret": {secret}, "audience": {aud}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// refusedSoon requires B to refuse secret before the entries it cached
	// at cachedAt could have expired.
	refusedSoon := func(what, secret string, cachedAt time.Time) {
		t.Helper()
		deadline := cachedAt.Add(cache.DefaultTTL / 2)
		for tokenAtB(secret) == http.StatusOK {
			if time.Now().After(deadline) {
				t.Fatalf("%s: replica B still issues tokens %v after caching the client", what, time.Since(cachedAt))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	cachedAt := time.Now()
	if status := tokenAtB(secret); status != http.StatusOK {
		t.Fatalf("token at B: %d", status)
	}
	rotated := mustDo("POST", "api/v2/clients/"+id+"/rotate-secret", nil, http.StatusOK)["client_secret"].(string)
	refusedSoon("old secret after rotation", secret, cachedAt)

	cachedAt = time.Now()
	if status := tokenAtB(rotated); status != http.StatusOK {
		t.Fatalf("token at B with the rotated secret: %d", status)
	}
	mustDo("DELETE", "api/v2/clients/"+id, nil, http.StatusNoContent)
	refusedSoon("deleted client", rotated, cachedAt)
}

// TestReplicaFollowsKeyRotationAndRevocation: two Gatehouse replicas on
// one PostgreSQL schema, neither running its periodic key reload (only
// Serve starts it). After a rotation through replica A's Management API,
// replica B signs with the new key; after A revokes the previous key, B
// no longer publishes it and refuses the tokens it signed.
func TestReplicaFollowsKeyRotationAndRevocation(t *testing.T) {
	a := servertest.Start(t, storetest.Postgres)
	b := servertest.Start(t, storetest.Postgres, func(c *config.Config) {
		c.Database, c.SecretKey = a.Config.Database, a.Config.SecretKey
	})
	kidOf := func(jwt string) string {
		t.Helper()
		head, _, _ := strings.Cut(jwt, ".")
		raw, err := base64.RawURLEncoding.DecodeString(head)
		var h struct{ Kid string }
		if err == nil {
			err = json.Unmarshal(raw, &h)
		}
		if err != nil {
			t.Fatalf("JWT header %q: %v", head, err)
		}
		return h.Kid
	}
	published := func(kid string) bool {
		t.Helper()
		status, _, raw := b.Do(t, "GET", ".well-known/jwks.json", "", nil)
		if status != http.StatusOK {
			t.Fatalf("jwks at B: %d %s", status, raw)
		}
		return strings.Contains(string(raw), `"kid":"`+kid+`"`)
	}
	eventually := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: replica B did not follow within 3 s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	adminA, oldTokenB := a.ManagementToken(t), b.ManagementToken(t)
	old := kidOf(oldTokenB)
	status, _, raw := a.Do(t, "POST", "api/v2/keys/signing/rotate", adminA, nil)
	var next struct{ Kid string }
	if err := json.Unmarshal(raw, &next); status != http.StatusCreated || err != nil {
		t.Fatalf("rotate at A: %d %s", status, raw)
	}
	eventually("rotation", func() bool { return kidOf(b.ManagementToken(t)) != old && published(next.Kid) })

	if status, _, raw := a.Do(t, "PUT", "api/v2/keys/signing/"+old+"/revoke", adminA, nil); status != http.StatusOK {
		t.Fatalf("revoke at A: %d %s", status, raw)
	}
	eventually("revocation", func() bool {
		status, _, _ := b.Do(t, "GET", "api/v2/clients", oldTokenB, nil)
		return status == http.StatusUnauthorized && !published(old)
	})
}

// TestReplicaSeesBootstrapAdminSecret: a replica started with a new
// GATEHOUSE_ADMIN_CLIENT_SECRET (an operator rotating it by a rolling
// restart) rewrites the admin application at start. A replica already
// running refuses the old secret well before the entry it cached could
// have expired: the start announced its write like a Management API write.
func TestReplicaSeesBootstrapAdminSecret(t *testing.T) {
	a := servertest.Start(t, storetest.Postgres)
	token := func(secret string) int {
		t.Helper()
		resp, err := http.PostForm(a.URL+"oauth/token", url.Values{"grant_type": {"client_credentials"},
			"client_id": {a.AdminID}, "client_secret": {secret}, "audience": {a.URL + "api/v2/"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// A's listener clears the cache once it listens; what A caches must
	// come after that.
	waitListening(t, a.Config.Database, 1)
	cachedAt := time.Now()
	if status := token(a.AdminSecret); status != http.StatusOK {
		t.Fatalf("token at A: %d", status)
	}
	b := servertest.Start(t, storetest.Postgres, func(c *config.Config) {
		c.Database, c.SecretKey, c.AdminClientID = a.Config.Database, a.Config.SecretKey, a.AdminID
	})
	if b.AdminSecret == a.AdminSecret {
		t.Fatal("B was started with A's admin secret")
	}
	deadline := cachedAt.Add(cache.DefaultTTL * 4 / 5)
	for token(a.AdminSecret) == http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("replica A still accepts the old admin secret %v after caching it", time.Since(cachedAt))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status := token(b.AdminSecret); status != http.StatusOK {
		t.Fatalf("token at A with B's admin secret: %d", status)
	}
}

// waitListening waits until n processes on dsn's schema listen for
// changes, and a little longer, for the cache clear that follows.
func waitListening(t *testing.T, dsn string, n int) {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const q = `SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND state = 'idle'
		AND query LIKE 'LISTEN %' || md5(current_schema()) || '%'`
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got int
		if err := db.QueryRowContext(t.Context(), q).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nobody listens on the schema's channel")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
}

// TestReplicaSeesDeletionWhileKeyReloadWaits: replica B's key reload,
// started by a signing-key notification, waits on a lock (a migration or
// an operator holding the table). A client deleted through replica A
// meanwhile is still refused by B at once: configuration changes do not
// queue behind a key reload.
func TestReplicaSeesDeletionWhileKeyReloadWaits(t *testing.T) {
	a := servertest.Start(t, storetest.Postgres)
	b := servertest.Start(t, storetest.Postgres, func(c *config.Config) {
		c.Database, c.SecretKey = a.Config.Database, a.Config.SecretKey
	})
	admin := a.ManagementToken(t)
	status, _, raw := a.Do(t, "POST", "api/v2/clients", admin, map[string]any{"name": "worker", "app_type": "non_interactive",
		"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "client_secret_post"})
	var cl struct{ ClientID, ClientSecret string }
	if err := json.Unmarshal(raw, &struct {
		ID     *string `json:"client_id"`
		Secret *string `json:"client_secret"`
	}{&cl.ClientID, &cl.ClientSecret}); status != http.StatusCreated || err != nil {
		t.Fatalf("create client: %d %s", status, raw)
	}
	tokenAtB := func() int {
		t.Helper()
		// A refresh grant with a made-up token: the client is authenticated
		// (cached) before the token is looked at.
		resp, err := http.PostForm(b.URL+"oauth/token", url.Values{"grant_type": {"refresh_token"},
			"client_id": {cl.ClientID}, "client_secret": {cl.ClientSecret}, "refresh_token": {"x.y"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitListening(t, a.Config.Database, 2)

	db, err := sql.Open("pgx", a.Config.Database)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	if _, err := tx.ExecContext(t.Context(), "LOCK TABLE signing_keys IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(t.Context(), "SELECT pg_notify('gatehouse_config_' || md5(current_schema()), 'keys')"); err != nil {
		t.Fatal(err)
	}
	// Both listeners' reloads now wait for the lock.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var waiting int
		if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE '%signing_keys%'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d key reloads wait for the lock, want 2", waiting)
		}
		time.Sleep(10 * time.Millisecond)
	}

	cachedAt := time.Now()
	if status := tokenAtB(); status == http.StatusUnauthorized {
		t.Fatalf("B refuses the client before its deletion: %d", status)
	}
	if status, _, raw := a.Do(t, "DELETE", "api/v2/clients/"+cl.ClientID, admin, nil); status != http.StatusNoContent {
		t.Fatalf("delete at A: %d %s", status, raw)
	}
	for tokenAtB() != http.StatusUnauthorized {
		if time.Since(cachedAt) > cache.DefaultTTL/2 {
			t.Fatalf("replica B still knows the deleted client %v after caching it", time.Since(cachedAt))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
