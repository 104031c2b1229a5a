package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"time"
)

//go:embed migrations
var migrationFS embed.FS

// migration is one schema version of one backend.
type migration struct {
	version int
	name    string
	sql     string
}

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// loadMigrations reads migrations/<backend>, which must hold versions 1..n
// without gaps.
func loadMigrations(backend string) ([]migration, error) {
	dir := path.Join("migrations", backend)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries { // ReadDir sorts by name
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("sqlstore: migrations: %s/%s: want NNNN_name.sql", dir, e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if v != len(ms)+1 {
			return nil, fmt.Errorf("sqlstore: migrations: %s/%s: want version %d", dir, e.Name(), len(ms)+1)
		}
		b, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("sqlstore: migrations: %w", err)
		}
		ms = append(ms, migration{version: v, name: m[2], sql: string(b)})
	}
	return ms, nil
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    BIGINT NOT NULL PRIMARY KEY,
	applied_at BIGINT NOT NULL
)`

// LatestVersion is the newest schema version this binary knows.
func (s *Store) LatestVersion() int { return len(s.migrations) }

// CurrentVersion is the newest schema version applied to the database, 0
// for an empty database.
func (s *Store) CurrentVersion(ctx context.Context) (int, error) {
	v, err := currentVersion(ctx, s.read, s.d)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: schema version: %w", err)
	}
	return v, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func currentVersion(ctx context.Context, q querier, d dialect) (int, error) {
	var exists bool
	if err := q.QueryRowContext(ctx, d.tableExistsSQL, "schema_migrations").Scan(&exists); err != nil {
		return 0, err
	}
	if !exists {
		return 0, nil
	}
	var v int
	err := q.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&v)
	return v, err
}

// Migrate applies the pending migrations in order, each in its own
// transaction. It is idempotent and safe to run from several processes at
// once: each transaction first takes the migration lock (an advisory lock
// on PostgreSQL; on SQLite the IMMEDIATE transaction holds the write lock)
// and only then reads the current version, so a migration runs once.
func (s *Store) Migrate(ctx context.Context) (err error) {
	if s.d.name == sqliteDialect.name {
		// The writer keeps temporary data in memory (Open); an index built
		// over a large table sorts it, which belongs in a file.
		if _, err := s.write.ExecContext(ctx, "PRAGMA temp_store = FILE"); err != nil {
			return fmt.Errorf("sqlstore: migrate: %w", err)
		}
		defer func() {
			if _, rerr := s.write.ExecContext(context.WithoutCancel(ctx), "PRAGMA temp_store = MEMORY"); rerr != nil && err == nil {
				err = fmt.Errorf("sqlstore: migrate: %w", rerr)
			}
		}()
	}
	for {
		m, err := s.migrateNext(ctx)
		if err != nil {
			return err
		}
		if m == nil {
			return nil
		}
		s.logger.InfoContext(ctx, "applied database migration", "backend", s.d.name, "version", m.version, "name", m.name)
	}
}

// migrateNext applies the first pending migration and returns it, or nil
// when there is none.
func (s *Store) migrateNext(ctx context.Context) (*migration, error) {
	var next *migration
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.lock(ctx, tx, lockMigrate); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, createMigrationsTable); err != nil {
			return err
		}
		cur, err := currentVersion(ctx, tx, s.d)
		if err != nil {
			return err
		}
		if cur > len(s.migrations) {
			return newerSchema(cur, len(s.migrations))
		}
		if cur == len(s.migrations) {
			return nil
		}
		next = &s.migrations[cur]
		if _, err := tx.ExecContext(ctx, next.sql); err != nil {
			return fmt.Errorf("version %d (%s): %w", next.version, next.name, err)
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
			next.version, time.Now().UnixMilli())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: migrate: %w", err)
	}
	return next, nil
}

// newerSchema refuses a database a newer Gatehouse has migrated: this
// binary would misread what the newer one stores (migration 5, for one,
// moved users' metadata out of the profile), and what it wrote back would
// be lost to the newer one.
func newerSchema(cur, latest int) error {
	return fmt.Errorf("database schema is at version %d, newer than this Gatehouse knows (%d): run the newer Gatehouse", cur, latest)
}
