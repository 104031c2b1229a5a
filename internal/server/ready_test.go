package server

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestReadyzWhenKeysCannotLoad: a replica whose reload finds signing keys
// it cannot unseal (sealed under a master key it lacks, say) keeps the keys
// it has. While they are the store's it stays ready; once the others sign
// with a key it cannot load, /readyz takes it out of the load balancer
// until a reload succeeds.
func TestReadyzWhenKeysCannotLoad(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			dsn := storetest.DSN(t, backend)
			s := purgeTestServerOn(t, dsn, 0)
			ts := httptest.NewServer(s.Handler())
			defer ts.Close()
			ready := func() int { return readyz(t, ts.URL) }
			if got := ready(); got != http.StatusOK {
				t.Fatalf("/readyz before: %d", got)
			}
			driver, conn := "pgx", dsn
			if backend == storetest.SQLite {
				driver, conn = "sqlite", strings.TrimPrefix(dsn, "sqlite:")
			}
			db, err := sql.Open(driver, conn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := db.ExecContext(ctx, q, args...); err != nil {
					t.Fatal(err)
				}
			}
			good := map[string][]byte{}
			rows, err := db.QueryContext(ctx, "SELECT kid, private_enc FROM signing_keys")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var kid string
				var enc []byte
				if err := rows.Scan(&kid, &enc); err != nil {
					t.Fatal(err)
				}
				good[kid] = enc
			}
			if err := rows.Close(); err != nil {
				t.Fatal(err)
			}
			unsealable := []byte("sealed under a key this replica does not hold")

			// The same keys, sealed anew under a master key this replica
			// lacks: it still signs with the key the others sign with.
			exec("UPDATE signing_keys SET private_enc = $1", unsealable)
			if err := s.keys.Reload(ctx); err == nil {
				t.Fatal("reload of an unsealable key succeeded")
			}
			if got := ready(); got != http.StatusOK {
				t.Errorf("/readyz with the same keys, unsealable: %d, want 200", got)
			}

			// Another replica rotates: the key that now signs there is one
			// this replica cannot load.
			now := time.Now().UnixMilli()
			exec("UPDATE signing_keys SET state = 'previous', current_until = $1 WHERE state = 'current'", now)
			exec("UPDATE signing_keys SET state = 'current', current_since = $1 WHERE state = 'next'", now)
			if err := s.keys.Reload(ctx); err == nil {
				t.Fatal("reload of an unsealable key succeeded")
			}
			if got := ready(); got != http.StatusServiceUnavailable {
				t.Errorf("/readyz after a rotation it cannot load: %d, want 503", got)
			}

			// Every published key must open, the previous one too: only
			// the master key proves a key genuine.
			for kid, enc := range good {
				exec("UPDATE signing_keys SET private_enc = $1 WHERE kid = $2", enc, kid)
			}
			if err := s.keys.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			if got := ready(); got != http.StatusOK {
				t.Errorf("/readyz after a good reload: %d, want 200", got)
			}
		})
	}
}

// TestReadyzWhenPostgresReadOnly: after a failover that the database's
// address has not followed yet, Gatehouse reaches a server that answers
// reads and refuses writes. Every login would fail, so /readyz says 503
// until the database takes writes again.
func TestReadyzWhenPostgresReadOnly(t *testing.T) {
	base := os.Getenv(storetest.PostgresEnv)
	if base == "" {
		t.Skip(storetest.PostgresEnv + " is not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	// A database of its own: the read-only setting is per database, and
	// other tests share the base one.
	name := "gh_test_ro_" + strings.ToLower(rand.Text())
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database: %v", err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	s := purgeTestServerOn(t, u.String(), 0)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	ready := func() int { return readyz(t, ts.URL) }
	// reconnect makes the server's connections new sessions, which take
	// the database's settings, as a failover does.
	reconnect := func() {
		t.Helper()
		if _, err := admin.ExecContext(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name); err != nil {
			t.Fatal(err)
		}
	}
	if got := ready(); got != http.StatusOK {
		t.Fatalf("/readyz before: %d", got)
	}
	if _, err := admin.ExecContext(ctx, "ALTER DATABASE "+name+" SET default_transaction_read_only = on"); err != nil {
		t.Fatal(err)
	}
	reconnect()
	// The first probes may meet terminated connections (503 for that
	// reason); none may say ready once the pool has reconnected.
	for i := range 25 {
		if got := ready(); got == http.StatusOK {
			t.Fatalf("/readyz on a read-only database, probe %d: 200, want 503", i)
		}
	}
	if _, err := admin.ExecContext(ctx, "ALTER DATABASE "+name+" RESET default_transaction_read_only"); err != nil {
		t.Fatal(err)
	}
	reconnect()
	got := 0
	for range 25 {
		if got = ready(); got == http.StatusOK {
			break
		}
	}
	if got != http.StatusOK {
		t.Errorf("/readyz once the database takes writes again: %d, want 200", got)
	}
}

// readyz is the status of GET /readyz on the server at base.
func readyz(t *testing.T, base string) int {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
