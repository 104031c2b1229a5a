package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// connectionDoc is the part of a connection kept in its JSON column.
type connectionDoc struct {
	DisplayName        string            `json:"display_name"`
	IsDomainConnection bool              `json:"is_domain_connection"`
	ShowAsButton       bool              `json:"show_as_button"`
	Realms             []string          `json:"realms"`
	Metadata           map[string]string `json:"metadata"`
}

func connectionDocOf(c *store.Connection) (doc string, options any, err error) {
	if options, err = rawJSON("options", c.Options); err != nil {
		return "", nil, err
	}
	doc, err = marshalDoc(connectionDoc{
		DisplayName:        c.DisplayName,
		IsDomainConnection: c.IsDomainConnection,
		ShowAsButton:       c.ShowAsButton,
		Realms:             c.Realms,
		Metadata:           c.Metadata,
	})
	return doc, options, err
}

const connectionCols = "id, name, strategy, options, secret_enc, doc, created_at, updated_at, tenant_generation"

func scanConnection(row interface{ Scan(...any) error }) (*store.Connection, error) {
	var (
		c                store.Connection
		options          sql.NullString
		doc              string
		created, updated int64
		d                connectionDoc
	)
	if err := row.Scan(&c.ID, &c.Name, &c.Strategy, &options, &c.SecretEnc, &doc, &created, &updated, &c.TenantGeneration); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		return nil, err
	}
	c.Options = fromRawJSON(options)
	c.SecretEnc = fromBlob(c.SecretEnc)
	c.DisplayName = d.DisplayName
	c.IsDomainConnection = d.IsDomainConnection
	c.ShowAsButton = d.ShowAsButton
	c.Realms = d.Realms
	c.Metadata = d.Metadata
	c.CreatedAt = fromMS(created)
	c.UpdatedAt = fromMS(updated)
	return &c, nil
}

// CreateConnection stores c and enables its EnabledClients.
func (s *Store) CreateConnection(ctx context.Context, c *store.Connection) error {
	doc, options, err := connectionDocOf(c)
	if err != nil {
		return s.fail("create connection", err)
	}
	created, updated := stamps(c.CreatedAt, c.UpdatedAt)
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			"INSERT INTO connections ("+connectionCols+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
			c.ID, c.Name, c.Strategy, options, blob(c.SecretEnc), doc, created.UnixMilli(), updated.UnixMilli(), c.TenantGeneration)
		if err != nil {
			return err
		}
		return enableClients(ctx, tx, c.ID, c.EnabledClients)
	})
	if err != nil {
		return s.fail("create connection", err)
	}
	c.CreatedAt, c.UpdatedAt = created, updated
	return nil
}

// enableClients inserts enablements in a fixed order, so that concurrent
// transactions lock rows in the same order and cannot deadlock.
func enableClients(ctx context.Context, tx *sql.Tx, connectionID string, clientIDs []string) error {
	ids := slices.Clone(clientIDs)
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		_, err := tx.ExecContext(ctx,
			"INSERT INTO connection_clients (connection_id, client_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
			connectionID, id)
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) GetConnection(ctx context.Context, id string) (*store.Connection, error) {
	c, err := s.getConnection(ctx, "id", id)
	if err != nil {
		return nil, s.fail("get connection", err)
	}
	return c, nil
}

func (s *Store) GetConnectionByName(ctx context.Context, name string) (*store.Connection, error) {
	c, err := s.getConnection(ctx, "name", name)
	if err != nil {
		return nil, s.fail("get connection", err)
	}
	return c, nil
}

// getConnection reads one connection by a unique column and its enabled
// clients in one read transaction, so both come from the same snapshot.
func (s *Store) getConnection(ctx context.Context, col, v string) (*store.Connection, error) {
	var c *store.Connection
	err := s.inReadTx(ctx, func(tx *sql.Tx) (err error) {
		c, err = scanConnection(tx.QueryRowContext(ctx, "SELECT "+connectionCols+" FROM connections WHERE "+col+" = $1", v))
		if err != nil {
			return err
		}
		return fillEnabledClients(ctx, tx, []*store.Connection{c})
	})
	return c, err
}

