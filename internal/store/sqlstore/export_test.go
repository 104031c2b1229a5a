package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// AppliedVersions lists the versions recorded in schema_migrations.
func AppliedVersions(ctx context.Context, s *Store) ([]int, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return vs, rows.Err()
}

// MigrationNames lists a backend's migrations as NNNN_name.
func MigrationNames(backend string) ([]string, error) {
	ms, err := loadMigrations(backend)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, m := range ms {
		names = append(names, fmt.Sprintf("%04d_%s", m.version, m.name))
	}
	return names, nil
}

// ReadPool is the pool reads go through.
func ReadPool(s *Store) *sql.DB { return s.read }

// WriteLogBatch writes events as one PostgreSQL log batch and returns each
// one's outcome.
func WriteLogBatch(s *Store, events []*store.LogEvent) []error {
	batch := make([]*logAppend, len(events))
	for i, e := range events {
		r, err := newLogRow(e)
		if err != nil {
			panic(err)
		}
		batch[i] = &logAppend{r: r, done: make(chan error, 1)}
	}
	s.writeLogBatch(batch)
	errs := make([]error, len(batch))
	for i, a := range batch {
		errs[i] = <-a.done
	}
	return errs
}

// MigrateTo applies the pending migrations up to version v.
func MigrateTo(ctx context.Context, s *Store, v int) error {
	for {
		cur, err := s.CurrentVersion(ctx)
		if err != nil || cur >= v {
			return err
		}
		if _, err := s.migrateNext(ctx); err != nil {
			return err
		}
	}
}

// SkewClock sets the process clock the store reads ahead by d (behind
// when negative) until the test ends. Tests that call it must not run in
// parallel with others of the package.
func SkewClock(t testing.TB, d time.Duration) {
	clock = func() time.Time { return time.Now().Add(d) }
	t.Cleanup(func() { clock = time.Now })
}

// Exec runs q on the writer, beneath the store's methods.
func Exec(ctx context.Context, s *Store, q string, args ...any) error {
	_, err := s.write.ExecContext(ctx, q, args...)
	return err
}

// PurgePlans returns the query plan of every statement the background
// purge runs, by statement; on PostgreSQL planned with sequential scans
// discouraged, so that a plan still scanning a table has no index to use.
func PurgePlans(ctx context.Context, s *Store) (map[string]string, error) {
	stmts := map[string]string{
		"assertions":      purgeAssertionsSQL,
		"log events":      purgeLogEventsSQL,
		"attack counters": pruneAttackSQL[0],
		"attack buckets":  pruneAttackSQL[1],
	}
	refresh := purgeRefreshSQL
	if s.d.name == "postgres" {
		refresh = purgeRefreshPGSQL
	}
	for i, q := range refresh {
		stmts[fmt.Sprintf("refresh tokens %d", i)] = q
	}
	plans := make(map[string]string, len(stmts)+3)
	for name, q := range stmts {
		plan, err := queryPlan(ctx, s, q, int64(1700000000000), 500)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		plans[name] = plan
	}
	users := map[string]string{"deleted connection users": purgeConnectionUsersSQL}
	if s.d.name == "postgres" {
		users["deleted connection users"] = purgeConnectionUsersPGSQL
		users["deleted connection tokens"] = purgeConnectionTokensPGSQL
	}
	for name, q := range users {
		plan, err := queryPlan(ctx, s, q, "contoso", int64(1700000000000), 500)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		plans[name] = plan
	}
	plan, err := queryPlan(ctx, s, fmt.Sprintf(forgetDeletedConnectionSQL, s.d.nowMS), "contoso", int64(1700000000000), 500, deletedConnectionGrace.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("deleted connections: %w", err)
	}
	plans["deleted connections"] = plan
	return plans, nil
}

// DeleteConnectionPlans are the plans of the statements with which
// DeleteConnection deletes the connection's refresh tokens, by statement,
// planned as PurgePlans plans.
func DeleteConnectionPlans(ctx context.Context, s *Store) (map[string]string, error) {
	stmts := map[string]string{"in the deletion": s.deleteConnectionRefreshSQL()}
	if s.d.name == "postgres" {
		stmts["after it"] = s.deleteRefreshSQL("connection = $1")
	}
	plans := make(map[string]string, len(stmts))
	for name, q := range stmts {
		plan, err := queryPlan(ctx, s, q, "contoso")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		plans[name] = plan
	}
	return plans, nil
}

