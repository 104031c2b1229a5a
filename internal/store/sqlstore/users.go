package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

const userCols = "user_id, connection, email, profile, idp_tokens_enc, blocked, logins_count, last_login, last_ip, created_at, updated_at"

// userScan receives a users row in userCols order.
type userScan struct {
	u                store.User
	profile          sql.NullString
	lastLogin        sql.NullInt64
	created, updated int64
}

func (r *userScan) dest() []any {
	return []any{&r.u.UserID, &r.u.Connection, &r.u.Email, &r.profile, &r.u.IdPTokensEnc, &r.u.Blocked,
		&r.u.LoginsCount, &r.lastLogin, &r.u.LastIP, &r.created, &r.updated}
}

func (r *userScan) user() *store.User {
	r.u.Profile = fromRawJSON(r.profile)
	r.u.IdPTokensEnc = fromBlob(r.u.IdPTokensEnc)
	r.u.LastLogin = fromNullMS(r.lastLogin)
	r.u.CreatedAt = fromMS(r.created)
	r.u.UpdatedAt = fromMS(r.updated)
	return &r.u
}

func scanUser(row interface{ Scan(...any) error }) (*store.User, error) {
	var r userScan
	if err := row.Scan(r.dest()...); err != nil {
		return nil, err
	}
	return r.user(), nil
}

// UpsertUser inserts u unless its UserID exists, then updates it. Insert
// first: ON CONFLICT DO NOTHING settles a race between two creators in the
// database, where update-then-insert would fail one of them.
func (s *Store) UpsertUser(ctx context.Context, u *store.User) (bool, error) {
	profile, err := rawJSON("profile", u.Profile)
	if err != nil {
		return false, s.fail("upsert user", err)
	}
	created, updated := stamps(u.CreatedAt, u.UpdatedAt)
	var inserted bool
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			"INSERT INTO users ("+userCols+", email_lower) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (user_id) DO NOTHING",
			u.UserID, u.Connection, u.Email, profile, blob(u.IdPTokensEnc), u.Blocked, u.LoginsCount,
			nullMS(u.LastLogin), u.LastIP, created.UnixMilli(), updated.UnixMilli(), strings.ToLower(u.Email))
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
		if err := tx.QueryRowContext(ctx, updateUserSQL, updateUserArgs(u, profile, updated)...).Scan(&c); err != nil {
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

// updateUserSQL replaces every field of the user but UserID and
// CreatedAt, returning created_at.
const updateUserSQL = `UPDATE users SET connection = $2, email = $3, email_lower = $4, profile = $5, idp_tokens_enc = $6,
	blocked = $7, logins_count = $8, last_login = $9, last_ip = $10, updated_at = $11
	WHERE user_id = $1 RETURNING created_at`

func updateUserArgs(u *store.User, profile any, updated time.Time) []any {
	return []any{u.UserID, u.Connection, u.Email, strings.ToLower(u.Email), profile, blob(u.IdPTokensEnc),
		u.Blocked, u.LoginsCount, nullMS(u.LastLogin), u.LastIP, updated.UnixMilli()}
}

func (s *Store) GetUser(ctx context.Context, userID string) (*store.User, error) {
	u, err := scanUser(s.rowHot(ctx, s.read, "SELECT "+userCols+" FROM users WHERE user_id = $1", userID))
	if err != nil {
		return nil, s.fail("get user", err)
	}
	return u, nil
}

// ListUsers matches Email case-insensitively (lowercased in Go on both
// sides, since SQLite's lower() folds ASCII only) and Connection exactly.
func (s *Store) ListUsers(ctx context.Context, f store.UserFilter, opts store.ListOptions) ([]*store.User, int, error) {
	var w filter
	if f.Email != "" {
		w.eq("email_lower", strings.ToLower(f.Email))
	}
	if f.Connection != "" {
		w.eq("connection", f.Connection)
	}
	var (
		us    []*store.User
		total int
	)
	err := s.inReadTx(ctx, func(tx *sql.Tx) (err error) {
		us, total, err = list(ctx, tx, userCols, "users", w, "created_at, seq", opts,
			func(r *sql.Rows) (*store.User, error) { return scanUser(r) })
		return err
	})
	if err != nil {
		return nil, 0, s.fail("list users", err)
	}
	return us, total, nil
}

// UpdateUser replaces every field but CreatedAt, which it reads back into
// u, and sets UpdatedAt to now.
func (s *Store) UpdateUser(ctx context.Context, u *store.User) error {
	if err := updateUser(ctx, hotDB{s, s.write}, u); err != nil {
		return s.fail("update user", err)
	}
	return nil
}

func updateUser(ctx context.Context, q hotQuerier, u *store.User) error {
	return updateUserWith(ctx, q, u, updateUserSQL)
}

// updateUserWith runs query, updateUserSQL or a statement around it that
// takes more arguments after the user's.
func updateUserWith(ctx context.Context, q hotQuerier, u *store.User, query string, more ...any) error {
	profile, err := rawJSON("profile", u.Profile)
	if err != nil {
		return err
	}
	updated := now()
	var created int64
	if err := q.QueryRowContext(ctx, query, append(updateUserArgs(u, profile, updated), more...)...).Scan(&created); err != nil {
		return err
	}
	u.CreatedAt, u.UpdatedAt, u.LastLogin = fromMS(created), updated, msPtr(u.LastLogin)
	return nil
}

// updateUserLoggedSQL is UpdateUserLogged as one statement on PostgreSQL:
// one round trip and one commit instead of two, and the event is written
// only with the user's update, as the transaction does on SQLite.
const updateUserLoggedSQL = `WITH u AS (` + updateUserSQL + `),
	e AS (INSERT INTO log_events (log_id, event_type, logged_at, user_id, doc)
		SELECT $12::text, $13::text, $14::bigint, $15::text, $16::text WHERE EXISTS (SELECT 1 FROM u))
	SELECT created_at FROM u`

// UpdateUserLogged is one group-commit job on SQLite (group_commit.go),
// where each commit is a WAL write through the one writer connection, and
// one statement on PostgreSQL, where each statement on its own is a commit
// waiting for the WAL to reach the disk.
func (s *Store) UpdateUserLogged(ctx context.Context, u *store.User, e *store.LogEvent) error {
	if s.d.name != sqliteDialect.name {
		if err := s.updateUserLoggedPG(ctx, u, e); err != nil {
			return s.fail("update user", err)
		}
		return nil
	}
	stmts, err := s.hotTx(ctx, updateUserSQL, appendLogEventSQL)
	if err == nil {
		err = s.inGroupTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			q := hotTx{tx, stmts}
			if err := updateUser(ctx, q, u); err != nil {
				return err
			}
			return appendLogEvent(ctx, q, e)
		})
	}
	if err != nil {
		return s.fail("update user", err)
	}
	return nil
}

func (s *Store) updateUserLoggedPG(ctx context.Context, u *store.User, e *store.LogEvent) error {
	ev, err := newLogRow(e)
	if err != nil {
		return err
	}
	if err := updateUserWith(ctx, hotDB{s, s.write}, u, updateUserLoggedSQL, ev.args()...); err != nil {
		return err
	}
	ev.stored()
	return nil
}

func (s *Store) DeleteUser(ctx context.Context, userID string) error {
	res, err := s.write.ExecContext(ctx, "DELETE FROM users WHERE user_id = $1", userID)
	if err == nil {
		err = affected(res)
	}
	if err != nil {
		return s.fail("delete user", err)
	}
	return nil
}
