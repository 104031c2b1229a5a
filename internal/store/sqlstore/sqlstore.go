package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gatehouse/gatehouse/internal/store"
)

// defaultPerPage is the page size when ListOptions.PerPage is 0.
const defaultPerPage = 50

// sqliteBusyTimeout bounds how long a statement waits for another process
// holding the file's write lock; within one process writes never contend.
const sqliteBusyTimeout = 10 * time.Second

// Advisory lock classes (PostgreSQL); the object id is derived from the
// schema so that separate schemas in one database do not serialize.
const (
	lockMigrate     = 0x6761_7401
	lockSigningKeys = 0x6761_7402
)

// dialect holds what differs between the backends.
type dialect struct {
	name string
	// lockSQL takes a transaction-scoped lock on its $1 class; empty when
	// the backend's write transactions are already serialized.
	lockSQL string
	// tableExistsSQL reports whether the table named $1 exists in the
	// schema the connection uses.
	tableExistsSQL string
	// readIsolation gives a read transaction one snapshot for all its
	// statements (SQLite transactions always have one).
	readIsolation sql.IsolationLevel
	// byteOrder is the collation that orders text by its bytes, as
	// SQLite's default does; a PostgreSQL database's default collation
	// is its locale's, which orders some text otherwise.
	byteOrder string
	// nowMS is the database's clock in unix milliseconds, for times that
	// replicas compare with one another's: each replica's own clock may
	// be off.
	nowMS        string
	isUnique     func(error) bool
	isForeignKey func(error) bool
}

var sqliteDialect = dialect{
	name:           "sqlite",
	tableExistsSQL: "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = $1",
	byteOrder:      "BINARY",
	nowMS:          "CAST(unixepoch('subsec') * 1000 AS INTEGER)",
	isUnique: func(err error) bool {
		code := sqliteCode(err)
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	},
	isForeignKey: func(err error) bool { return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY },
}

var postgresDialect = dialect{
	name:           "postgres",
	lockSQL:        "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))",
	readIsolation:  sql.LevelRepeatableRead,
	tableExistsSQL: "SELECT to_regclass($1) IS NOT NULL",
	byteOrder:      `"C"`,
	nowMS:          "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT",
	isUnique:       func(err error) bool { return pgCode(err) == "23505" },
	isForeignKey:   func(err error) bool { return pgCode(err) == "23503" },
}

func sqliteCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Store is a store.Store on SQLite or PostgreSQL. It is safe for concurrent
// use.
type Store struct {
	d           dialect
	write       *sql.DB // every write and every transaction
	read        *sql.DB // plain reads; the same pool as write on PostgreSQL
	logger      *slog.Logger
	migrations  []migration
	prepared    prepared
	group       *batcher[*groupJob]  // SQLite only
	checkpoints *checkpointer        // SQLite only
	logBatch    *batcher[*logAppend] // PostgreSQL only
	listenCfg   *pgx.ConnConfig      // PostgreSQL only: for Listen
}

var _ store.Store = (*Store)(nil)

// Open connects to the database named by dsn, without migrating it:
//
//	sqlite:<path>              a file, created when missing
//	postgres://... or postgresql://...  a pgx connection URL
//
// An in-memory SQLite database is refused: the reader and writer pools
// would each see a different one.
func Open(ctx context.Context, dsn string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var (
		s   *Store
		err error
	)
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		s, err = openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"), logger)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		s, err = openPostgres(ctx, dsn)
	default:
		// The DSN may hold a password: name only its scheme.
		scheme, _, _ := strings.Cut(dsn, ":")
		return nil, fmt.Errorf("sqlstore: open: unsupported database %q: want sqlite:<path> or postgres://", scheme)
	}
	if err != nil {
		return nil, err
	}
	s.logger = logger
	if s.migrations, err = loadMigrations(s.d.name); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func openSQLite(ctx context.Context, path string, logger *slog.Logger) (*Store, error) {
	if path == "" || path == ":memory:" || strings.Contains(path, "mode=memory") {
		return nil, errors.New("sqlstore: open: sqlite needs a file path (in-memory databases are not supported)")
	}
	if err := createPrivate(ctx, path, logger); err != nil {
		return nil, err
	}
	// A file: URI so that SQLite applies its own parameters; escape what
	// would end the path.
	uri := "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	common := url.Values{}
	common.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
	common.Add("_pragma", "foreign_keys(1)")
	common.Add("_pragma", "synchronous(NORMAL)")

	// The writer is opened and pinged first: it creates the file and
	// switches it to WAL, which the readers rely on.
	wq := url.Values{"_txlock": {"immediate"}}
	wq.Add("_pragma", "journal_mode(WAL)")
	// Checkpoints run on a connection of their own (checkpoint.go).
	wq.Add("_pragma", "wal_autocheckpoint(0)")
	// Each job of a group commit runs in a savepoint, whose journal of
	// the pages it changes spilled to a temporary file past 64 KiB: a
	// pwrite per page, about a quarter of a batch's write calls. In memory
	// it holds a copy of each page a job changes, a few pages for the
	// token endpoint's jobs. Sorts on this connection no longer spill to
	// disk either, so Migrate, whose CREATE INDEX may sort a whole table,
	// switches back to files while it runs.
	wq.Add("_pragma", "temp_store(MEMORY)")
	for _, p := range common["_pragma"] {
		wq.Add("_pragma", p)
	}
	write, err := sql.Open("sqlite", uri+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
	}
	// One connection: in-process writers queue in database/sql rather
	// than in SQLite's busy handler, and a transaction never waits on
	// another connection of its own process, so nothing can deadlock.
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
	}

	rq := url.Values{"_query_only": {"1"}}
	for _, p := range common["_pragma"] {
		rq.Add("_pragma", p)
	}
	read, err := sql.Open("sqlite", uri+"?"+rq.Encode())
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
	}
	n := max(4, runtime.NumCPU())
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	if err := read.PingContext(ctx); err != nil {
		read.Close()
		write.Close()
		return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
	}
	ckpt, err := sql.Open("sqlite", uri+"?"+common.Encode())
	if err != nil {
		read.Close()
		write.Close()
		return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
	}
	ckpt.SetMaxOpenConns(1)
	s := &Store{d: sqliteDialect, write: write, read: read}
	s.checkpoints = startCheckpointer(ckpt, logger, checkpointEvery, walFullFrames)
	s.startGroupCommit()
	return s, nil
}

