package sqlstore

import (
	"context"
	"database/sql"

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
		inserted = err == nil
		return err
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
		return affected(res)
	})
	if err != nil {
		return s.fail("update signing key", err)
	}
	k.CurrentSince, k.CurrentUntil, k.RevokedAt = msPtr(k.CurrentSince), msPtr(k.CurrentUntil), msPtr(k.RevokedAt)
	return nil
}
