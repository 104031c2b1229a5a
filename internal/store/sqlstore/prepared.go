package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// prepared keeps the statements of the token endpoint's hot queries on
// SQLite, where parsing and planning a statement costs about as much as
// running a point query, and the connections live as long as the process.
// pgx already caches prepared statements per PostgreSQL connection.
type prepared struct {
	mu sync.Mutex
	m  map[preparedKey]*sql.Stmt
}

type preparedKey struct {
	db *sql.DB
	q  string
}

// stmt returns q prepared on db, or nil where statements are not kept.
// It must not be called inside a transaction on db: preparing takes a
// connection, and SQLite's writer has only the one the transaction holds.
// The lock is not held while preparing, for the same reason.
func (s *Store) stmt(ctx context.Context, db *sql.DB, q string) (*sql.Stmt, error) {
	if s.d.name != sqliteDialect.name {
		return nil, nil
	}
	k := preparedKey{db, q}
	s.prepared.mu.Lock()
	st, ok := s.prepared.m[k]
	s.prepared.mu.Unlock()
	if ok {
		return st, nil
	}
	st, err := db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	s.prepared.mu.Lock()
	defer s.prepared.mu.Unlock()
	if prev, ok := s.prepared.m[k]; ok {
		// Another request prepared it meanwhile.
		return prev, st.Close()
	}
	if s.prepared.m == nil {
		s.prepared.m = map[preparedKey]*sql.Stmt{}
	}
	s.prepared.m[k] = st
	return st, nil
}

// execHot is db.ExecContext through a kept statement.
func (s *Store) execHot(ctx context.Context, db *sql.DB, q string, args ...any) (sql.Result, error) {
	st, err := s.stmt(ctx, db, q)
	switch {
	case err != nil:
		return nil, err
	case st == nil:
		return db.ExecContext(ctx, q, args...)
	}
	return st.ExecContext(ctx, args...)
}

// row is what a single-row query yields.
type row interface{ Scan(dest ...any) error }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// rowHot is db.QueryRowContext through a kept statement.
func (s *Store) rowHot(ctx context.Context, db *sql.DB, q string, args ...any) row {
	st, err := s.stmt(ctx, db, q)
	switch {
	case err != nil:
		return errRow{err}
	case st == nil:
		return db.QueryRowContext(ctx, q, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// closePrepared releases the kept statements before their pools close.
func (s *Store) closePrepared() error {
	s.prepared.mu.Lock()
	defer s.prepared.mu.Unlock()
	var errs []error
	for k, st := range s.prepared.m {
		errs = append(errs, st.Close())
		delete(s.prepared.m, k)
	}
	return errors.Join(errs...)
}

// hotTx runs a write transaction's statements through statements kept
// on the writer, prepared before the transaction began (stmt).
type hotTx struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

// hotTx prepares qs for a transaction about to begin.
func (s *Store) hotTx(ctx context.Context, qs ...string) (map[string]*sql.Stmt, error) {
	m := make(map[string]*sql.Stmt, len(qs))
	for _, q := range qs {
		st, err := s.stmt(ctx, s.write, q)
		if err != nil {
			return nil, err
		}
		if st != nil {
			m[q] = st
		}
	}
	return m, nil
}

func (h hotTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st, ok := h.stmts[q]; ok {
		return h.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return h.tx.ExecContext(ctx, q, args...)
}

func (h hotTx) QueryRowContext(ctx context.Context, q string, args ...any) row {
	if st, ok := h.stmts[q]; ok {
		return h.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return h.tx.QueryRowContext(ctx, q, args...)
}

// hotQuerier runs statements on a pool or in a transaction, through kept
// statements either way.
type hotQuerier interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, q string, args ...any) row
}

// hotDB is a pool as a querier.
type hotDB struct {
	s  *Store
	db *sql.DB
}

func (h hotDB) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return h.s.execHot(ctx, h.db, q, args...)
}

func (h hotDB) QueryRowContext(ctx context.Context, q string, args ...any) row {
	return h.s.rowHot(ctx, h.db, q, args...)
}
