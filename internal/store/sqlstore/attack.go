package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

const (
	takeAttemptSQL = `INSERT INTO attack_counters (kind, connection, identifier, ip, attempts, updated_at)
		 VALUES ($1, $2, $3, $4, 1, $5)
		 ON CONFLICT (identifier, kind, connection, ip) DO UPDATE SET
		   attempts = CASE WHEN attack_counters.updated_at < $6 THEN 1 ELSE attack_counters.attempts + 1 END,
		   updated_at = excluded.updated_at
		 WHERE attack_counters.updated_at < $6 OR attack_counters.attempts < $7
		 RETURNING attempts`
	returnAttemptSQL = `UPDATE attack_counters SET attempts = attempts - 1
		 WHERE identifier = $1 AND kind = $2 AND connection = $3 AND ip = $4 AND attempts > 0`
	takeTokenSQL = `INSERT INTO attack_buckets (bucket, tat) VALUES ($1, $3)
		 ON CONFLICT (bucket) DO UPDATE SET
		   tat = CASE WHEN attack_buckets.tat > $2 THEN attack_buckets.tat ELSE $2 END + $4
		 WHERE CASE WHEN attack_buckets.tat > $2 THEN attack_buckets.tat ELSE $2 END + $4 <= $5
		 RETURNING tat`
	bucketTatSQL   = "SELECT tat FROM attack_buckets WHERE bucket = $1"
	returnTokenSQL = "UPDATE attack_buckets SET tat = tat - $2 WHERE bucket = $1"
	clearLoginSQL  = "DELETE FROM attack_counters WHERE identifier = $1 AND connection = $2 AND ip IN ($3, '')"
)

// TakeAttempt decides and counts in one statement: the upsert's WHERE
// refuses the update of a full counter, so RETURNING yields no row.
func (s *Store) TakeAttempt(ctx context.Context, c store.AttackCounter, limit int, now, expireBefore time.Time) (bool, error) {
	ok, err := takeAttempt(ctx, hotDB{s, s.write}, c, limit, now, expireBefore)
	if err != nil {
		return false, s.fail("take attempt", err)
	}
	return ok, nil
}

func takeAttempt(ctx context.Context, q hotQuerier, c store.AttackCounter, limit int, now, expireBefore time.Time) (bool, error) {
	var attempts int64
	err := q.QueryRowContext(ctx, takeAttemptSQL,
		c.Kind, c.Connection, c.Identifier, c.IP, now.UnixMilli(), expireBefore.UnixMilli(), int64(limit)).Scan(&attempts)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// ReturnAttempt decrements the counter, never below zero.
func (s *Store) ReturnAttempt(ctx context.Context, c store.AttackCounter) error {
	if err := returnAttempt(ctx, hotDB{s, s.write}, c); err != nil {
		return s.fail("return attempt", err)
	}
	return nil
}

func returnAttempt(ctx context.Context, q hotQuerier, c store.AttackCounter) error {
	_, err := q.ExecContext(ctx, returnAttemptSQL, c.Identifier, c.Kind, c.Connection, c.IP)
	return err
}

// TakeLogin is one atomic job of a group commit on SQLite (group_commit.go),
// where each commit is a WAL write through the one writer connection, and
// one call of gatehouse_take_login on PostgreSQL (migration 7), one
// transaction that locks the bucket, then the counters in key order, as
// every other writer of several of these rows does.
func (s *Store) TakeLogin(ctx context.Context, t store.LoginTake) (store.LoginTaken, error) {
	var (
		out store.LoginTaken
		err error
	)
	for i := 1; i < len(t.Counters) && err == nil; i++ {
		// PostgreSQL's writers lock counters in key order; a take that
		// holds several must too, or two could deadlock.
		if !counterKeyLess(t.Counters[i-1].Counter, t.Counters[i].Counter) {
			err = fmt.Errorf("counters not in key order at %d", i)
		}
	}
	switch {
	case err != nil:
	case s.d.name == sqliteDialect.name:
		var stmts map[string]*sql.Stmt
		if stmts, err = s.hotTx(ctx, takeTokenSQL, bucketTatSQL, takeAttemptSQL, returnAttemptSQL); err == nil {
			err = s.inGroupTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
				out, err = takeLogin(ctx, hotTx{tx, stmts}, t)
				return err
			})
		}
	default:
		out, err = s.takeLoginPG(ctx, t)
	}
	if err != nil {
		return store.LoginTaken{}, s.fail("take login", err)
	}
	return out, nil
}