// createPrivate creates the database file readable by its owner only,
// before SQLite opens it: SQLite would create it 0644 under the usual
// umask, and gives its -wal and -shm files the main file's mode, so any
// local account could read user profiles and tenant logs. An existing
// file's mode is the operator's: one that group or others may read is
// reported, not changed.
func createPrivate(ctx context.Context, path string, logger *slog.Logger) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return fmt.Errorf("sqlstore: create sqlite: %w", err)
		}
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("sqlstore: create sqlite: %w", err)
	}
	// Windows reports synthetic permission bits; ACLs protect the files there.
	if runtime.GOOS == "windows" {
		return nil
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o077 != 0 {
			logger.WarnContext(ctx, "the database file may be read by other local accounts: it holds user profiles and tenant logs; restrict it with chmod 600 (the -wal and -shm files follow the main file's mode)",
				"path", p, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
		}
	}
	return nil
}

func openPostgres(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx redacts the password in its parse errors.
		return nil, fmt.Errorf("sqlstore: open postgres: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	// As many idle as open: with fewer, a busy server closes connections
	// it needs again a moment later, and each new one costs PostgreSQL a
	// process fork and authentication (measured: 40% of its CPU on the
	// refresh-token benchmark). ConnMaxIdleTime shrinks the pool when quiet.
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(20)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(time.Hour)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlstore: open postgres: %w", err)
	}
	s := &Store{d: postgresDialect, write: db, read: db, listenCfg: cfg}
	s.startLogBatches()
	return s, nil
}

// Backend names the database behind the store: "sqlite" or "postgres".
func (s *Store) Backend() string { return s.d.name }

// Ping reports whether the database is reachable, takes writes, and is
// migrated to the latest version this binary knows.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.write.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlstore: ping: %w", err)
	}
	if s.read != s.write {
		if err := s.read.PingContext(ctx); err != nil {
			return fmt.Errorf("sqlstore: ping: %w", err)
		}
	}
	if s.d.name == postgresDialect.name {
		// A standby, or a primary made read-only, answers every read and
		// refuses every login's writes: after a failover that DNS or a
		// pooler has not followed yet, say.
		var readOnly bool
		if err := s.write.QueryRowContext(ctx, "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'").Scan(&readOnly); err != nil {
			return fmt.Errorf("sqlstore: ping: %w", err)
		}
		if readOnly {
			return errors.New("sqlstore: ping: the database is read-only (a standby, or default_transaction_read_only is on)")
		}
	}
	cur, err := s.CurrentVersion(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: ping: %w", err)
	}
	switch latest := s.LatestVersion(); {
	case cur < latest:
		return fmt.Errorf("sqlstore: ping: database schema is at version %d, want %d: run migrations (gatehouse migrate)", cur, latest)
	case cur > latest:
		return fmt.Errorf("sqlstore: ping: %w", newerSchema(cur, latest))
	}
	return nil
}

// Close releases both pools.
func (s *Store) Close() error {
	s.stopGroupCommit()
	s.stopLogBatches()
	err := s.closePrepared()
	if s.checkpoints != nil {
		err = errors.Join(err, s.checkpoints.close())
	}
	if s.read != s.write {
		err = errors.Join(err, s.read.Close())
	}
	return errors.Join(err, s.write.Close())
}

// inTx runs fn in a write transaction: IMMEDIATE on SQLite, READ COMMITTED
// on PostgreSQL.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, rollback(tx))
	}
	return tx.Commit()
}

// inReadTx runs fn in a read-only transaction on the read pool, so that
// the statements of one listing see the same data.
func (s *Store) inReadTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: s.d.readIsolation})
	if err != nil {
		return err
	}
	err = fn(tx)
	return errors.Join(err, rollback(tx))
}

