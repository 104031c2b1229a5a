package main

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestMigrateCommand: `gatehouse migrate` reports the schema version, is
// idempotent, and refuses a database a newer Gatehouse migrated, saying so.
func TestMigrateCommand(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			dsn := storetest.DSN(t, b)
			t.Setenv("GATEHOUSE_DATABASE", dsn)
			st, err := sqlstore.Open(t.Context(), dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			latest := st.LatestVersion()
			st.Close()
			want := fmt.Sprintf("database at schema version %d\n", latest)
			for run := 1; run <= 2; run++ {
				if out, _, err := runCLI(t, "", "migrate"); err != nil || out != want {
					t.Fatalf("run %d: %q %v, want %q", run, out, err, want)
				}
			}

			driver, source := "pgx", dsn
			if p, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
				driver, source = "sqlite", p
			}
			db, err := sql.Open(driver, source)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.ExecContext(t.Context(), "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 0)", latest+1); err != nil {
				t.Fatal(err)
			}
			out, _, err := runCLI(t, "", "migrate")
			if wantErr := fmt.Sprintf("database schema is at version %d, newer than this Gatehouse knows (%d)", latest+1, latest); err == nil || !strings.Contains(err.Error(), wantErr) || out != "" {
				t.Fatalf("migrate on a newer schema: %q %v, want a refusal saying %q", out, err, wantErr)
			}
		})
	}
}