// takeLoginPGSQL is TakeLogin on PostgreSQL (migration 7): one round trip
// and one commit instead of one per token and counter.
const takeLoginPGSQL = `SELECT o_token_refused, o_tat, o_refused, o_counted
	FROM gatehouse_take_login($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`

// takeLoginUsersPGSQL is takeLoginPGSQL with LoginTake.Users read in the
// same round trip: one row per user found, or one with no user. The
// function runs once: a CTE that calls a volatile function is never
// inlined. A user's columns that cannot be NULL are made empty when no
// user matched, so that userScan reads them; user_id is never empty.
var takeLoginUsersPGSQL = `WITH t AS (SELECT o_token_refused, o_tat, o_refused, o_counted
		FROM gatehouse_take_login($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11))
	SELECT t.o_token_refused, t.o_tat, t.o_refused, t.o_counted,
		COALESCE(u.user_id, ''), COALESCE(u.connection, ''), COALESCE(u.email, ''), u.profile, u.root_attributes,
		u.app_metadata, u.user_metadata, u.idp_tokens_enc, COALESCE(u.blocked, FALSE), COALESCE(u.logins_count, 0),
		u.last_login, COALESCE(u.last_ip, ''), COALESCE(u.created_at, 0), COALESCE(u.updated_at, 0), u.upstream_tenant
	FROM t LEFT JOIN (SELECT ` + userCols + ` FROM users WHERE email_lower = $12 AND connection = $13
		ORDER BY user_id LIMIT ` + fmt.Sprint(store.MaxUsersByEmail) + `) u ON TRUE`

// takeLoginUsersPG runs takeLoginUsersPGSQL, filling out's TokenRefused,
// Refused and Users; it returns the bucket's tat and the counted bits.
func (s *Store) takeLoginUsersPG(ctx context.Context, out *store.LoginTaken, args []any) (tat, counted int64, err error) {
	rows, err := s.write.QueryContext(ctx, takeLoginUsersPGSQL, args...)
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	out.Users = []*store.User{}
	n := 0
	for ; rows.Next(); n++ {
		var u userScan
		if err := rows.Scan(append([]any{&out.TokenRefused, &tat, &out.Refused, &counted}, u.dest()...)...); err != nil {
			return 0, 0, err
		}
		if u.u.UserID != "" {
			out.Users = append(out.Users, u.user())
		}
	}
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	if n == 0 {
		return 0, 0, errors.New("take login: no row")
	}
	return tat, counted, nil
}

func (s *Store) takeLoginPG(ctx context.Context, t store.LoginTake) (store.LoginTaken, error) {
	n := len(t.Counters)
	if n > 63 {
		return store.LoginTaken{}, fmt.Errorf("%d counters: at most 63", n)
	}
	var (
		kinds, connections, identifiers, ips = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		limits, expire                       = make([]int64, n), make([]int64, n)
		block                                = make([]bool, n)
	)
	for i, c := range t.Counters {
		kinds[i], connections[i], identifiers[i], ips[i] = c.Counter.Kind, c.Counter.Connection, c.Counter.Identifier, c.Counter.IP
		limits[i], expire[i], block[i] = int64(c.Limit), c.ExpireBefore.UnixMilli(), c.Block
	}
	var step, burst int64
	if t.Bucket != "" {
		if err := checkBucket(t.Burst, t.Interval); err != nil {
			return store.LoginTaken{}, err
		}
		step, burst = t.Interval.Milliseconds(), int64(t.Burst)
	}
	nowMS := t.Now.UnixMilli()
	var (
		out     = store.LoginTaken{Counted: make([]bool, n)}
		tat     int64
		counted int64
	)
	args := []any{t.Bucket, nowMS, step, burst, kinds, connections, identifiers, ips, limits, expire, block}
	if t.Users == nil {
		err := s.write.QueryRowContext(ctx, takeLoginPGSQL, args...).Scan(&out.TokenRefused, &tat, &out.Refused, &counted)
		if err != nil {
			return store.LoginTaken{}, err
		}
	} else {
		var err error
		if tat, counted, err = s.takeLoginUsersPG(ctx, &out, append(args, t.Users.Email, t.Users.Connection)); err != nil {
			return store.LoginTaken{}, err
		}
	}
	for i := range n {
		out.Counted[i] = counted&(1<<i) != 0
	}
	if t.Bucket != "" {
		_, out.Left, out.Next = bucketAfter(!out.TokenRefused, tat, nowMS, step, burst)
	}
	return out, nil
}

