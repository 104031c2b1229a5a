package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/gatehouse/gatehouse/internal/store"
)

const clientGrantCols = "id, client_id, audience, scope, created_at, updated_at"

func scanClientGrant(row interface{ Scan(...any) error }) (*store.ClientGrant, error) {
	var (
		g                store.ClientGrant
		scope            string
		created, updated int64
	)
	if err := row.Scan(&g.ID, &g.ClientID, &g.Audience, &scope, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(scope), &g.Scope); err != nil {
		return nil, err
	}
	g.CreatedAt = fromMS(created)
	g.UpdatedAt = fromMS(updated)
	return &g, nil
}

func scopeJSON(scope []string) (string, error) {
	if scope == nil {
		scope = []string{}
	}
	return marshalDoc(scope)
}

func (s *Store) CreateClientGrant(ctx context.Context, g *store.ClientGrant) error {
	scope, err := scopeJSON(g.Scope)
	if err != nil {
		return s.fail("create client grant", err)
	}
	created, updated := stamps(g.CreatedAt, g.UpdatedAt)
	_, err = s.write.ExecContext(ctx,
		"INSERT INTO client_grants ("+clientGrantCols+") VALUES ($1, $2, $3, $4, $5, $6)",
		g.ID, g.ClientID, g.Audience, scope, created.UnixMilli(), updated.UnixMilli())
	if err != nil {
		return s.fail("create client grant", err)
	}
	g.CreatedAt, g.UpdatedAt = created, updated
	return nil
}

func (s *Store) GetClientGrant(ctx context.Context, id string) (*store.ClientGrant, error) {
	g, err := scanClientGrant(s.read.QueryRowContext(ctx, "SELECT "+clientGrantCols+" FROM client_grants WHERE id = $1", id))
	if err != nil {
		return nil, s.fail("get client grant", err)
	}
	return g, nil
}

func (s *Store) FindClientGrant(ctx context.Context, clientID, audience string) (*store.ClientGrant, error) {
	g, err := scanClientGrant(s.read.QueryRowContext(ctx,
		"SELECT "+clientGrantCols+" FROM client_grants WHERE client_id = $1 AND audience = $2", clientID, audience))
	if err != nil {
		return nil, s.fail("find client grant", err)
	}
	return g, nil
}

func (s *Store) ListClientGrants(ctx context.Context, f store.ClientGrantFilter, opts store.ListOptions) ([]*store.ClientGrant, int, error) {
	var w filter
	if f.ClientID != "" {
		w.eq("client_id", f.ClientID)
	}
	if f.Audience != "" {
		w.eq("audience", f.Audience)
	}
	var (
		out   []*store.ClientGrant
		total int
	)
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, total, err = list(ctx, tx, clientGrantCols, "client_grants", w, "created_at, seq", opts,
			func(rows *sql.Rows) (*store.ClientGrant, error) { return scanClientGrant(rows) })
		return err
	})
	if err != nil {
		return nil, 0, s.fail("list client grants", err)
	}
	return out, total, nil
}

func (s *Store) UpdateClientGrant(ctx context.Context, g *store.ClientGrant) error {
	scope, err := scopeJSON(g.Scope)
	if err != nil {
		return s.fail("update client grant", err)
	}
	updated := now()
	var created int64
	err = s.write.QueryRowContext(ctx,
		"UPDATE client_grants SET scope = $2, updated_at = $3 WHERE id = $1 RETURNING client_id, audience, created_at",
		g.ID, scope, updated.UnixMilli()).Scan(&g.ClientID, &g.Audience, &created)
	if err != nil {
		return s.fail("update client grant", err)
	}
	g.CreatedAt, g.UpdatedAt = fromMS(created), updated
	return nil
}

func (s *Store) DeleteClientGrant(ctx context.Context, id string) error {
	res, err := s.write.ExecContext(ctx, "DELETE FROM client_grants WHERE id = $1", id)
	if err == nil {
		err = affected(res)
	}
	if err != nil {
		return s.fail("delete client grant", err)
	}
	return nil
}
