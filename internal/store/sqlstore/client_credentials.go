package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

const clientCredentialCols = "id, client_id, name, credential_type, kid, alg, pem, created_at, updated_at, expires_at"

func scanClientCredential(row interface{ Scan(...any) error }) (*store.ClientCredential, error) {
	var (
		cr               store.ClientCredential
		created, updated int64
		expires          sql.NullInt64
	)
	if err := row.Scan(&cr.ID, &cr.ClientID, &cr.Name, &cr.CredentialType, &cr.KID, &cr.Alg, &cr.PEM, &created, &updated, &expires); err != nil {
		return nil, err
	}
	cr.CreatedAt, cr.UpdatedAt, cr.ExpiresAt = fromMS(created), fromMS(updated), fromNullMS(expires)
	return &cr, nil
}

// CreateClientCredential sets CreatedAt and UpdatedAt to now.
func (s *Store) CreateClientCredential(ctx context.Context, cr *store.ClientCredential) error {
	t := ms(now())
	_, err := s.write.ExecContext(ctx, "INSERT INTO client_credentials ("+clientCredentialCols+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
		cr.ID, cr.ClientID, cr.Name, cr.CredentialType, cr.KID, cr.Alg, cr.PEM, t.UnixMilli(), t.UnixMilli(), nullMS(cr.ExpiresAt))
	if err != nil {
		return s.fail("create client credential", err)
	}
	cr.CreatedAt, cr.UpdatedAt, cr.ExpiresAt = t, t, msPtr(cr.ExpiresAt)
	return nil
}

func (s *Store) ListClientCredentials(ctx context.Context, clientID string) ([]*store.ClientCredential, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT "+clientCredentialCols+" FROM client_credentials WHERE client_id = $1 ORDER BY created_at, seq", clientID)
	if err != nil {
		return nil, s.fail("list client credentials", err)
	}
	defer rows.Close()
	out := []*store.ClientCredential{}
	for rows.Next() {
		cr, err := scanClientCredential(rows)
		if err != nil {
			return nil, s.fail("list client credentials", err)
		}
		out = append(out, cr)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("list client credentials", err)
	}
	return out, nil
}

func (s *Store) GetClientCredential(ctx context.Context, clientID, id string) (*store.ClientCredential, error) {
	cr, err := scanClientCredential(s.read.QueryRowContext(ctx,
		"SELECT "+clientCredentialCols+" FROM client_credentials WHERE client_id = $1 AND id = $2", clientID, id))
	if err != nil {
		return nil, s.fail("get client credential", err)
	}
	return cr, nil
}

func (s *Store) UpdateClientCredential(ctx context.Context, cr *store.ClientCredential) error {
	t := ms(now())
	res, err := s.write.ExecContext(ctx, "UPDATE client_credentials SET expires_at = $3, updated_at = $4 WHERE client_id = $1 AND id = $2",
		cr.ClientID, cr.ID, nullMS(cr.ExpiresAt), t.UnixMilli())
	if err == nil {
		err = affected(res)
	}
	if err != nil {
		return s.fail("update client credential", err)
	}
	cr.UpdatedAt, cr.ExpiresAt = t, msPtr(cr.ExpiresAt)
	return nil
}

func (s *Store) DeleteClientCredential(ctx context.Context, clientID, id string) error {
	res, err := s.write.ExecContext(ctx, "DELETE FROM client_credentials WHERE client_id = $1 AND id = $2", clientID, id)
	if err == nil {
		err = affected(res)
	}
	if err != nil {
		return s.fail("delete client credential", err)
	}
	return nil
}

// UseClientAssertion lets the primary key decide, so that two replicas
// presented the same assertion at once accept it once.
func (s *Store) UseClientAssertion(ctx context.Context, clientID, jti string, expiresAt time.Time) error {
	_, err := s.write.ExecContext(ctx, "INSERT INTO client_assertions (client_id, jti, expires_at) VALUES ($1, $2, $3)",
		clientID, jti, ms(expiresAt).UnixMilli())
	if err != nil {
		return s.fail("use client assertion", err)
	}
	return nil
}

// purgeAssertionsSQL deletes at most $2 assertion ids that expired before
// $1, found through client_assertions_expires.
const purgeAssertionsSQL = `DELETE FROM client_assertions WHERE (client_id, jti) IN (
	SELECT client_id, jti FROM client_assertions WHERE expires_at < $1 LIMIT $2)`

func (s *Store) PurgeClientAssertions(ctx context.Context, before time.Time, limit int) (int, error) {
	res, err := s.write.ExecContext(ctx, purgeAssertionsSQL, ms(before).UnixMilli(), limit)
	return s.count("purge client assertions", res, err)
}