// counterKeyLess orders counters by their key (identifier, kind,
// connection, ip), compared byte by byte, the order PostgreSQL writers
// lock them in: their ORDER BY says COLLATE "C", since the database's
// own collation may sort some addresses and names otherwise.
func counterKeyLess(a, b store.AttackCounter) bool {
	return cmp.Or(strings.Compare(a.Identifier, b.Identifier), strings.Compare(a.Kind, b.Kind),
		strings.Compare(a.Connection, b.Connection), strings.Compare(a.IP, b.IP)) < 0
}

// takeLogin is TakeLogin's statements on SQLite, in the job's
// transaction: a failure rolls back what it took.
func takeLogin(ctx context.Context, q hotQuerier, t store.LoginTake) (out store.LoginTaken, err error) {
	out.Refused = -1
	out.Counted = make([]bool, len(t.Counters))
	if t.Bucket != "" {
		ok, left, next, err := takeToken(ctx, q, t.Bucket, t.Burst, t.Interval, t.Now)
		if err != nil {
			return out, err
		}
		out.Left, out.Next = left, next
		if !ok {
			out.TokenRefused = true
			return out, nil
		}
	}
	for i, c := range t.Counters {
		ok, err := takeAttempt(ctx, q, c.Counter, c.Limit, t.Now, c.ExpireBefore)
		if err != nil {
			return out, err
		}
		out.Counted[i] = ok
		if ok || !c.Block {
			continue
		}
		out.Refused = i
		for j := range i {
			if !out.Counted[j] {
				continue
			}
			if err := returnAttempt(ctx, q, t.Counters[j].Counter); err != nil {
				return out, err
			}
			out.Counted[j] = false
		}
		break
	}
	return out, nil
}

// clearLoginCTE is ClearLogin as two data-modifying CTEs, for one
// PostgreSQL statement: one round trip and one commit. They end
// RecordLogin's statement too when it settles a login (recordLoginPGSQL).
// The token comes back first and the counters are locked in key order
// after it, as gatehouse_take_login (migration 7) locks them: a one-time
// filter on returned makes the counters' SELECT wait for the bucket's
// UPDATE, since PostgreSQL runs independent CTEs in no set order. An
// empty bucket matches no row.
const clearLoginCTE = `returned AS (UPDATE attack_buckets SET tat = tat - $%[4]d WHERE bucket = $%[3]d RETURNING 1),
	cleared AS (DELETE FROM attack_counters WHERE ctid = ANY(ARRAY(
		SELECT ctid FROM attack_counters
		WHERE identifier = $%[1]d AND connection = $%[2]d AND ip IN ($%[5]d, '') AND (SELECT count(*) FROM returned) >= 0
		ORDER BY kind COLLATE "C", ip COLLATE "C" FOR UPDATE)))`

func clearLoginArgs(c store.LoginClear) []any {
	return []any{c.Identifier, c.Connection, c.Bucket, c.Interval.Milliseconds(), c.IP}
}

var clearLoginPGSQL = "WITH " + fmt.Sprintf(clearLoginCTE, 1, 2, 3, 4, 5) + " SELECT 1"

// ClearLogin is one group-commit job on SQLite and one statement on
// PostgreSQL; either leaves nothing half settled that a later login could
// exploit. Only the connection's counters go: a success elsewhere says
// nothing about this connection's account.
func (s *Store) ClearLogin(ctx context.Context, c store.LoginClear) error {
	var err error
	if s.d.name != sqliteDialect.name {
		_, err = s.write.ExecContext(ctx, clearLoginPGSQL, clearLoginArgs(c)...)
	} else {
		var stmts map[string]*sql.Stmt
		if stmts, err = s.hotTx(ctx, clearLoginSQL, returnTokenSQL); err == nil {
			err = s.inGroupTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
				return clearLogin(ctx, hotTx{tx, stmts}, c)
			})
		}
	}
	if err != nil {
		return s.fail("clear login", err)
	}
	return nil
}

// clearLogin is ClearLogin's statements on SQLite, for a job that
// prepared clearLoginSQL and returnTokenSQL.
func clearLogin(ctx context.Context, q hotQuerier, c store.LoginClear) error {
	if _, err := q.ExecContext(ctx, clearLoginSQL, c.Identifier, c.Connection, c.IP); err != nil || c.Bucket == "" {
		return err
	}
	return returnToken(ctx, q, c.Bucket, c.Interval)
}

