package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gatehouse/gatehouse/internal/store"
)

// clientDoc is the part of a client kept in its JSON column.
type clientDoc struct {
	Name                           string            `json:"name"`
	Description                    string            `json:"description"`
	AppType                        string            `json:"app_type"`
	Callbacks                      []string          `json:"callbacks"`
	AllowedLogoutURLs              []string          `json:"allowed_logout_urls"`
	WebOrigins                     []string          `json:"web_origins"`
	GrantTypes                     []string          `json:"grant_types"`
	TokenEndpointAuthMethod        string            `json:"token_endpoint_auth_method"`
	IsFirstParty                   bool              `json:"is_first_party"`
	OIDCConformant                 bool              `json:"oidc_conformant"`
	IsTokenEndpointIPHeaderTrusted bool              `json:"is_token_endpoint_ip_header_trusted"`
	JWTConfiguration               json.RawMessage   `json:"jwt_configuration,omitempty"`
	RefreshToken                   json.RawMessage   `json:"refresh_token,omitempty"`
	ClientMetadata                 map[string]string `json:"client_metadata"`
	Extra                          json.RawMessage   `json:"extra,omitempty"`
	ManagementScopes               []string          `json:"management_scopes"`
	PrivateKeyJWTCredentials       []string          `json:"private_key_jwt_credentials"`
}

func clientDocOf(c *store.Client) (string, error) {
	return marshalDoc(clientDoc{
		Name:                           c.Name,
		Description:                    c.Description,
		AppType:                        c.AppType,
		Callbacks:                      c.Callbacks,
		AllowedLogoutURLs:              c.AllowedLogoutURLs,
		WebOrigins:                     c.WebOrigins,
		GrantTypes:                     c.GrantTypes,
		TokenEndpointAuthMethod:        c.TokenEndpointAuthMethod,
		IsFirstParty:                   c.IsFirstParty,
		OIDCConformant:                 c.OIDCConformant,
		IsTokenEndpointIPHeaderTrusted: c.IsTokenEndpointIPHeaderTrusted,
		JWTConfiguration:               c.JWTConfiguration,
		RefreshToken:                   c.RefreshToken,
		ClientMetadata:                 c.ClientMetadata,
		Extra:                          c.Extra,
		ManagementScopes:               c.ManagementScopes,
		PrivateKeyJWTCredentials:       c.PrivateKeyJWTCredentials,
	})
}

const clientCols = "client_id, secret_enc, doc, created_at, updated_at"

func scanClient(row interface{ Scan(...any) error }) (*store.Client, error) {
	var (
		c                store.Client
		doc              string
		created, updated int64
		d                clientDoc
	)
	if err := row.Scan(&c.ClientID, &c.SecretEnc, &doc, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		return nil, err
	}
	c.SecretEnc = fromBlob(c.SecretEnc)
	c.Name = d.Name
	c.Description = d.Description
	c.AppType = d.AppType
	c.Callbacks = d.Callbacks
	c.AllowedLogoutURLs = d.AllowedLogoutURLs
	c.WebOrigins = d.WebOrigins
	c.GrantTypes = d.GrantTypes
	c.TokenEndpointAuthMethod = d.TokenEndpointAuthMethod
	c.IsFirstParty = d.IsFirstParty
	c.OIDCConformant = d.OIDCConformant
	c.IsTokenEndpointIPHeaderTrusted = d.IsTokenEndpointIPHeaderTrusted
	c.JWTConfiguration = d.JWTConfiguration
	c.RefreshToken = d.RefreshToken
	c.ClientMetadata = d.ClientMetadata
	c.Extra = d.Extra
	c.ManagementScopes = d.ManagementScopes
	c.PrivateKeyJWTCredentials = d.PrivateKeyJWTCredentials
	c.CreatedAt = fromMS(created)
	c.UpdatedAt = fromMS(updated)
	return &c, nil
}

// CreateClient stores c; ErrConflict if its ClientID is taken.
func (s *Store) CreateClient(ctx context.Context, c *store.Client) error {
	doc, err := clientDocOf(c)
	if err != nil {
		return s.fail("create client", err)
	}
	created, updated := stamps(c.CreatedAt, c.UpdatedAt)
	_, err = s.write.ExecContext(ctx,
		"INSERT INTO clients ("+clientCols+") VALUES ($1, $2, $3, $4, $5)",
		c.ClientID, blob(c.SecretEnc), doc, created.UnixMilli(), updated.UnixMilli())
	if err != nil {
		return s.fail("create client", err)
	}
	c.CreatedAt, c.UpdatedAt = created, updated
	return nil
}

func (s *Store) GetClient(ctx context.Context, clientID string) (*store.Client, error) {
	c, err := scanClient(s.read.QueryRowContext(ctx, "SELECT "+clientCols+" FROM clients WHERE client_id = $1", clientID))
	if err != nil {
		return nil, s.fail("get client", err)
	}
	return c, nil
}

