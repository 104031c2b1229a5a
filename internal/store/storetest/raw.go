package storetest

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// RawDB opens the database behind dsn beneath the store, for tests that
// play someone who writes to it directly; it is closed when t ends.
func RawDB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	driver, name := "pgx", dsn
	if p, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		driver, name = "sqlite", p
	}
	db, err := sql.Open(driver, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// RawContains reports which of needles occur anywhere in the database
// behind dsn, read beneath the store: every file of a SQLite database
// (main file, WAL and shared memory) byte for byte, or every row of every
// table of a PostgreSQL schema as text (bytea shows as hex, so needles are
// looked for in hex too).
func RawContains(t testing.TB, dsn string, needles ...string) []string {
	t.Helper()
	var dump []byte
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		files, err := filepath.Glob(path + "*")
		if err != nil || len(files) == 0 {
			t.Fatalf("storetest: no database files at %s: %v", path, err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			dump = append(dump, b...)
		}
	default:
		dump = postgresDump(t, dsn)
	}
	var found []string
	for _, n := range needles {
		if bytes.Contains(dump, []byte(n)) || bytes.Contains(dump, []byte(hex.EncodeToString([]byte(n)))) {
			found = append(found, n)
		}
	}
	return found
}

func postgresDump(t testing.TB, dsn string) []byte {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	rows, err := db.QueryContext(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	if len(tables) == 0 {
		t.Fatal("storetest: no tables in the schema")
	}
	var dump bytes.Buffer
	for _, name := range tables {
		rows, err := db.QueryContext(ctx, `SELECT CAST(t AS TEXT) FROM "`+name+`" t`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			dump.WriteString(s)
			dump.WriteByte('\n')
		}
		rows.Close()
	}
	return dump.Bytes()
}
