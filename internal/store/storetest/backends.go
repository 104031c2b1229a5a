package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver for schema setup

	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
)

// Backend names.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// PostgresEnv names the variable holding the DSN of a PostgreSQL database
// the tests may create schemas in, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const PostgresEnv = "GATEHOUSE_TEST_POSTGRES"

// Backends lists every backend. Tests range over it and call Open or DSN,
// which skip PostgreSQL when PostgresEnv is unset.
func Backends() []string { return []string{SQLite, Postgres} }

// DSN returns a Gatehouse database DSN for a new, empty database of the
// named backend that lives as long as t: a file in t.TempDir(), or a schema
// of its own in the PostgresEnv database (through search_path), dropped at
// cleanup.
func DSN(t testing.TB, backend string) string {
	t.Helper()
	switch backend {
	case SQLite:
		return "sqlite:" + filepath.Join(t.TempDir(), "gatehouse.db")
	case Postgres:
		base := os.Getenv(PostgresEnv)
		if base == "" {
			t.Skip(PostgresEnv + " is not set")
		}
		return postgresSchema(t, base)
	}
	t.Fatalf("storetest: unknown backend %q", backend)
	return ""
}

func postgresSchema(t testing.TB, base string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("storetest: %s: %v", PostgresEnv, err)
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	schema := "gh_test_" + strings.ToLower(rand.Text())
	if _, err := db.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		db.Close()
		t.Fatalf("storetest: create schema: %v", err)
	}
	t.Cleanup(func() {
		defer db.Close()
		if _, err := db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("storetest: drop schema: %v", err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Open returns a migrated store on a new database of the named backend,
// closed at cleanup.
func Open(t testing.TB, backend string) *sqlstore.Store {
	t.Helper()
	dsn := DSN(t, backend)
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatalf("storetest: open %s: %v", backend, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("storetest: close %s: %v", backend, err)
		}
	})
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("storetest: migrate %s: %v", backend, err)
	}
	return s
}