func (s *Store) ListClients(ctx context.Context, opts store.ListOptions) ([]*store.Client, int, error) {
	var (
		cs    []*store.Client
		total int
	)
	err := s.inReadTx(ctx, func(tx *sql.Tx) (err error) {
		cs, total, err = list(ctx, tx, clientCols, "clients", filter{}, "created_at, seq", opts,
			func(r *sql.Rows) (*store.Client, error) { return scanClient(r) })
		return err
	})
	if err != nil {
		return nil, 0, s.fail("list clients", err)
	}
	return cs, total, nil
}

// laterMS is the updated_at of a write at $N: now, or one millisecond
// past the stored value when that is not earlier, so that every write
// moves it forward and a write conditioned on the value read (UpdateClient,
// UpdateResourceServer, PutTenantSettings) can tell a row written since.
func laterMS(n int) string {
	return fmt.Sprintf("CASE WHEN $%d > updated_at THEN $%d ELSE updated_at + 1 END", n, n)
}

// staleOrMissing tells why an UPDATE ... WHERE updated_at = <the value
// read> changed no row (err is sql.ErrNoRows): ErrConflict when the row
// existsSQL selects is still there, so was written since it was read;
// sql.ErrNoRows when it is gone. Any other err is returned as is.
func (s *Store) staleOrMissing(ctx context.Context, err error, existsSQL string, args ...any) error {
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	var one int
	if err := s.write.QueryRowContext(ctx, existsSQL, args...).Scan(&one); err != nil {
		return err
	}
	return store.ErrConflict
}

// UpdateClient replaces every field but CreatedAt, which it reads back
// into c, and the secret when c.SecretEnc is nil, which it reads back
// too; c.UpdatedAt must be the stored one, and becomes the new one.
func (s *Store) UpdateClient(ctx context.Context, c *store.Client) error {
	doc, err := clientDocOf(c)
	if err != nil {
		return s.fail("update client", err)
	}
	var (
		created, updated int64
		secret           []byte
	)
	err = s.write.QueryRowContext(ctx,
		"UPDATE clients SET secret_enc = COALESCE($2, secret_enc), doc = $3, updated_at = "+laterMS(4)+
			" WHERE client_id = $1 AND updated_at = $5 RETURNING created_at, updated_at, secret_enc",
		c.ClientID, blob(c.SecretEnc), doc, now().UnixMilli(), c.UpdatedAt.UnixMilli()).Scan(&created, &updated, &secret)
	if err = s.staleOrMissing(ctx, err, "SELECT 1 FROM clients WHERE client_id = $1", c.ClientID); err != nil {
		return s.fail("update client", err)
	}
	c.CreatedAt, c.UpdatedAt, c.SecretEnc = fromMS(created), fromMS(updated), fromBlob(secret)
	return nil
}

// SetClientSecret also moves updated_at forward.
func (s *Store) SetClientSecret(ctx context.Context, clientID string, secretEnc []byte) error {
	res, err := s.write.ExecContext(ctx, "UPDATE clients SET secret_enc = $2, updated_at = "+laterMS(3)+" WHERE client_id = $1",
		clientID, blob(secretEnc), now().UnixMilli())
	if err == nil {
		err = affected(res)
	}
	if err != nil {
		return s.fail("set client secret", err)
	}
	return nil
}

// DeleteClient removes the client, its refresh tokens, and its
// enablements, grants and credentials (ON DELETE CASCADE). On PostgreSQL
// the enablements go before the client too: a connection's update
// deletes its enablements and inserts them again, whose foreign key
// waits for the client's row, and a deletion that held the row while its
// cascade waited for such an enablement deadlocked with the update. On
// SQLite the tokens go in chunks first (deleteInChunks).
func (s *Store) DeleteClient(ctx context.Context, clientID string) error {
	if s.d.name == sqliteDialect.name {
		if err := s.deleteInChunks(ctx, purgeClient, clientID); err != nil {
			return s.fail("delete client", err)
		}
		return nil
	}
	err := s.deleteOwner(ctx, clientID, "DELETE FROM clients WHERE client_id = $1",
		s.deleteRefreshSQL("client_id = $1"), "DELETE FROM connection_clients WHERE client_id = $1")
	if err != nil {
		return s.fail("delete client", err)
	}
	return nil
}

// deleteOwner runs del, which deletes the row of a user or a client, id
// ($1), on PostgreSQL in one transaction after the statements first, which
// delete rows that refer to it, its refresh tokens (in seq order)
// among them. ON DELETE CASCADE would delete the tokens too, but after
// the row, in its plan's order (by the user's index, which orders them by
// creation time), and so deadlocked with a revocation of them. Tokens
// first also keeps the order of an exchange, which locks its token and
// then the user and the client its successor refers to: a deletion that
// waits for the token holds neither, so the exchange completes, and the
// cascade deletes the successor the tokens' DELETE did not see. An
// exchange that comes after finds its token gone (invalid_grant).
func (s *Store) deleteOwner(ctx context.Context, id, del string, first ...string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, q := range first {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, del, id)
		if err != nil {
			return err
		}
		return affected(res)
	})
}
