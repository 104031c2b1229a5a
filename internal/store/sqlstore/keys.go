package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

const keyCols = "kid, state, private_enc, cert_der, created_at, current_since, current_until, revoked_at"

func (s *Store) ListSigningKeys(ctx context.Context) ([]*store.SigningKey, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT "+keyCols+" FROM signing_keys ORDER BY created_at DESC, seq DESC")
	if err != nil {
		return nil, s.fail("list signing keys", err)
	}
	defer rows.Close()
	keys := []*store.SigningKey{}
	for rows.Next() {
		var (
			k                   store.SigningKey
			created             int64
			since, until, revok sql.NullInt64
		)
		if err := rows.Scan(&k.KID, &k.State, &k.PrivateEnc, &k.CertDER, &created, &since, &until, &revok); err != nil {
			return nil, s.fail("list signing keys", err)
		}
		k.PrivateEnc = fromBlob(k.PrivateEnc)
		k.CertDER = fromBlob(k.CertDER)
		k.CreatedAt = fromMS(created)
		k.CurrentSince = fromNullMS(since)
		k.CurrentUntil = fromNullMS(until)
		k.RevokedAt = fromNullMS(revok)
		keys = append(keys, &k)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("list signing keys", err)
	}
	return keys, nil
}

// InsertSigningKeyIfNone checks and inserts under a lock that every caller
// takes (PostgreSQL's advisory lock; SQLite's write lock), so of racing
// callers exactly one finds no key and inserts.
func (s *Store) InsertSigningKeyIfNone(ctx context.Context, k *store.SigningKey) (bool, error) {
	created := k.CreatedAt
	if created.IsZero() {
		created = now()
	}
	created = ms(created)
	var inserted bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.lock(ctx, tx, lockSigningKeys); err != nil {
			return err
		}
		var exists bool
		err := tx.QueryRowContext(ctx,
			"SELECT EXISTS (SELECT 1 FROM signing_keys WHERE state = $1 AND state <> $2)",
			string(k.State), string(store.KeyRevoked)).Scan(&exists)
		if err != nil || exists {
			return err
		}
		_, err = tx.ExecContext(ctx,
			"INSERT INTO signing_keys ("+keyCols+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
			k.KID, string(k.State), k.PrivateEnc, k.CertDER, created.UnixMilli(),
			nullMS(k.CurrentSince), nullMS(k.CurrentUntil), nullMS(k.RevokedAt))
		if err != nil {
			return err
		}
		inserted = true
		return s.keysChanged(ctx, tx)
	})
	if err != nil {
		return false, s.fail("insert signing key", err)
	}
	if inserted {
		k.CreatedAt = created
		k.CurrentSince, k.CurrentUntil, k.RevokedAt = msPtr(k.CurrentSince), msPtr(k.CurrentUntil), msPtr(k.RevokedAt)
	}
	return inserted, nil
}

// UpdateSigningKey stores k's State, CurrentSince, CurrentUntil and
// RevokedAt; it takes the signing-key lock so that it cannot interleave
// with InsertSigningKeyIfNone.
func (s *Store) UpdateSigningKey(ctx context.Context, k *store.SigningKey) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.lock(ctx, tx, lockSigningKeys); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx,
			"UPDATE signing_keys SET state = $2, current_since = $3, current_until = $4, revoked_at = $5 WHERE kid = $1",
			k.KID, string(k.State), nullMS(k.CurrentSince), nullMS(k.CurrentUntil), nullMS(k.RevokedAt))
		if err != nil {
			return err
		}
		if err := affected(res); err != nil {
			return err
		}
		return s.keysChanged(ctx, tx)
	})
	if err != nil {
		return s.fail("update signing key", err)
	}
	k.CurrentSince, k.CurrentUntil, k.RevokedAt = msPtr(k.CurrentSince), msPtr(k.CurrentUntil), msPtr(k.RevokedAt)
	return nil
}

// RotateSigningKeys moves every key one step along the rotation under the
// signing-key lock, after checking that ifCurrent is still current: the
// check and the moves are one transaction, so of racing replicas exactly
// one rotates.
func (s *Store) RotateSigningKeys(ctx context.Context, ifCurrent string, next *store.SigningKey, at time.Time) (bool, error) {
	at = ms(at)
	t := at.UnixMilli()
	rotated := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.lock(ctx, tx, lockSigningKeys); err != nil {
			return err
		}
		var cur string
		err := tx.QueryRowContext(ctx, "SELECT kid FROM signing_keys WHERE state = $1 AND revoked_at IS NULL", string(store.KeyCurrent)).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && cur != ifCurrent) {
			return nil
		}
		if err != nil {
			return err
		}
		var nextKID string
		err = tx.QueryRowContext(ctx, "SELECT kid FROM signing_keys WHERE state = $1 AND revoked_at IS NULL", string(store.KeyNext)).Scan(&nextKID)
		if errors.Is(err, sql.ErrNoRows) {
			return errors.New("no next signing key to promote")
		}
		if err != nil {
			return err
		}
		steps := []struct {
			q    string
			args []any
		}{
			{"UPDATE signing_keys SET state = $1, current_until = $2 WHERE kid = $3", []any{string(store.KeyPrevious), t, cur}},
			{"UPDATE signing_keys SET state = $1, current_since = $2 WHERE kid = $3", []any{string(store.KeyCurrent), t, nextKID}},
			{"INSERT INTO signing_keys (" + keyCols + ") VALUES ($1, $2, $3, $4, $5, NULL, NULL, NULL)",
				[]any{next.KID, string(store.KeyNext), next.PrivateEnc, next.CertDER, t}},
		}
		for _, st := range steps {
			if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
				return err
			}
		}
		rotated = true
		return s.keysChanged(ctx, tx)
	})
	if err != nil {
		return false, s.fail("rotate signing keys", err)
	}
	if rotated {
		next.State, next.CreatedAt = store.KeyNext, at
		next.CurrentSince, next.CurrentUntil, next.RevokedAt = nil, nil, nil
	}
	return rotated, nil
}

// RevokeSigningKey revokes a previous key in one conditional statement.
func (s *Store) RevokeSigningKey(ctx context.Context, kid string, at time.Time) (*store.SigningKey, error) {
	at = ms(at)
	var k *store.SigningKey
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.lock(ctx, tx, lockSigningKeys); err != nil {
			return err
		}
		var state string
		if err := tx.QueryRowContext(ctx, "SELECT state FROM signing_keys WHERE kid = $1", kid).Scan(&state); err != nil {
			return err
		}
		if state == string(store.KeyCurrent) || state == string(store.KeyNext) {
			return store.ErrKeyInUse
		}
		_, err := tx.ExecContext(ctx,
			"UPDATE signing_keys SET state = $2, revoked_at = COALESCE(revoked_at, $3) WHERE kid = $1",
			kid, string(store.KeyRevoked), at.UnixMilli())
		if err != nil {
			return err
		}
		var (
			row                 store.SigningKey
			created             int64
			since, until, revok sql.NullInt64
		)
		err = tx.QueryRowContext(ctx, "SELECT "+keyCols+" FROM signing_keys WHERE kid = $1", kid).
			Scan(&row.KID, &row.State, &row.PrivateEnc, &row.CertDER, &created, &since, &until, &revok)
		if err != nil {
			return err
		}
		row.CreatedAt, row.CurrentSince, row.CurrentUntil, row.RevokedAt = fromMS(created), fromNullMS(since), fromNullMS(until), fromNullMS(revok)
		k = &row
		return s.keysChanged(ctx, tx)
	})
	if err != nil {
		return nil, s.fail("revoke signing key", err)
	}
	return k, nil
}