// ListAttackCounters returns identifier's counters ordered by kind,
// connection and IP.
func (s *Store) ListAttackCounters(ctx context.Context, identifier string, since time.Time) ([]store.AttackCounter, error) {
	rows, err := s.read.QueryContext(ctx,
		`SELECT kind, connection, identifier, ip, attempts, updated_at FROM attack_counters
		 WHERE identifier = $1 AND updated_at >= $2 ORDER BY kind, connection, ip`,
		identifier, since.UnixMilli())
	if err != nil {
		return nil, s.fail("list attack counters", err)
	}
	defer rows.Close()
	out := []store.AttackCounter{}
	for rows.Next() {
		var (
			c       store.AttackCounter
			updated int64
		)
		if err := rows.Scan(&c.Kind, &c.Connection, &c.Identifier, &c.IP, &c.Attempts, &updated); err != nil {
			return nil, s.fail("list attack counters", err)
		}
		c.UpdatedAt = fromMS(updated)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("list attack counters", err)
	}
	return out, nil
}

// DeleteAttackCounters removes identifier's counters of the given kinds,
// or of every kind, on connection or, when it is "", on every connection.
func (s *Store) DeleteAttackCounters(ctx context.Context, connection, identifier string, kinds ...string) (int, error) {
	var f filter
	f.eq("identifier", identifier)
	if connection != "" {
		f.eq("connection", connection)
	}
	if len(kinds) > 0 {
		f.in("kind", kinds)
	}
	// The filter is fixed for a given number of kinds, so the text stays
	// one of a few kept statements.
	q := "DELETE FROM attack_counters" + f.where()
	if s.d.name != sqliteDialect.name {
		// Locked in key order, as gatehouse_take_login locks them.
		q = "DELETE FROM attack_counters WHERE ctid = ANY(ARRAY(SELECT ctid FROM attack_counters" + f.where() +
			` ORDER BY identifier COLLATE "C", kind COLLATE "C", connection COLLATE "C", ip COLLATE "C" FOR UPDATE))`
	}
	res, err := s.execHot(ctx, s.write, q, f.args...)
	return s.count("delete attack counters", res, err)
}

// TakeToken is the generic cell rate algorithm: the bucket keeps one
// timestamp, tat, that advances by interval per token taken and may run
// at most burst intervals ahead of now. Deciding and taking is one
// statement.
func (s *Store) TakeToken(ctx context.Context, key string, burst int, interval time.Duration, now time.Time) (bool, int, time.Time, error) {
	ok, left, next, err := takeToken(ctx, hotDB{s, s.write}, key, burst, interval, now)
	if err != nil {
		return false, 0, time.Time{}, s.fail("take token", err)
	}
	return ok, left, next, nil
}

func takeToken(ctx context.Context, q hotQuerier, key string, burst int, interval time.Duration, now time.Time) (bool, int, time.Time, error) {
	if err := checkBucket(burst, interval); err != nil {
		return false, 0, time.Time{}, err
	}
	step := interval.Milliseconds()
	nowMS := now.UnixMilli()
	var tat int64
	err := q.QueryRowContext(ctx, takeTokenSQL, key, nowMS, nowMS+step, step, nowMS+int64(burst)*step).Scan(&tat)
	ok := err == nil
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if err := q.QueryRowContext(ctx, bucketTatSQL, key).Scan(&tat); err != nil {
			return false, 0, time.Time{}, err
		}
	case err != nil:
		return false, 0, time.Time{}, err
	}
	ok, left, next := bucketAfter(ok, tat, nowMS, step, int64(burst))
	return ok, left, next, nil
}

func checkBucket(burst int, interval time.Duration) error {
	if burst < 1 || interval < time.Millisecond {
		return fmt.Errorf("burst %d and interval %v must be positive", burst, interval)
	}
	return nil
}

// bucketAfter is what a take that got (ok) or was refused a token leaves
// of a bucket whose tat is now tat: the tokens left and when the next
// comes.
func bucketAfter(ok bool, tat, nowMS, step, burst int64) (bool, int, time.Time) {
	if !ok {
		return false, 0, fromMS(tat + step - burst*step)
	}
	return true, int((nowMS + burst*step - tat) / step), fromMS(max(tat+step-burst*step, nowMS))
}

// ReturnToken moves the bucket's tat back by one interval.
func (s *Store) ReturnToken(ctx context.Context, key string, interval time.Duration) error {
	if err := returnToken(ctx, hotDB{s, s.write}, key, interval); err != nil {
		return s.fail("return token", err)
	}
	return nil
}

