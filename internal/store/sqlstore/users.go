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

const userCols = "user_id, connection, email, profile, root_attributes, app_metadata, user_metadata, idp_tokens_enc, blocked, logins_count, last_login, last_ip, created_at, updated_at, upstream_tenant"

// userScan receives a users row in userCols order.
type userScan struct {
	u                          store.User
	profile, root, app, userMD sql.NullString
	tenant                     sql.NullString
	lastLogin                  sql.NullInt64
	created, updated           int64
}

func (r *userScan) dest() []any {
	return []any{&r.u.UserID, &r.u.Connection, &r.u.Email, &r.profile, &r.root, &r.app, &r.userMD, &r.u.IdPTokensEnc, &r.u.Blocked,
		&r.u.LoginsCount, &r.lastLogin, &r.u.LastIP, &r.created, &r.updated, &r.tenant}
}

func (r *userScan) user() *store.User {
	r.u.Profile = fromRawJSON(r.profile)
	r.u.RootAttributes = fromRawJSON(r.root)
	r.u.AppMetadata = fromRawJSON(r.app)
	r.u.UserMetadata = fromRawJSON(r.userMD)
	r.u.IdPTokensEnc = fromBlob(r.u.IdPTokensEnc)
	r.u.LastLogin = fromNullMS(r.lastLogin)
	r.u.CreatedAt = fromMS(r.created)
	r.u.UpdatedAt = fromMS(r.updated)
	r.u.UpstreamTenant = r.tenant.String
	return &r.u
}

func scanUser(row interface{ Scan(...any) error }) (*store.User, error) {
	var r userScan
	if err := row.Scan(r.dest()...); err != nil {
		return nil, err
	}
	return r.user(), nil
}

// userDocs are a user's JSON columns as arguments: profile,
// root_attributes, app_metadata, user_metadata.
func userDocs(u *store.User) ([]any, error) {
	docs := make([]any, 4)
	for i, f := range []struct {
		name string
		raw  []byte
	}{{"profile", u.Profile}, {"root_attributes", u.RootAttributes}, {"app_metadata", u.AppMetadata}, {"user_metadata", u.UserMetadata}} {
		var err error
		if docs[i], err = rawJSON(f.name, f.raw); err != nil {
			return nil, err
		}
	}
	return docs, nil
}

// UpsertUser inserts u unless its UserID exists, then updates it. Insert
// first: ON CONFLICT DO NOTHING settles a race between two creators in the
// database, where update-then-insert would fail one of them.
func (s *Store) UpsertUser(ctx context.Context, u *store.User) (bool, error) {
	docs, err := userDocs(u)
	if err != nil {
		return false, s.fail("upsert user", err)
	}
	created, updated := stamps(u.CreatedAt, u.UpdatedAt)
	var inserted bool
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			"INSERT INTO users ("+userCols+", email_lower) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT (user_id) DO NOTHING",
			u.UserID, u.Connection, u.Email, docs[0], docs[1], docs[2], docs[3], blob(u.IdPTokensEnc), u.Blocked, u.LoginsCount,
			nullMS(u.LastLogin), u.LastIP, created.UnixMilli(), updated.UnixMilli(), nullString(u.UpstreamTenant), strings.ToLower(u.Email))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n == 1 {
			inserted = n == 1
			return err
		}
		var c int64
		updated = now()
		if err := tx.QueryRowContext(ctx, replaceUserSQL, u.UserID, u.Connection, u.Email, strings.ToLower(u.Email),
			docs[0], docs[1], docs[2], docs[3], blob(u.IdPTokensEnc), u.Blocked, u.LoginsCount,
			nullMS(u.LastLogin), u.LastIP, updated.UnixMilli(), nullString(u.UpstreamTenant)).Scan(&c); err != nil {
			return err
		}
		created = fromMS(c)
		return nil
	})
	if err != nil {
		return false, s.fail("upsert user", err)
	}
	u.CreatedAt, u.UpdatedAt, u.LastLogin = created, updated, msPtr(u.LastLogin)
	return inserted, nil
}

// replaceUserSQL replaces every field of the user but UserID and
// CreatedAt, returning created_at.
const replaceUserSQL = `UPDATE users SET connection = $2, email = $3, email_lower = $4, profile = $5, root_attributes = $6,
	app_metadata = $7, user_metadata = $8, idp_tokens_enc = $9, blocked = $10, logins_count = $11, last_login = $12,
	last_ip = $13, updated_at = $14, upstream_tenant = $15
	WHERE user_id = $1 RETURNING created_at`