// fillEnabledClients sets EnabledClients of each connection, sorted, and
// empty rather than nil when none is enabled.
func fillEnabledClients(ctx context.Context, tx *sql.Tx, cs []*store.Connection) error {
	if len(cs) == 0 {
		return nil
	}
	var f filter
	byID := make(map[string]*store.Connection, len(cs))
	ids := make([]string, 0, len(cs))
	for _, c := range cs {
		c.EnabledClients = []string{}
		byID[c.ID] = c
		ids = append(ids, c.ID)
	}
	f.in("connection_id", ids)
	rows, err := tx.QueryContext(ctx,
		"SELECT connection_id, client_id FROM connection_clients"+f.where()+" ORDER BY connection_id, client_id", f.args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var conn, client string
		if err := rows.Scan(&conn, &client); err != nil {
			return err
		}
		c := byID[conn]
		c.EnabledClients = append(c.EnabledClients, client)
	}
	return rows.Err()
}

func (s *Store) ListConnections(ctx context.Context, f store.ConnectionFilter, opts store.ListOptions) ([]*store.Connection, int, error) {
	var w filter
	if len(f.Strategies) > 0 {
		w.in("strategy", f.Strategies)
	}
	if f.Name != "" {
		w.eq("name", f.Name)
	}
	var (
		cs    []*store.Connection
		total int
	)
	err := s.inReadTx(ctx, func(tx *sql.Tx) (err error) {
		cs, total, err = list(ctx, tx, connectionCols, "connections", w, "created_at, seq", opts,
			func(r *sql.Rows) (*store.Connection, error) { return scanConnection(r) })
		if err != nil {
			return err
		}
		return fillEnabledClients(ctx, tx, cs)
	})
	if err != nil {
		return nil, 0, s.fail("list connections", err)
	}
	return cs, total, nil
}

// writeConnection writes c's mutable fields, and its enablements when
// c.EnabledClients is non-nil, and returns its created_at.
func writeConnection(ctx context.Context, tx *sql.Tx, c *store.Connection, doc string, options any, updated time.Time) (int64, error) {
	var created int64
	err := tx.QueryRowContext(ctx,
		"UPDATE connections SET options = $2, secret_enc = $3, doc = $4, updated_at = $5, tenant_generation = $6 WHERE id = $1 RETURNING created_at",
		c.ID, options, blob(c.SecretEnc), doc, updated.UnixMilli(), c.TenantGeneration).Scan(&created)
	if err != nil || c.EnabledClients == nil {
		return created, err
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM connection_clients WHERE connection_id = $1", c.ID); err != nil {
		return 0, err
	}
	return created, enableClients(ctx, tx, c.ID, c.EnabledClients)
}

// PatchConnection reads the connection in the write transaction, locking
// its row on PostgreSQL (SQLite has one writer), so that two
// administrators' changes cannot both start from the same state and the
// second undo the first.
func (s *Store) PatchConnection(ctx context.Context, id string, patch func(*store.Connection, store.ClientLookup) error) (*store.Connection, error) {
	read := "SELECT " + connectionCols + " FROM connections WHERE id = $1"
	if s.d.name != sqliteDialect.name {
		read += " FOR UPDATE"
	}
	var c *store.Connection
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := scanConnection(tx.QueryRowContext(ctx, read, id))
		if err != nil {
			return err
		}
		if err := fillEnabledClients(ctx, tx, []*store.Connection{cur}); err != nil {
			return err
		}
		p := *cur
		p.EnabledClients = slices.Clone(cur.EnabledClients)
		client := func(clientID string) (*store.Client, error) {
			c, err := scanClient(tx.QueryRowContext(ctx, "SELECT "+clientCols+" FROM clients WHERE client_id = $1", clientID))
			if err != nil {
				return nil, s.fail("get client", err)
			}
			return c, nil
		}
		if err := patch(&p, client); err != nil {
			return err
		}
		p.ID, p.Name, p.Strategy, p.CreatedAt = cur.ID, cur.Name, cur.Strategy, cur.CreatedAt
		doc, options, err := connectionDocOf(&p)
		if err != nil {
			return err
		}
		p.UpdatedAt = now()
		if _, err := writeConnection(ctx, tx, &p, doc, options, p.UpdatedAt); err != nil {
			return err
		}
		c = &p
		return fillEnabledClients(ctx, tx, []*store.Connection{c})
	})
	if err != nil {
		return nil, s.fail("patch connection", err)
	}
	return c, nil
}