// LogUserNamesPlan is the plan of LogUserNames' query, planned as
// PurgePlans plans.
func LogUserNamesPlan(ctx context.Context, s *Store) (string, error) {
	return queryPlan(ctx, s, s.logUserNamesSQL(), "waad|jo", "sepft", 100)
}

// AddMigration appends a migration of sql after the last one.
func AddMigration(s *Store, sql string) {
	s.migrations = append(s.migrations, migration{version: len(s.migrations) + 1, name: "test", sql: sql})
}

// WriterTempStore is the writer's PRAGMA temp_store: 1 FILE, 2 MEMORY.
func WriterTempStore(ctx context.Context, s *Store) (int, error) {
	var v int
	err := s.write.QueryRowContext(ctx, "PRAGMA temp_store").Scan(&v)
	return v, err
}

// ListPlans are the plans of the count and of the page query of a list
// filtered by f: ListUsers' (a store.UserFilter), ListLogEvents' (a
// store.LogFilter) or ListRefreshTokens' (a store.RefreshTokenFilter),
// planned as PurgePlans plans.
func ListPlans(ctx context.Context, s *Store, f any) (count, page string, err error) {
	var (
		cols, from, order string
		w                 filter
	)
	switch f := f.(type) {
	case store.UserFilter:
		cols, from = userCols, "users"
		if w, order, err = s.userQuery(f); err != nil {
			return "", "", err
		}
	case store.LogFilter:
		cols, from = logCols, "log_events"
		w, order = s.logQuery(f)
	case store.RefreshTokenFilter:
		cols, from, order = refreshCols, "refresh_tokens", refreshOrder
		w = s.refreshQuery(f, now())
	default:
		return "", "", fmt.Errorf("no list filtered by %T", f)
	}
	if count, err = queryPlan(ctx, s, "SELECT COUNT(*) FROM "+from+w.where(), w.args...); err != nil {
		return "", "", err
	}
	q, args := listSQL(cols, from, w, order, store.ListOptions{PerPage: 50})
	page, err = queryPlan(ctx, s, q, args...)
	return count, page, err
}

// queryPlan is q's plan, one line per step; on PostgreSQL planned with
// sequential scans discouraged, so that a plan still scanning a table
// has no index to use.
func queryPlan(ctx context.Context, s *Store, q string, args ...any) (string, error) {
	explain := "EXPLAIN QUERY PLAN "
	if s.d.name == "postgres" {
		explain = "EXPLAIN "
	}
	var plan []string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if s.d.name == "postgres" {
			if _, err := tx.ExecContext(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
				return err
			}
		}
		rows, err := tx.QueryContext(ctx, explain+q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		cols, err := rows.Columns()
		if err != nil {
			return err
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				return err
			}
			plan = append(plan, fmt.Sprint(vals[len(vals)-1]))
		}
		return rows.Err()
	})
	return strings.Join(plan, "\n"), err
}

// CrashOwnerDelete begins the deletion of the owner kind (user, client or
// connection) id as deleteInChunks does, deletes one chunk of its
// refresh tokens, and stops there, as a crash would.
func CrashOwnerDelete(ctx context.Context, s *Store, kind, id string) error {
	_, err := PauseOwnerDelete(ctx, s, kind, id)
	return err
}

// PauseOwnerDelete is CrashOwnerDelete that returns the rest of the
// deletion, to run later, as a deletion that waited for the writer does.
func PauseOwnerDelete(ctx context.Context, s *Store, kind, id string) (resume func() error, err error) {
	p, err := s.beginOwnerPurge(ctx, kind, id)
	if err != nil {
		return nil, err
	}
	if _, err := s.purgeOwnerTokens(ctx, p, purgeChunk); err != nil {
		return nil, err
	}
	return func() error { return s.runOwnerPurge(ctx, p) }, nil
}

// DeleteOwnerInChunks deletes the owner kind id as SQLite does, on
// either backend.
func DeleteOwnerInChunks(ctx context.Context, s *Store, kind, id string) error {
	return s.deleteInChunks(ctx, kind, id)
}