func (s *Store) GetUser(ctx context.Context, userID string) (*store.User, error) {
	u, err := scanUser(s.rowHot(ctx, s.read, "SELECT "+userCols+" FROM users WHERE user_id = $1", userID))
	if err != nil {
		return nil, s.fail("get user", err)
	}
	return u, nil
}

// likeEscaper makes a string match itself in a LIKE pattern with
// ESCAPE '\'.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// ListUsers matches Email case-insensitively (lowercased in Go on both
// sides, since SQLite's lower() folds ASCII only), a prefix as userQuery
// says, and Connection exactly.
func (s *Store) ListUsers(ctx context.Context, f store.UserFilter, opts store.ListOptions) ([]*store.User, int, error) {
	w, order, err := s.userQuery(f)
	if err != nil {
		return nil, 0, s.fail("list users", err)
	}
	var (
		us    []*store.User
		total int
	)
	err = s.inReadTx(ctx, func(tx *sql.Tx) (err error) {
		us, total, err = list(ctx, tx, userCols, "users", w, order, opts,
			func(r *sql.Rows) (*store.User, error) { return scanUser(r) })
		return err
	})
	if err != nil {
		return nil, 0, s.fail("list users", err)
	}
	return us, total, nil
}

// userQuery is the WHERE and ORDER BY of f. An email is found through
// users_email, a few users per address. A prefix is a range of that
// index: PostgreSQL's planner makes one of a LIKE on the byte-ordered
// column (migration 9); SQLite's LIKE ignores ASCII case and so never
// uses a BINARY index, so there the range is written out: the addresses
// from the prefix up to its byte-wise successor are exactly those that
// begin with it, as LIKE matched them on the lower-cased column. On
// SQLite the connection then only filters: without statistics (nothing
// runs ANALYZE) its planner prefers the equality on users_connection to
// the email's range and even to its equality, and reads every user of
// the connection. PostgreSQL's planner weighs them by its statistics.
func (s *Store) userQuery(f store.UserFilter) (filter, string, error) {
	var w filter
	email := strings.ToLower(f.Email)
	switch {
	case email == "":
	case f.EmailPrefix && s.d.name == sqliteDialect.name:
		w.args = append(w.args, email)
		cond := fmt.Sprintf("email_lower >= $%d", len(w.args))
		if end, ok := prefixEnd(email); ok {
			w.args = append(w.args, end)
			cond += fmt.Sprintf(" AND email_lower < $%d", len(w.args))
		}
		w.conds = append(w.conds, cond)
	case f.EmailPrefix:
		w.args = append(w.args, likeEscaper.Replace(email)+"%")
		w.conds = append(w.conds, fmt.Sprintf(`email_lower LIKE $%d ESCAPE '\'`, len(w.args)))
	default:
		w.eq("email_lower", email)
	}
	if f.Connection != "" {
		col := "connection"
		if email != "" {
			col = s.d.unindexed(col)
		}
		w.eq(col, f.Connection)
	}
	order, err := userOrder(f, s.d)
	return w, order, err
}

// prefixEnd is the least string above every string that begins with p,
// comparing bytes; false when there is none (p is empty or all 0xFF).
// It may not be valid UTF-8, which SQLite's BINARY comparison ignores.
func prefixEnd(p string) (string, bool) {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xFF {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// userSortColumns are the columns of store.UserSortFields.
var userSortColumns = map[string]string{"created_at": "created_at", "updated_at": "updated_at", "last_login": "last_login",
	"logins_count": "logins_count", "email": "email_lower"}

// userOrder is the ORDER BY of f. NULLs are put last explicitly, since
// SQLite puts them first in ascending order and PostgreSQL last; seq
// breaks ties so that offset pages neither repeat nor skip a user.
// Addresses sort by their bytes on both backends: in the collation of a
// PostgreSQL database's locale (en_US, ...) "a_b@" would sort before
// "a-b@", which comes first on SQLite.
func userOrder(f store.UserFilter, d dialect) (string, error) {
	if f.SortBy == "" || (f.SortBy == "created_at" && !f.SortDesc) {
		return "created_at, seq", nil
	}
	col, ok := userSortColumns[f.SortBy]
	if !ok {
		return "", fmt.Errorf("no sort by %q", f.SortBy)
	}
	dir := ""
	if f.SortDesc {
		dir = " DESC"
	}
	if f.SortBy == "email" {
		// Never NULL; without the IS NULL key PostgreSQL reads the
		// index (migration 9) in order instead of sorting every user.
		return fmt.Sprintf("%s COLLATE %s%s, seq%s", col, d.byteOrder, dir, dir), nil
	}
	return fmt.Sprintf("%s IS NULL, %s%s, seq%s", col, col, dir, dir), nil
}

// patchUserSQL writes what an administrator owns of a user.
const patchUserSQL = `UPDATE users SET blocked = $2, root_attributes = $3, app_metadata = $4, user_metadata = $5, updated_at = $6
	WHERE user_id = $1`

// PatchUser reads and writes the user in one write transaction. On
// PostgreSQL FOR UPDATE holds the row until the commit, so a login's
// write waits and then sees the patch; on SQLite the transaction holds
// the only writer.
func (s *Store) PatchUser(ctx context.Context, userID string, patch func(*store.User) error) (*store.User, error) {
	read := "SELECT " + userCols + " FROM users WHERE user_id = $1"
	if s.d.name != sqliteDialect.name {
		read += " FOR UPDATE"
	}
	var u *store.User
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if u, err = scanUser(tx.QueryRowContext(ctx, read, userID)); err != nil {
			return err
		}
		p := *u
		if err := patch(&p); err != nil {
			return err
		}
		u.Blocked, u.RootAttributes, u.AppMetadata, u.UserMetadata = p.Blocked, p.RootAttributes, p.AppMetadata, p.UserMetadata
		docs, err := userDocs(u)
		if err != nil {
			return err
		}
		u.UpdatedAt = now()
		_, err = tx.ExecContext(ctx, patchUserSQL, userID, u.Blocked, docs[1], docs[2], docs[3], u.UpdatedAt.UnixMilli())
		return err
	})
	if err != nil {
		return nil, s.fail("patch user", err)
	}
	return u, nil
}

