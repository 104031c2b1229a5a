package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/gatehouse/gatehouse/internal/store"
)

// resourceServerDoc is the part of an API kept in its JSON column.
type resourceServerDoc struct {
	Name                                      string                      `json:"name"`
	Scopes                                    []store.ResourceServerScope `json:"scopes"`
	SigningAlg                                string                      `json:"signing_alg"`
	TokenLifetime                             int                         `json:"token_lifetime"`
	TokenLifetimeForWeb                       int                         `json:"token_lifetime_for_web"`
	AllowOfflineAccess                        bool                        `json:"allow_offline_access"`
	SkipConsentForVerifiableFirstPartyClients bool                        `json:"skip_consent_for_verifiable_first_party_clients"`
}

func resourceServerDocOf(rs *store.ResourceServer) (string, error) {
	return marshalDoc(resourceServerDoc{
		Name:                rs.Name,
		Scopes:              rs.Scopes,
		SigningAlg:          rs.SigningAlg,
		TokenLifetime:       rs.TokenLifetime,
		TokenLifetimeForWeb: rs.TokenLifetimeForWeb,
		AllowOfflineAccess:  rs.AllowOfflineAccess,
		SkipConsentForVerifiableFirstPartyClients: rs.SkipConsentForVerifiableFirstPartyClients,
	})
}

const resourceServerCols = "id, identifier, doc, created_at, updated_at"

func scanResourceServer(row interface{ Scan(...any) error }) (*store.ResourceServer, error) {
	var (
		rs               store.ResourceServer
		doc              string
		created, updated int64
		d                resourceServerDoc
	)
	if err := row.Scan(&rs.ID, &rs.Identifier, &doc, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		return nil, err
	}
	rs.Name = d.Name
	rs.Scopes = d.Scopes
	rs.SigningAlg = d.SigningAlg
	rs.TokenLifetime = d.TokenLifetime
	rs.TokenLifetimeForWeb = d.TokenLifetimeForWeb
	rs.AllowOfflineAccess = d.AllowOfflineAccess
	rs.SkipConsentForVerifiableFirstPartyClients = d.SkipConsentForVerifiableFirstPartyClients
	rs.CreatedAt = fromMS(created)
	rs.UpdatedAt = fromMS(updated)
	return &rs, nil
}

func (s *Store) CreateResourceServer(ctx context.Context, rs *store.ResourceServer) error {
	doc, err := resourceServerDocOf(rs)
	if err != nil {
		return s.fail("create resource server", err)
	}
	created, updated := stamps(rs.CreatedAt, rs.UpdatedAt)
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		// A grant created while an API of this identifier was being
		// deleted outlives it (its check for the API ran first); it must
		// not grant anything on the new API.
		if _, err := tx.ExecContext(ctx, "DELETE FROM client_grants WHERE audience = $1", rs.Identifier); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx,
			"INSERT INTO resource_servers ("+resourceServerCols+") VALUES ($1, $2, $3, $4, $5)",
			rs.ID, rs.Identifier, doc, created.UnixMilli(), updated.UnixMilli())
		return err
	})
	if err != nil {
		return s.fail("create resource server", err)
	}
	rs.CreatedAt, rs.UpdatedAt = created, updated
	return nil
}

func (s *Store) GetResourceServer(ctx context.Context, id string) (*store.ResourceServer, error) {
	rs, err := scanResourceServer(s.read.QueryRowContext(ctx, "SELECT "+resourceServerCols+" FROM resource_servers WHERE id = $1", id))
	if err != nil {
		return nil, s.fail("get resource server", err)
	}
	return rs, nil
}

func (s *Store) GetResourceServerByIdentifier(ctx context.Context, identifier string) (*store.ResourceServer, error) {
	rs, err := scanResourceServer(s.read.QueryRowContext(ctx, "SELECT "+resourceServerCols+" FROM resource_servers WHERE identifier = $1", identifier))
	if err != nil {
		return nil, s.fail("get resource server", err)
	}
	return rs, nil
}

func (s *Store) ListResourceServers(ctx context.Context, opts store.ListOptions) ([]*store.ResourceServer, int, error) {
	var (
		out   []*store.ResourceServer
		total int
	)
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, total, err = list(ctx, tx, resourceServerCols, "resource_servers", filter{}, "created_at, seq", opts,
			func(rows *sql.Rows) (*store.ResourceServer, error) { return scanResourceServer(rows) })
		return err
	})
	if err != nil {
		return nil, 0, s.fail("list resource servers", err)
	}
	return out, total, nil
}

// UpdateResourceServer replaces the document; rs.UpdatedAt must be the
// stored one, and becomes the new one.
func (s *Store) UpdateResourceServer(ctx context.Context, rs *store.ResourceServer) error {
	doc, err := resourceServerDocOf(rs)
	if err != nil {
		return s.fail("update resource server", err)
	}
	var created, updated int64
	err = s.write.QueryRowContext(ctx,
		"UPDATE resource_servers SET doc = $2, updated_at = "+laterMS(3)+" WHERE id = $1 AND updated_at = $4 RETURNING created_at, updated_at",
		rs.ID, doc, now().UnixMilli(), rs.UpdatedAt.UnixMilli()).Scan(&created, &updated)
	if err = s.staleOrMissing(ctx, err, "SELECT 1 FROM resource_servers WHERE id = $1", rs.ID); err != nil {
		return s.fail("update resource server", err)
	}
	rs.CreatedAt, rs.UpdatedAt = fromMS(created), fromMS(updated)
	return nil
}

// DeleteResourceServer removes the grants for the API in the same
// transaction: a grant must not outlive its API and come back to life
// when an API with the same identifier is created.
func (s *Store) DeleteResourceServer(ctx context.Context, id string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var identifier string
		if err := tx.QueryRowContext(ctx, "DELETE FROM resource_servers WHERE id = $1 RETURNING identifier", id).Scan(&identifier); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "DELETE FROM client_grants WHERE audience = $1", identifier)
		return err
	})
	if err != nil {
		return s.fail("delete resource server", err)
	}
	return nil
}