// DeleteConnection removes the connection, its enablements (ON DELETE
// CASCADE) and the refresh tokens issued through it, with those stored
// before tokens recorded their connection (migration 8) whose user's
// latest login went through it, and records it in deleted_connections,
// whose users the background purge deletes afterwards
// (PurgeDeletedConnectionUsers), as Auth0 does. A deleted connection ends its users'
// sessions, as at Auth0, where it cannot be undone: a connection made
// again under the name, perhaps for another tenant, must not bring them
// back. The tokens go before the connection, as a client's and a user's
// go before them (deleteOwner): a client's deletion that held tokens of
// the connection and waited for its enablement would otherwise deadlock
// with this one, holding the enablement and waiting for the tokens. On
// SQLite the tokens go in chunks first (deleteInChunks).
func (s *Store) DeleteConnection(ctx context.Context, id string) error {
	if s.d.name == sqliteDialect.name {
		if err := s.deleteInChunks(ctx, purgeConnection, id); err != nil {
			return s.fail("delete connection", err)
		}
		return nil
	}
	var name string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		name, err = s.deleteConnectionTx(ctx, tx, id)
		return err
	})
	if err == nil {
		// An exchange that rotated one of them while the delete waited
		// inserted a successor that the delete's snapshot missed; every
		// successor carries the connection.
		_, err = s.deleteUntilGone(ctx, "connection", name)
	}
	if err != nil {
		return s.fail("delete connection", err)
	}
	return nil
}

// deleteConnectionTx is DeleteConnection's transaction, which returns the
// connection's name, and sql.ErrNoRows when there is none.
func (s *Store) deleteConnectionTx(ctx context.Context, tx *sql.Tx, id string) (string, error) {
	var name string
	if err := tx.QueryRowContext(ctx, "SELECT name FROM connections WHERE id = $1", id).Scan(&name); err != nil {
		return "", err
	}
	if _, err := tx.ExecContext(ctx, s.deleteConnectionRefreshSQL(), name); err != nil {
		return "", err
	}
	res, err := tx.ExecContext(ctx, "DELETE FROM connections WHERE id = $1", id)
	if err != nil {
		return "", err
	}
	if err := affected(res); err != nil {
		return "", err
	}
	// The database's clock, as the purge's comparison: replicas' clocks
	// may disagree.
	_, err = tx.ExecContext(ctx, "INSERT INTO deleted_connections (name, deleted_at) VALUES ($1, "+s.d.nowMS+")", name)
	return name, err
}

// deleteConnectionRefreshSQL deletes the refresh tokens of connection $1.
func (s *Store) deleteConnectionRefreshSQL() string {
	return s.deleteRefreshSQL(s.connectionRefreshCond())
}

// connectionRefreshCond matches the refresh tokens of connection $1:
// those issued through it (refresh_tokens_connection, migration 12), and
// those stored before tokens recorded their connection (migration 8)
// whose user's latest login went through it, found through the users of
// the connection. One OR of the two read every token on PostgreSQL,
// whose planner serves no OR with a subquery term from indexes. The +
// keeps SQLite, without statistics, on the users' tokens: it would read
// every legacy token of every connection through refresh_tokens_connection.
func (s *Store) connectionRefreshCond() string {
	return "seq IN (" + s.connectionRefreshSeqs() + ")"
}

// connectionRefreshSeqs selects the seq of connectionRefreshCond's tokens,
// those issued through the connection first: under a LIMIT, SQLite reads
// the legacy tokens only once those are exhausted.
func (s *Store) connectionRefreshSeqs() string {
	return "SELECT seq FROM refresh_tokens WHERE connection = $1 UNION ALL " +
		"SELECT r.seq FROM users u JOIN refresh_tokens r ON r.user_id = u.user_id WHERE u.connection = $1 AND " +
		s.d.unindexed("r.connection") + " = ''"
}

func (s *Store) SetConnectionClients(ctx context.Context, connectionID string, status map[string]bool) error {
	var enable, disable []string
	for id, on := range status {
		if on {
			enable = append(enable, id)
		} else {
			disable = append(disable, id)
		}
	}
	slices.Sort(disable)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, "SELECT 1 FROM connections WHERE id = $1", connectionID).Scan(&one); err != nil {
			return err
		}
		for _, id := range disable {
			_, err := tx.ExecContext(ctx,
				"DELETE FROM connection_clients WHERE connection_id = $1 AND client_id = $2", connectionID, id)
			if err != nil {
				return err
			}
		}
		return enableClients(ctx, tx, connectionID, enable)
	})
	if err != nil {
		return s.fail("set connection clients", err)
	}
	return nil
}

func (s *Store) ConnectionEnabledForClient(ctx context.Context, connectionID, clientID string) (bool, error) {
	var ok bool
	err := s.read.QueryRowContext(ctx,
		"SELECT EXISTS (SELECT 1 FROM connection_clients WHERE connection_id = $1 AND client_id = $2)",
		connectionID, clientID).Scan(&ok)
	if err != nil {
		return false, s.fail("connection enabled for client", err)
	}
	return ok, nil
}