// recordLoginSQL stores a login: a new user, with the root attributes
// given, or what a login owns of an existing one ($11: the root
// attributes too). Insert-or-update in one statement, so that a user
// deleted or created by another login since it was read needs no second
// try; a user deleted since is created again with the root attributes it
// had. blocked is never set, so RETURNING gives the block in force when
// the row was written. The upstream tenant ($12) is checked by the
// update's WHERE, in the statement that writes: a user created by a login
// of another tenant since it was read (two first logins at once) is not
// written, and RETURNING yields no row. A user without a tenant takes
// the login's.
const recordLoginSQL = `INSERT INTO users (user_id, connection, email, email_lower, profile, root_attributes, idp_tokens_enc,
		blocked, logins_count, last_login, last_ip, created_at, updated_at, upstream_tenant)
	VALUES ($1, $2, $3, $4, $5, $6, $7, FALSE, 1, $8, $9, $10, $10, $12)
	ON CONFLICT (user_id) DO UPDATE SET connection = excluded.connection, email = excluded.email,
		email_lower = excluded.email_lower, profile = excluded.profile,
		root_attributes = CASE WHEN $11 THEN excluded.root_attributes ELSE users.root_attributes END,
		idp_tokens_enc = excluded.idp_tokens_enc, logins_count = users.logins_count + 1,
		last_login = excluded.last_login, last_ip = excluded.last_ip, updated_at = excluded.updated_at,
		upstream_tenant = COALESCE(users.upstream_tenant, excluded.upstream_tenant)
	WHERE users.upstream_tenant IS NULL OR excluded.upstream_tenant IS NULL OR users.upstream_tenant = excluded.upstream_tenant
	RETURNING ` + userCols

// recordLoginPGSQL is RecordLogin as one statement on PostgreSQL, by
// whether it has an event and whether it settles the login's attack
// protection: one round trip and one commit instead of up to three. The
// event is written only with the login, as the group-commit job does on
// SQLite. The settlement's CTEs do not depend on u: a login refused for
// its upstream tenant is settled all the same.
var recordLoginPGSQL = func() (q [2][2]string) {
	const logged = `,
	e AS (INSERT INTO log_events (log_id, event_type, logged_at, user_id, doc)
		SELECT $13::text, $14::text, $15::bigint, $16::text, $17::text WHERE EXISTS (SELECT 1 FROM u WHERE NOT u.blocked))`
	for _, event := range []bool{false, true} {
		for _, settlement := range []bool{false, true} {
			w := "WITH u AS (" + recordLoginSQL + ")"
			if event {
				w += logged
			}
			if settlement {
				n := 13
				if event {
					n = 18
				}
				w += ",\n\t" + fmt.Sprintf(clearLoginCTE, n, n+1, n+2, n+3, n+4)
			}
			q[b2i(event)][b2i(settlement)] = w + "\n\tSELECT " + userCols + " FROM u"
		}
	}
	return q
}()

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func recordLoginArgs(u *store.User, rootAttributes bool) ([]any, error) {
	docs, err := userDocs(u)
	if err != nil {
		return nil, err
	}
	return []any{u.UserID, u.Connection, u.Email, strings.ToLower(u.Email), docs[0], docs[1], blob(u.IdPTokensEnc),
		nullMS(u.LastLogin), u.LastIP, now().UnixMilli(), rootAttributes, nullString(u.UpstreamTenant)}, nil
}