func returnToken(ctx context.Context, q hotQuerier, key string, interval time.Duration) error {
	_, err := q.ExecContext(ctx, returnTokenSQL, key, interval.Milliseconds())
	return err
}

// AttackBucket reads the bucket's tat, the zero time for no bucket.
func (s *Store) AttackBucket(ctx context.Context, key string) (time.Time, error) {
	var tat int64
	err := s.rowHot(ctx, s.read, bucketTatSQL, key).Scan(&tat)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, s.fail("attack bucket", err)
	}
	return fromMS(tat), nil
}

// DeleteAttackBucket deletes the bucket, the same as a full one. A single
// row: it needs no lock order.
func (s *Store) DeleteAttackBucket(ctx context.Context, key string) (bool, error) {
	res, err := s.write.ExecContext(ctx, "DELETE FROM attack_buckets WHERE bucket = $1", key)
	n, err := s.count("delete attack bucket", res, err)
	return n > 0, err
}

// GetAttackSettings returns nil for a document never stored.
func (s *Store) GetAttackSettings(ctx context.Context, name string) (json.RawMessage, error) {
	var doc string
	err := s.rowHot(ctx, s.read, "SELECT doc FROM attack_settings WHERE name = $1", name).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, s.fail("get attack settings", err)
	}
	return json.RawMessage(doc), nil
}

// PutAttackSettings writes only over the document read, compared as
// stored: a document that changed and changed back is the one read, and
// what was derived from it still holds.
func (s *Store) PutAttackSettings(ctx context.Context, name string, read, doc json.RawMessage) error {
	if len(doc) == 0 || !json.Valid(doc) {
		return s.fail("put attack settings", errors.New("document is not valid JSON"))
	}
	var (
		res sql.Result
		err error
	)
	if read == nil {
		res, err = s.write.ExecContext(ctx,
			"INSERT INTO attack_settings (name, doc, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
			strings.TrimSpace(name), string(doc), now().UnixMilli())
	} else {
		res, err = s.write.ExecContext(ctx,
			"UPDATE attack_settings SET doc = $2, updated_at = $3 WHERE name = $1 AND doc = $4",
			strings.TrimSpace(name), string(doc), now().UnixMilli(), string(read))
	}
	n, err := s.count("put attack settings", res, err)
	if err != nil {
		return err
	}
	if n == 0 {
		return s.fail("put attack settings", store.ErrConflict)
	}
	return nil
}

// pruneAttackSQL delete at most $2 counters idle since $1, then at most
// $2 buckets refilled by $1. Each finds its rows through an index on the
// time (migration 6), so that a batch never scans the table while it holds
// the write lock.
var pruneAttackSQL = [2]string{
	`DELETE FROM attack_counters WHERE (identifier, kind, connection, ip) IN
		(SELECT identifier, kind, connection, ip FROM attack_counters WHERE updated_at < $1 LIMIT $2)`,
	`DELETE FROM attack_buckets WHERE bucket IN
		(SELECT bucket FROM attack_buckets WHERE tat <= $1 LIMIT $2)`,
}

// pruneAttackPGSQL is pruneAttackSQL for PostgreSQL, where the purge
// skips the rows a login holds instead of waiting for them while it holds
// others: it can then never be part of a deadlock.
var pruneAttackPGSQL = [2]string{
	`DELETE FROM attack_counters WHERE ctid = ANY(ARRAY(
		SELECT ctid FROM attack_counters WHERE updated_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED))`,
	`DELETE FROM attack_buckets WHERE ctid = ANY(ARRAY(
		SELECT ctid FROM attack_buckets WHERE tat <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED))`,
}

// PruneAttack removes idle counters and refilled buckets, a bounded batch
// of each, so that the write lock is held briefly. The two deletes are
// separate statements: neither needs the other, and one transaction
// holding counters while it waits for buckets could deadlock on
// PostgreSQL with a login's settlement, which locks a bucket, then
// counters.
func (s *Store) PruneAttack(ctx context.Context, countersBefore, now time.Time, limit int) (int, error) {
	var n int64
	stmts := pruneAttackSQL
	if s.d.name != sqliteDialect.name {
		stmts = pruneAttackPGSQL
	}
	for i, arg := range []int64{countersBefore.UnixMilli(), now.UnixMilli()} {
		res, err := s.write.ExecContext(ctx, stmts[i], arg, limit)
		if err != nil {
			return int(n), s.fail("prune attack", err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return int(n), s.fail("prune attack", err)
		}
		n += k
	}
	return int(n), nil
}
