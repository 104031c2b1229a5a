package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

const refreshCols = "id, family_id, secret_hash, client_id, user_id, audience, scope, rotating, created_at, expires_at, idle_expires_at, last_exchanged_at, rotated_at, initial_ip, initial_ua, last_ip, last_ua, connection, tenant_generation"

// refreshScan receives a refresh_tokens row in refreshCols order.
type refreshScan struct {
	rt                       store.RefreshToken
	created                  int64
	exp, idle, last, rotated sql.NullInt64
}

func (r *refreshScan) dest() []any {
	return []any{&r.rt.ID, &r.rt.FamilyID, &r.rt.SecretHash, &r.rt.ClientID, &r.rt.UserID, &r.rt.Audience, &r.rt.Scope, &r.rt.Rotating,
		&r.created, &r.exp, &r.idle, &r.last, &r.rotated, &r.rt.InitialIP, &r.rt.InitialUA, &r.rt.LastIP, &r.rt.LastUA, &r.rt.Connection, &r.rt.TenantGeneration}
}

func (r *refreshScan) token() *store.RefreshToken {
	r.rt.CreatedAt = fromMS(r.created)
	r.rt.ExpiresAt = fromNullMS(r.exp)
	r.rt.IdleExpiresAt = fromNullMS(r.idle)
	r.rt.LastExchangedAt = fromNullMS(r.last)
	r.rt.RotatedAt = fromNullMS(r.rotated)
	return &r.rt
}