// RecordLogin is one group-commit job on SQLite (group_commit.go), where
// each commit is a WAL write through the one writer connection, and one
// statement on PostgreSQL, where each statement on its own is a commit
// waiting for the WAL to reach the disk.
func (s *Store) RecordLogin(ctx context.Context, u *store.User, rootAttributes bool, e *store.LogEvent, settlement *store.LoginClear) error {
	var (
		stored *store.User
		err    error
	)
	if s.d.name == sqliteDialect.name {
		stored, err = s.recordLoginSQLite(ctx, u, rootAttributes, e, settlement)
	} else {
		stored, err = s.recordLoginPG(ctx, u, rootAttributes, e, settlement)
	}
	if errors.Is(err, sql.ErrNoRows) {
		// Only the upsert's tenant check makes it return no row.
		err = store.ErrUpstreamTenantMismatch
	}
	if err != nil {
		return s.fail("record login", err)
	}
	*u = *stored
	return nil
}

func (s *Store) recordLoginSQLite(ctx context.Context, u *store.User, rootAttributes bool, e *store.LogEvent, settlement *store.LoginClear) (*store.User, error) {
	args, err := recordLoginArgs(u, rootAttributes)
	if err != nil {
		return nil, err
	}
	stmts, err := s.hotTx(ctx, recordLoginSQL, appendLogEventSQL, clearLoginSQL, returnTokenSQL)
	if err != nil {
		return nil, err
	}
	var (
		stored   *store.User
		mismatch bool
	)
	err = s.inGroupTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		q := hotTx{tx, stmts}
		var err error
		stored, err = scanUser(q.QueryRowContext(ctx, recordLoginSQL, args...))
		// A login refused for its upstream tenant still commits its
		// settlement, as the PostgreSQL statement does.
		if mismatch = errors.Is(err, sql.ErrNoRows); err != nil && !mismatch {
			return err
		}
		if settlement != nil {
			if err := clearLogin(ctx, q, *settlement); err != nil {
				return err
			}
		}
		if e == nil || mismatch || stored.Blocked {
			return nil
		}
		return appendLogEvent(ctx, q, e)
	})
	if err == nil && mismatch {
		err = sql.ErrNoRows
	}
	return stored, err
}

func (s *Store) recordLoginPG(ctx context.Context, u *store.User, rootAttributes bool, e *store.LogEvent, settlement *store.LoginClear) (*store.User, error) {
	args, err := recordLoginArgs(u, rootAttributes)
	if err != nil {
		return nil, err
	}
	var ev logRow
	if e != nil {
		if ev, err = newLogRow(e); err != nil {
			return nil, err
		}
		args = append(args, ev.args()...)
	}
	if settlement != nil {
		args = append(args, clearLoginArgs(*settlement)...)
	}
	stored, err := scanUser(hotDB{s, s.write}.QueryRowContext(ctx, recordLoginPGSQL[b2i(e != nil)][b2i(settlement != nil)], args...))
	if err != nil {
		return nil, err
	}
	if e != nil && !stored.Blocked {
		ev.stored()
	}
	return stored, nil
}

// DeleteUser removes the user and its refresh tokens (deleteOwner; on
// SQLite deleteInChunks).
func (s *Store) DeleteUser(ctx context.Context, userID string) error {
	if s.d.name == sqliteDialect.name {
		if err := s.deleteInChunks(ctx, purgeUser, userID); err != nil {
			return s.fail("delete user", err)
		}
		return nil
	}
	err := s.deleteOwner(ctx, userID, "DELETE FROM users WHERE user_id = $1", s.deleteRefreshSQL("user_id = $1"))
	if err != nil {
		return s.fail("delete user", err)
	}
	return nil
}

// A user (u) of a deleted connection, $1 its name and $2 its deleted_at:
// its latest login went through a connection of the name, not after the
// deletion unless no connection has the name now. A later one went
// through a connection made again under the name, or through the deleted
// one: a login under way, or one on a replica whose cache still held the
// connection, stores its user after the deletion.
const deletedConnectionUser = `u.connection = $1 AND (u.last_login IS NULL OR u.last_login <= $2
	OR NOT EXISTS (SELECT 1 FROM connections c WHERE c.name = $1))`

