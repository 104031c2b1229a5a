package sqlstore

import (
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
	clearLoginSQL  = "DELETE FROM attack_counters WHERE identifier = $1 AND connection = $2"
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
// where each commit is a WAL write through the one writer connection. On
// PostgreSQL the statements run on their own, each as atomic as TakeToken
// and TakeAttempt: a transaction would add round trips and hold several
// row locks at once, which a concurrent ClearLogin of the same identifier
// and address may take in the other order (a deadlock). What was taken
// before an error is given back there, as a rollback does on SQLite.
func (s *Store) TakeLogin(ctx context.Context, t store.LoginTake) (store.LoginTaken, error) {
	var (
		out   store.LoginTaken
		token bool
		err   error
	)
	if s.d.name == sqliteDialect.name {
		var stmts map[string]*sql.Stmt
		if stmts, err = s.hotTx(ctx, takeTokenSQL, bucketTatSQL, takeAttemptSQL, returnAttemptSQL); err == nil {
			err = s.inGroupTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
				out, _, err = takeLogin(ctx, hotTx{tx, stmts}, t)
				return err
			})
		}
	} else if out, token, err = takeLogin(ctx, hotDB{s, s.write}, t); err != nil {
		err = errors.Join(err, s.giveBack(context.WithoutCancel(ctx), t, out, token))
	}
	if err != nil {
		return store.LoginTaken{}, s.fail("take login", err)
	}
	return out, nil
}

// takeLogin reports, with an error too, what it holds: the counters in
// Counted and whether it took a token.
func takeLogin(ctx context.Context, q hotQuerier, t store.LoginTake) (out store.LoginTaken, token bool, err error) {
	out.Refused = -1
	out.Counted = make([]bool, len(t.Counters))
	if t.Bucket != "" {
		ok, left, next, err := takeToken(ctx, q, t.Bucket, t.Burst, t.Interval, t.Now)
		if err != nil {
			return out, false, err
		}
		out.Left, out.Next = left, next
		if !ok {
			out.TokenRefused = true
			return out, false, nil
		}
		token = true
	}
	for i, c := range t.Counters {
		ok, err := takeAttempt(ctx, q, c.Counter, c.Limit, t.Now, c.ExpireBefore)
		if err != nil {
			return out, token, err
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
				return out, token, err
			}
			out.Counted[j] = false
		}
		break
	}
	return out, token, nil
}

// giveBack returns what takeLogin held when it failed.
func (s *Store) giveBack(ctx context.Context, t store.LoginTake, out store.LoginTaken, token bool) error {
	q := hotDB{s, s.write}
	var errs []error
	for i, counted := range out.Counted {
		if counted {
			errs = append(errs, returnAttempt(ctx, q, t.Counters[i].Counter))
		}
	}
	if token {
		errs = append(errs, returnToken(ctx, q, t.Bucket, t.Interval))
	}
	return errors.Join(errs...)
}

// clearLoginCTE is ClearLogin as two data-modifying CTEs, for one
// PostgreSQL statement: one round trip and one commit. The same two, in
// the same order, end RecordLogin's statement when it settles a login
// (recordLoginPGSQL), so that both take the counters' and the bucket's row
// locks in one order and cannot deadlock each other. An empty bucket
// matches no row.
const clearLoginCTE = `cleared AS (DELETE FROM attack_counters WHERE identifier = $%[1]d AND connection = $%[2]d),
	returned AS (UPDATE attack_buckets SET tat = tat - $%[4]d WHERE bucket = $%[3]d)`

func clearLoginArgs(c store.LoginClear) []any {
	return []any{c.Identifier, c.Connection, c.Bucket, c.Interval.Milliseconds()}
}

var clearLoginPGSQL = "WITH " + fmt.Sprintf(clearLoginCTE, 1, 2, 3, 4) + " SELECT 1"

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
	if _, err := q.ExecContext(ctx, clearLoginSQL, c.Identifier, c.Connection); err != nil || c.Bucket == "" {
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
	res, err := s.execHot(ctx, s.write, "DELETE FROM attack_counters"+f.where(), f.args...)
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
	if burst < 1 || interval < time.Millisecond {
		return false, 0, time.Time{}, fmt.Errorf("burst %d and interval %v must be positive", burst, interval)
	}
	step := interval.Milliseconds()
	nowMS := now.UnixMilli()
	horizon := nowMS + int64(burst)*step
	var tat int64
	err := q.QueryRowContext(ctx, takeTokenSQL, key, nowMS, nowMS+step, step, horizon).Scan(&tat)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if err := q.QueryRowContext(ctx, bucketTatSQL, key).Scan(&tat); err != nil {
			return false, 0, time.Time{}, err
		}
		return false, 0, fromMS(tat + step - int64(burst)*step), nil
	case err != nil:
		return false, 0, time.Time{}, err
	}
	left := int((horizon - tat) / step)
	return true, left, fromMS(max(tat+step-int64(burst)*step, nowMS)), nil
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

// PutAttackSettings replaces the document name.
func (s *Store) PutAttackSettings(ctx context.Context, name string, doc json.RawMessage) error {
	if len(doc) == 0 || !json.Valid(doc) {
		return s.fail("put attack settings", errors.New("document is not valid JSON"))
	}
	_, err := s.write.ExecContext(ctx,
		`INSERT INTO attack_settings (name, doc, updated_at) VALUES ($1, $2, $3)
		 ON CONFLICT (name) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at`,
		strings.TrimSpace(name), string(doc), now().UnixMilli())
	if err != nil {
		return s.fail("put attack settings", err)
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

// PruneAttack removes idle counters and refilled buckets, a bounded batch
// of each, so that the write lock is held briefly. The two deletes are
// separate statements: neither needs the other, and one transaction
// holding counters while it waits for buckets could deadlock on
// PostgreSQL with a login's settlement, which locks a bucket, then
// counters.
func (s *Store) PruneAttack(ctx context.Context, countersBefore, now time.Time, limit int) (int, error) {
	var n int64
	for i, arg := range []int64{countersBefore.UnixMilli(), now.UnixMilli()} {
		res, err := s.write.ExecContext(ctx, pruneAttackSQL[i], arg, limit)
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