func scanRefreshToken(row interface{ Scan(...any) error }) (*store.RefreshToken, error) {
	var r refreshScan
	if err := row.Scan(r.dest()...); err != nil {
		return nil, err
	}
	return r.token(), nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

const insertRefreshSQL = "INSERT INTO refresh_tokens (" + refreshCols + ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"

func insertRefreshToken(ctx context.Context, db execer, rt *store.RefreshToken) error {
	args, created := refreshArgs(rt)
	if _, err := db.ExecContext(ctx, insertRefreshSQL, args...); err != nil {
		return err
	}
	refreshStored(rt, created)
	return nil
}

// refreshArgs are insertRefreshSQL's arguments for rt, and its creation
// time.
func refreshArgs(rt *store.RefreshToken) ([]any, time.Time) {
	family := rt.FamilyID
	if family == "" {
		family = rt.ID
	}
	created, _ := stamps(rt.CreatedAt, rt.CreatedAt)
	return []any{rt.ID, family, rt.SecretHash, rt.ClientID, rt.UserID, rt.Audience, rt.Scope, rt.Rotating,
		created.UnixMilli(), nullMS(rt.ExpiresAt), nullMS(rt.IdleExpiresAt), nullMS(rt.LastExchangedAt), nullMS(rt.RotatedAt),
		rt.InitialIP, rt.InitialUA, rt.LastIP, rt.LastUA, rt.Connection, rt.TenantGeneration}, created
}

// refreshStored records in rt what was written.
func refreshStored(rt *store.RefreshToken, created time.Time) {
	if rt.FamilyID == "" {
		rt.FamilyID = rt.ID
	}
	rt.CreatedAt = created
	rt.ExpiresAt, rt.IdleExpiresAt = msPtr(rt.ExpiresAt), msPtr(rt.IdleExpiresAt)
	rt.LastExchangedAt, rt.RotatedAt = msPtr(rt.LastExchangedAt), msPtr(rt.RotatedAt)
}

func (s *Store) CreateRefreshToken(ctx context.Context, rt *store.RefreshToken) error {
	if err := insertRefreshToken(ctx, s.write, rt); err != nil {
		return s.fail("create refresh token", err)
	}
	return nil
}

// refreshStatements are the statements that read or exchange a token,
// with the condition that no deletion of its owner under way refused it
// (notPurged) on SQLite alone: only there is an owner's deletion done in
// chunks that readers can see (owner_purge.go). PostgreSQL deletes the
// tokens in the owner's transaction, where no reader sees them half gone,
// and the condition would only cost its server a probe per statement.
type refreshStatements struct {
	// get reads a token.
	get string
	// withUser joins on the user in the database: on PostgreSQL a round
	// trip costs more than the join. A token cannot outlive its user (ON
	// DELETE CASCADE), so the inner join loses nothing.
	withUser string
	// usable is the condition of a token that may be exchanged at $2: not
	// expired (a rotated token's own idle expiry no longer counts: it is
	// kept while its family lives, for reuse detection, and rotating it
	// leaves its indexed idle_expires_at alone so that the UPDATE stays a
	// cheap in-place one on PostgreSQL), and either not rotated yet or,
	// with a leeway, rotated within it ($3 = now - leeway) and the
	// family's latest rotated token. Without a leeway $3 is NULL, so that
	// only a token never rotated qualifies: a request reads its clock
	// before it signs its tokens, so a concurrent one that rotated first
	// may carry a later time, and with a leeway that is what the leeway
	// admits. "Latest" follows seq, the order of insertion, not
	// timestamps that other replicas' clocks wrote. The database
	// evaluates it under the row lock of the UPDATE, so of concurrent
	// exchanges of one token only those the leeway allows succeed.
	usable string
	// rotate marks a usable token rotated.
	rotate string
	// family reads the family of a refused token, and whether it was
	// rotated.
	family string
	// reused is whether the token was rotated and is not usable, the
	// condition on which an exchange answers reuse.
	reused string
}

func newRefreshStatements(chunkedDeletes bool) *refreshStatements {
	alive := func(t string) string {
		if chunkedDeletes {
			return " AND " + notPurged(t)
		}
		return ""
	}
	r := &refreshStatements{
		get: "SELECT " + refreshCols + " FROM refresh_tokens WHERE id = $1" + alive("refresh_tokens"),
		withUser: "SELECT t." + strings.ReplaceAll(refreshCols, ", ", ", t.") + ", u." + strings.ReplaceAll(userCols, ", ", ", u.") +
			" FROM refresh_tokens t JOIN users u ON u.user_id = t.user_id WHERE t.id = $1" + alive("t"),
		usable: `(expires_at IS NULL OR expires_at > $2)
	AND (rotated_at IS NOT NULL OR idle_expires_at IS NULL OR idle_expires_at > $2)
	AND (rotated_at IS NULL OR (rotated_at > $3 AND NOT EXISTS (
		SELECT 1 FROM refresh_tokens n WHERE n.family_id = refresh_tokens.family_id
			AND n.seq > refresh_tokens.seq AND n.rotated_at IS NOT NULL)))` + alive("refresh_tokens"),
		family: "SELECT family_id, rotated_at FROM refresh_tokens WHERE id = $1" + alive("refresh_tokens"),
	}
	r.rotate = `UPDATE refresh_tokens SET rotated_at = COALESCE(rotated_at, $2),
	last_exchanged_at = $2, last_ip = $4, last_ua = $5 WHERE id = $1 AND ` + r.usable
	r.reused = `SELECT t.rotated_at IS NOT NULL AND NOT EXISTS (
	SELECT 1 FROM refresh_tokens WHERE id = $1 AND ` + r.usable + `) FROM refresh_tokens t WHERE t.id = $1` + alive("t")
	return r
}

var (
	sqliteRefresh   = newRefreshStatements(true)
	postgresRefresh = newRefreshStatements(false)
)

func (s *Store) refreshSQL() *refreshStatements {
	if s.d.name == sqliteDialect.name {
		return sqliteRefresh
	}
	return postgresRefresh
}

func (s *Store) GetRefreshToken(ctx context.Context, id string) (*store.RefreshToken, error) {
	rt, err := scanRefreshToken(s.rowHot(ctx, s.read, s.refreshSQL().get, id))
	if err != nil {
		return nil, s.fail("get refresh token", err)
	}
	return rt, nil
}

func (s *Store) GetRefreshTokenWithUser(ctx context.Context, id string) (*store.RefreshToken, *store.User, error) {
	var (
		r refreshScan
		u userScan
	)
	if err := s.rowHot(ctx, s.read, s.refreshSQL().withUser, id).Scan(append(r.dest(), u.dest()...)...); err != nil {
		return nil, nil, s.fail("get refresh token with user", err)
	}
	return r.token(), u.user(), nil
}

// rotateRefreshPGSQL is a rotation that succeeds as one statement on
// PostgreSQL: the UPDATE of postgresRefresh.rotate, then the next token's INSERT
// only if it marked a row.
var rotateRefreshPGSQL = `WITH rotated AS (` + postgresRefresh.rotate + ` RETURNING 1)
	INSERT INTO refresh_tokens (` + refreshCols + `) SELECT $6::text, $7::text, $8::bytea, $9::text, $10::text, $11::text,
		$12::text, $13::boolean, $14::bigint, $15::bigint, $16::bigint, $17::bigint, $18::bigint, $19::text, $20::text,
		$21::text, $22::text, $23::text, $24::bigint FROM rotated`

// rotateRefreshLoggedPGSQL is rotateRefreshPGSQL that also stores the
// exchange's log event, only if the next token was inserted.
var rotateRefreshLoggedPGSQL = `WITH rotated AS (` + postgresRefresh.rotate + ` RETURNING 1),
	inserted AS (INSERT INTO refresh_tokens (` + refreshCols + `) SELECT $6::text, $7::text, $8::bytea, $9::text, $10::text,
		$11::text, $12::text, $13::boolean, $14::bigint, $15::bigint, $16::bigint, $17::bigint, $18::bigint, $19::text,
		$20::text, $21::text, $22::text, $23::text, $24::bigint FROM rotated RETURNING 1)
	INSERT INTO log_events (log_id, event_type, logged_at, user_id, doc)
		SELECT $25::text, $26::text, $27::bigint, $28::text, $29::text FROM inserted`

// exchangeTimes are usable's $2 (now, in ms) and $3 (now - leeway, NULL
// without a leeway).
func exchangeTimes(now time.Time, leeway time.Duration) (int64, sql.NullInt64) {
	at := ms(now).UnixMilli()
	return at, sql.NullInt64{Int64: at - leeway.Milliseconds(), Valid: leeway > 0}
}

// sameKindAs matches the tokens of token $1's client, audience, user and
// rotation type, itself included: what a Replace exchange deletes.
const sameKindAs = `(client_id, audience, user_id, rotating) =
	(SELECT client_id, audience, user_id, rotating FROM refresh_tokens WHERE id = $1)`

func (s *Store) ExchangeRefreshToken(ctx context.Context, ex store.RefreshExchange) error {
	at, since := exchangeTimes(ex.Now, ex.Leeway)
	if s.d.name != sqliteDialect.name && ex.Next != nil && !ex.Replace {
		// The common case in one round trip; a refused rotation goes on to
		// the transaction below, which tells reuse from expiry.
		args, created := refreshArgs(ex.Next)
		q, args := rotateRefreshPGSQL, append([]any{ex.ID, at, since, ex.IP, ex.UA}, args...)
		var (
			lr  logRow
			err error
		)
		if ex.Log != nil {
			if lr, err = newLogRow(ex.Log); err != nil {
				return s.fail("exchange refresh token", err)
			}
			q, args = rotateRefreshLoggedPGSQL, append(args, lr.args()...)
		}
		res, err := s.write.ExecContext(ctx, q, args...)
		if err == nil {
			var n int64
			if n, err = res.RowsAffected(); err == nil && n == 1 {
				refreshStored(ex.Next, created)
				if ex.Log != nil {
					lr.stored()
				}
				return nil
			}
		}
		if err != nil {
			return s.fail("exchange refresh token", err)
		}
	}
	var reusedFamily string
	rq := s.refreshSQL()
	stmts, err := s.hotTx(ctx, rq.rotate, insertRefreshSQL, appendLogEventSQL)
	if err != nil {
		return s.fail("exchange refresh token", err)
	}
	err = s.inGroupTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var (
			res sql.Result
			err error
			hot = hotTx{tx, stmts}
		)
		switch {
		case ex.Replace:
			if s.d.name != sqliteDialect.name {
				// The tokens the exchange deletes are locked first, in
				// seq's order as revocations lock them: locked one by one
				// by the UPDATE and then the DELETE, two replacements of
				// one user's tokens, or a replacement and a revocation,
				// each held a token the other waited for, and deadlocked.
				if _, err := tx.ExecContext(ctx, `SELECT seq FROM refresh_tokens WHERE `+sameKindAs+` ORDER BY seq FOR UPDATE`, ex.ID); err != nil {
					return err
				}
			}
			res, err = tx.ExecContext(ctx, `UPDATE refresh_tokens SET last_exchanged_at = $2, last_ip = $4, last_ua = $5
				WHERE id = $1 AND `+rq.usable, ex.ID, at, since, ex.IP, ex.UA)
		case ex.Next != nil:
			res, err = hot.ExecContext(ctx, rq.rotate, ex.ID, at, since, ex.IP, ex.UA)
		default:
			res, err = tx.ExecContext(ctx, `UPDATE refresh_tokens SET idle_expires_at = $6,
				last_exchanged_at = $2, last_ip = $4, last_ua = $5 WHERE id = $1 AND rotated_at IS NULL AND `+rq.usable,
				ex.ID, at, since, ex.IP, ex.UA, nullMS(ex.IdleExpiresAt))
		}
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			if err != nil {
				return err
			}
			if ex.Replace {
				// The row is locked by the UPDATE above: a concurrent
				// exchange of the same token waits, then finds it gone.
				if _, err := tx.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE `+sameKindAs, ex.ID); err != nil {
					return err
				}
			}
			if ex.Next != nil {
				if err := insertRefreshToken(ctx, hot, ex.Next); err != nil {
					return err
				}
			}
			if ex.Log == nil {
				return nil
			}
			return appendLogEvent(ctx, hot, ex.Log)
		}
		// Refused: a token that was rotated is being reused, which means
		// it was copied; the whole family goes, below, outside this
		// transaction, whose failure would otherwise take the deletions
		// back with it. A token that the deletion of its owner refused is
		// gone, not reused.
		var family string
		var rotated sql.NullInt64
		err = tx.QueryRowContext(ctx, rq.family, ex.ID).Scan(&family, &rotated)
		if err != nil {
			return err
		}
		if !rotated.Valid {
			return store.ErrNotFound
		}
		reusedFamily = family
		return nil
	})
	if err != nil {
		return s.fail("exchange refresh token", err)
	}
	if reusedFamily != "" {
		_, err := s.deleteUntilGone(ctx, "family_id", reusedFamily)
		return s.fail("exchange refresh token", errors.Join(store.ErrRefreshTokenReused, err))
	}
	return nil
}

func (s *Store) RefreshTokenReused(ctx context.Context, id string, now time.Time, leeway time.Duration) (bool, error) {
	at, since := exchangeTimes(now, leeway)
	var reused bool
	if err := s.read.QueryRowContext(ctx, s.refreshSQL().reused, id, at, since).Scan(&reused); err != nil {
		return false, s.fail("refresh token reused", err)
	}
	return reused, nil
}

func (s *Store) ListRefreshTokens(ctx context.Context, f store.RefreshTokenFilter, opts store.ListOptions) ([]*store.RefreshToken, int, error) {
	if f.UserID == "" && f.ID == "" {
		return nil, 0, s.fail("list refresh tokens", errors.New("the filter names no user and no token"))
	}
	w := s.refreshQuery(f, now())
	var (
		out   []*store.RefreshToken
		total int
	)
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, total, err = list(ctx, tx, refreshCols, "refresh_tokens", w, refreshOrder, opts,
			func(rows *sql.Rows) (*store.RefreshToken, error) { return scanRefreshToken(rows) })
		return err
	})
	if err != nil {
		return nil, 0, s.fail("list refresh tokens", err)
	}
	return out, total, nil
}

// refreshOrder is the order of ListRefreshTokens.
const refreshOrder = "created_at, seq"

// refreshQuery is the WHERE of f: the tokens it names that can still be
// exchanged at now, and on SQLite that no deletion under way refused
// (refreshStatements). A client only filters the user's tokens (f names a
// user or a token): on SQLite, without statistics, the count would
// otherwise read every token of the client through refresh_tokens_client.
func (s *Store) refreshQuery(f store.RefreshTokenFilter, now time.Time) filter {
	var w filter
	if f.UserID != "" {
		w.eq("user_id", f.UserID)
	}
	if f.ID != "" {
		w.eq("id", f.ID)
	}
	if f.ClientID != "" {
		w.eq(s.d.unindexed("client_id"), f.ClientID)
	}
	if f.Rotating != nil {
		w.eq("rotating", *f.Rotating)
	}
	w.args = append(w.args, now.UnixMilli())
	at := fmt.Sprintf("$%d", len(w.args))
	w.conds = append(w.conds, "rotated_at IS NULL",
		"(expires_at IS NULL OR expires_at > "+at+")", "(idle_expires_at IS NULL OR idle_expires_at > "+at+")")
	if s.d.name == sqliteDialect.name {
		w.conds = append(w.conds, notPurged("refresh_tokens"))
	}
	return w
}

// RevokeRefreshTokenFamily deletes every token of the family.
func (s *Store) RevokeRefreshTokenFamily(ctx context.Context, familyID string) error {
	n, err := s.deleteUntilGone(ctx, "family_id", familyID)
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return s.fail("revoke refresh token", err)
	}
	return nil
}

// RevokeUserRefreshTokens deletes every token of the user.
func (s *Store) RevokeUserRefreshTokens(ctx context.Context, userID string) (int, error) {
	n, err := s.deleteUntilGone(ctx, "user_id", userID)
	if err != nil {
		return n, s.fail("revoke user refresh tokens", err)
	}
	return n, nil
}

// deleteUntilGone deletes the refresh tokens whose column (family_id or
// user_id, never input) is value, and again, until a run finds none. On
// PostgreSQL a DELETE cannot see the token a concurrent rotation inserts
// after the DELETE took its snapshot: it waits for the rotation's lock on
// the old token, deletes that one and misses the new. The next run, with
// a new snapshot, deletes it; a rotation that comes after finds its token
// gone and fails. So the cost of a race falls on the rare revocation, not
// on every rotation, and no lock is held per family (a user may have
// thousands, which would run PostgreSQL's shared lock table out). Should
// rotations keep winning (only calls of the store faster than any client
// over HTTP have done it), the last run locks out writers to the table
// for its one DELETE, so that a revocation always completes. SQLite's one
// writer needs one run.
func (s *Store) deleteUntilGone(ctx context.Context, column, value string) (int, error) {
	del := s.deleteRefreshSQL(column + " = $1")
	total := 0
	run := func(q execer) (int64, error) {
		res, err := q.ExecContext(ctx, del, value)
		if err != nil {
			return 0, err
		}
		n, err := res.RowsAffected()
		total += int(n)
		return n, err
	}
	for i := range maxRevokeRuns {
		n, err := run(s.write)
		// A first run that deleted nothing may have waited for an
		// exchange that replaced the tokens it saw (the client's rotation
		// setting changed): that one deleted them itself and inserted a
		// token this snapshot misses, so a second run looks again.
		if err != nil || (n == 0 && i > 0) || s.d.name == sqliteDialect.name {
			return total, err
		}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// SHARE ROW EXCLUSIVE waits for the writes in flight and holds
		// off new ones; readers go on.
		if _, err := tx.ExecContext(ctx, "LOCK TABLE refresh_tokens IN SHARE ROW EXCLUSIVE MODE"); err != nil {
			return err
		}
		_, err := run(tx)
		return err
	})
	return total, err
}

// deleteRefreshSQL deletes the refresh tokens that match cond, whose one
// argument is $1. On PostgreSQL it locks them in seq order first, as
// every writer of several tokens does (revocations, an exchange's
// replacement, the deletion of a connection, a user or a client): two
// revocations of one family (an administrator's and a reuse, or two
// reuses), or a revocation and a deletion, each locking the rows in
// whatever order its plan met them, deadlocked. An ON DELETE CASCADE
// locks them in its plan's order too, so no writer leaves refresh
// tokens to one.
func (s *Store) deleteRefreshSQL(cond string) string {
	if s.d.name == sqliteDialect.name {
		return "DELETE FROM refresh_tokens WHERE " + cond
	}
	return "DELETE FROM refresh_tokens WHERE seq IN (SELECT seq FROM refresh_tokens WHERE " + cond + " ORDER BY seq FOR UPDATE)"
}

// maxRevokeRuns bounds deleteUntilGone's runs without a lock: each further
// run needs a rotation that raced the previous one.
const maxRevokeRuns = 16

// liveMember is the condition of a token of the family of t that can
// still be exchanged at $1: the family lives while it has one. Rotated
// tokens are not members for this: they are kept only for the others.
const liveMember = `EXISTS (SELECT 1 FROM refresh_tokens n WHERE n.family_id = t.family_id AND n.rotated_at IS NULL
	AND (n.idle_expires_at IS NULL OR n.idle_expires_at > $1) AND (n.expires_at IS NULL OR n.expires_at > $1))`

// purgeRefreshSQL are the steps of one purge batch, each deleting at most
// $2 tokens, in an order that never strands a rotated token: the tokens
// past the family's absolute expiry (shared by the whole family); the
// rotated tokens of families whose last live token idled out; then the
// idled-out tokens themselves, once their family's rotated tokens are
// gone or while another token of the family lives. Each step finds its
// rows through an index (expiry, idle expiry, family).
var purgeRefreshSQL = []string{
	`DELETE FROM refresh_tokens WHERE seq IN (SELECT seq FROM refresh_tokens WHERE expires_at <= $1 LIMIT $2)`,
	`DELETE FROM refresh_tokens WHERE seq IN (
		SELECT r.seq FROM refresh_tokens t JOIN refresh_tokens r ON r.family_id = t.family_id AND r.rotated_at IS NOT NULL
		WHERE t.rotated_at IS NULL AND t.idle_expires_at <= $1 AND NOT ` + liveMember + ` LIMIT $2)`,
	`DELETE FROM refresh_tokens WHERE seq IN (
		SELECT t.seq FROM refresh_tokens t WHERE t.rotated_at IS NULL AND t.idle_expires_at <= $1 AND (` + liveMember + `
			OR NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.family_id = t.family_id AND r.rotated_at IS NOT NULL))
		LIMIT $2)`,
}

// purgeRefreshPGSQL is purgeRefreshSQL for PostgreSQL, where each step
// skips the rows another transaction holds instead of waiting for them:
// revocations, exchanges and the deletion of a connection, a user or a
// client lock tokens in seq order, the purge's plan in whatever order it
// meets them, and a purge that waited could close a deadlock with one of
// them. A skipped row goes in a later batch.
var purgeRefreshPGSQL = []string{
	`DELETE FROM refresh_tokens WHERE seq IN (SELECT seq FROM refresh_tokens WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
	`DELETE FROM refresh_tokens WHERE seq IN (
		SELECT r.seq FROM refresh_tokens t JOIN refresh_tokens r ON r.family_id = t.family_id AND r.rotated_at IS NOT NULL
		WHERE t.rotated_at IS NULL AND t.idle_expires_at <= $1 AND NOT ` + liveMember + ` LIMIT $2 FOR UPDATE OF r SKIP LOCKED)`,
	`DELETE FROM refresh_tokens WHERE seq IN (
		SELECT t.seq FROM refresh_tokens t WHERE t.rotated_at IS NULL AND t.idle_expires_at <= $1 AND (` + liveMember + `
			OR NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.family_id = t.family_id AND r.rotated_at IS NOT NULL))
		LIMIT $2 FOR UPDATE OF t SKIP LOCKED)`,
}

// PurgeExpiredRefreshTokens deletes one bounded batch, so that the write
// lock (SQLite) or the row locks (PostgreSQL) are held only briefly. A
// rotated token is kept until its family is dead: until then its reuse
// must still be detected, and its family revoked by the id of its first
// token.
func (s *Store) PurgeExpiredRefreshTokens(ctx context.Context, at time.Time, limit int) (int, error) {
	total := 0
	stmts := purgeRefreshSQL
	if s.d.name != sqliteDialect.name {
		stmts = purgeRefreshPGSQL
	}
	for _, q := range stmts {
		if total >= limit {
			break
		}
		res, err := s.write.ExecContext(ctx, q, ms(at).UnixMilli(), limit-total)
		n, err := s.count("purge refresh tokens", res, err)
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}