// purgeConnectionUsersSQL deletes at most $3 users of a deleted
// connection; on SQLite ON DELETE CASCADE deletes their refresh tokens.
const purgeConnectionUsersSQL = `DELETE FROM users WHERE seq IN (
	SELECT u.seq FROM users u WHERE ` + deletedConnectionUser + ` LIMIT $3)`

// On PostgreSQL the purge deletes at most $3 refresh tokens of such users
// first, then at most $3 such users that have none left. Both skip
// locked rows, as the other purges do: an exchange, a revocation or a
// deletion holds the tokens it locked in seq order, a login its user,
// and a purge that waited for them while holding others could deadlock
// with them. A user whose tokens were skipped waits for a later run
// rather than be left to ON DELETE CASCADE, which would wait for them
// while holding the user that an exchange's successor refers to.
const (
	purgeConnectionTokensPGSQL = `DELETE FROM refresh_tokens WHERE seq IN (
		SELECT r.seq FROM users u JOIN refresh_tokens r ON r.user_id = u.user_id
		WHERE ` + deletedConnectionUser + ` LIMIT $3 FOR UPDATE OF r SKIP LOCKED)`
	purgeConnectionUsersPGSQL = `DELETE FROM users WHERE seq IN (
		SELECT u.seq FROM users u WHERE ` + deletedConnectionUser + `
		AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.user_id = u.user_id) LIMIT $3 FOR UPDATE SKIP LOCKED)`
)

// forgetDeletedConnectionSQL deletes the record $3 of a deleted connection
// that has no user left and is $4 milliseconds old by the database's
// clock (%s, the dialect's nowMS), which wrote deleted_at: a replica
// whose clock is off neither forgets a deletion a login under way may
// still need nor keeps one for ever.
const forgetDeletedConnectionSQL = `DELETE FROM deleted_connections WHERE seq = $3 AND deleted_at <= %s - $4
	AND NOT EXISTS (SELECT 1 FROM users u WHERE ` + deletedConnectionUser + `)`

// deletedConnectionGrace is how long a deletion is remembered at least,
// even with no user left: a login under way when the connection was
// deleted (its upstream calls take up to a minute; another replica's
// cache holds the connection 5 s more) stores its user after the
// deletion, perhaps after a purge that found none left, and the purge
// must still know the name then to delete it.
const deletedConnectionGrace = 10 * time.Minute

// listDeletedConnectionsSQL reads the whole table, which holds a row per
// deletion only until the purge has deleted its users, and for
// deletedConnectionGrace at least.
const listDeletedConnectionsSQL = "SELECT seq, name, deleted_at FROM deleted_connections ORDER BY seq"

// PurgeDeletedConnectionUsers deletes at most limit users of deleted
// connections, with their refresh tokens, oldest deletion first, and the
// record of each deleted connection that has no such user left and is
// older than deletedConnectionGrace. A user belongs to the connection of
// its latest login (users.connection): two connections of one Entra
// tenant share their users, and the deletion of one deletes those that
// signed in through it last. more reports that a
// batch was full; rows skipped because another writer held them are left
// to the next run.
func (s *Store) PurgeDeletedConnectionUsers(ctx context.Context, limit int) (n int, more bool, err error) {
	type deleted struct {
		seq, at int64
		name    string
	}
	var todo []deleted
	err = func() error {
		rows, err := s.read.QueryContext(ctx, listDeletedConnectionsSQL)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var d deleted
			if err := rows.Scan(&d.seq, &d.name, &d.at); err != nil {
				return err
			}
			todo = append(todo, d)
		}
		return rows.Err()
	}()
	if err != nil {
		return 0, false, s.fail("purge deleted connection users", err)
	}
	forget := fmt.Sprintf(forgetDeletedConnectionSQL, s.d.nowMS)
	pg := s.d.name != sqliteDialect.name
	users := purgeConnectionUsersSQL
	if pg {
		users = purgeConnectionUsersPGSQL
	}
	for _, d := range todo {
		if pg {
			res, err := s.write.ExecContext(ctx, purgeConnectionTokensPGSQL, d.name, d.at, limit)
			tokens, err := s.count("purge deleted connection users", res, err)
			if err != nil || tokens == limit {
				return n, err == nil, err
			}
		}
		res, err := s.write.ExecContext(ctx, users, d.name, d.at, limit-n)
		got, err := s.count("purge deleted connection users", res, err)
		if n += got; err != nil || n == limit {
			return n, err == nil, err
		}
		_, err = s.write.ExecContext(ctx, forget, d.name, d.at, d.seq, deletedConnectionGrace.Milliseconds())
		if err != nil {
			return n, false, s.fail("purge deleted connection users", err)
		}
	}
	return n, false, nil
}