func rollback(tx *sql.Tx) error {
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return err
	}
	return nil
}

// lock takes the dialect's transaction-scoped lock of the given class.
func (s *Store) lock(ctx context.Context, tx *sql.Tx, class int32) error {
	if s.d.lockSQL == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, s.d.lockSQL, class)
	return err
}

// fail wraps err for the operation op, turning driver errors a caller
// branches on into the store's sentinels. The driver's message is dropped
// for those, so that no stored value leaks into an error.
func (s *Store) fail(op string, err error) error {
	switch {
	case errors.Is(err, sql.ErrNoRows):
		err = store.ErrNotFound
	case s.d.isUnique(err):
		err = store.ErrConflict
	case s.d.isForeignKey(err):
		err = store.ErrNotFound
	}
	return fmt.Errorf("sqlstore: %s: %w", op, err)
}

// count is how many rows a statement changed, for the stores that report
// it; op names the operation in its error.
func (s *Store) count(op string, res sql.Result, err error) (int, error) {
	var n int64
	if err == nil {
		n, err = res.RowsAffected()
	}
	if err != nil {
		return 0, s.fail(op, err)
	}
	return int(n), nil
}

// affected turns an update or delete that touched no row into ErrNotFound.
func affected(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// page turns opts into LIMIT and OFFSET.
func page(opts store.ListOptions) (limit, offset int) {
	limit = opts.PerPage
	if limit <= 0 {
		limit = defaultPerPage
	}
	if opts.Offset > 0 {
		return limit, opts.Offset
	}
	return limit, max(opts.Page, 0) * limit
}

// filter builds a WHERE clause with numbered placeholders.
type filter struct {
	conds []string
	args  []any
}

func (f *filter) eq(col string, v any) {
	f.args = append(f.args, v)
	f.conds = append(f.conds, fmt.Sprintf("%s = $%d", col, len(f.args)))
}

// unindexed is col in a term that no index may serve: SQLite's unary +,
// which keeps its planner on the index of a more selective term when it
// has no statistics (no ANALYZE) to tell which one is. PostgreSQL's
// planner has them.
func (d dialect) unindexed(col string) string {
	if d.name == sqliteDialect.name {
		return "+" + col
	}
	return col
}

func (f *filter) in(col string, vs []string) {
	ph := make([]string, len(vs))
	for i, v := range vs {
		f.args = append(f.args, v)
		ph[i] = fmt.Sprintf("$%d", len(f.args))
	}
	f.conds = append(f.conds, fmt.Sprintf("%s IN (%s)", col, strings.Join(ph, ", ")))
}

func (f *filter) where() string {
	if len(f.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(f.conds, " AND ")
}

// list runs a count and a page query sharing f, and scans each row with
// scan.
// listSQL is list's query of one page and its arguments.
func listSQL(cols, from string, f filter, order string, opts store.ListOptions) (string, []any) {
	limit, offset := page(opts)
	args := append(slices.Clip(f.args), limit, offset)
	return fmt.Sprintf("SELECT %s FROM %s%s ORDER BY %s LIMIT $%d OFFSET $%d", cols, from, f.where(), order, len(args)-1, len(args)), args
}

func list[T any](ctx context.Context, tx *sql.Tx, cols, from string, f filter, order string, opts store.ListOptions, scan func(*sql.Rows) (T, error)) ([]T, int, error) {
	var total int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+from+f.where(), f.args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	q, args := listSQL(cols, from, f, order, opts)
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, v)
	}
	return out, total, rows.Err()
}

// Timestamps are stored as unix milliseconds; ms normalizes a time to what
// a round trip returns.
func ms(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func nullMS(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMilli()
}

// nullString stores "" as NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func fromNullMS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMS(v.Int64)
	return &t
}

func msPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := ms(*t)
	return &v
}

// stamps returns the creation and update times of a new row: now unless
// the caller set them (an import keeps its history).
func stamps(created, updated time.Time) (time.Time, time.Time) {
	if created.IsZero() {
		created = now()
	}
	if updated.IsZero() {
		updated = created
	}
	return ms(created), ms(updated)
}

// clock is the process's clock; tests skew it (SkewClock).
var clock = time.Now

// now is the current time as a round trip returns it.
func now() time.Time { return ms(clock()) }

// blob stores an empty byte slice as NULL, so that both drivers return nil.
func blob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func fromBlob(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// rawJSON stores a raw JSON document verbatim, or NULL when empty.
func rawJSON(field string, raw json.RawMessage) (any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	if !json.Valid(raw) {
		return nil, fmt.Errorf("%s is not valid JSON", field)
	}
	return string(raw), nil
}

func fromRawJSON(v sql.NullString) json.RawMessage {
	if !v.Valid {
		return nil
	}
	return json.RawMessage(v.String)
}

// marshalDoc encodes a row's JSON column without HTML escaping, so that
// raw JSON inside it comes back as written.
func marshalDoc(v any) (string, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}
