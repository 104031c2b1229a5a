package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/gatehouse/gatehouse/internal/store"
)

// GetTenantSettings returns the stored document, or {} with a zero
// UpdatedAt before the first Put.
func (s *Store) GetTenantSettings(ctx context.Context) (*store.TenantSettings, error) {
	var (
		doc     string
		updated int64
	)
	err := s.read.QueryRowContext(ctx, "SELECT doc, updated_at FROM tenant_settings WHERE id = 1").Scan(&doc, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return &store.TenantSettings{Doc: json.RawMessage("{}")}, nil
	}
	if err != nil {
		return nil, s.fail("get tenant settings", err)
	}
	return &store.TenantSettings{Doc: json.RawMessage(doc), UpdatedAt: fromMS(updated)}, nil
}

// PutTenantSettings replaces the document and sets UpdatedAt to now.
func (s *Store) PutTenantSettings(ctx context.Context, ts *store.TenantSettings) error {
	if len(ts.Doc) == 0 || !json.Valid(ts.Doc) {
		return s.fail("put tenant settings", errors.New("document is not valid JSON"))
	}
	updated := now()
	_, err := s.write.ExecContext(ctx,
		`INSERT INTO tenant_settings (id, doc, updated_at) VALUES (1, $1, $2)
		 ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at`,
		string(ts.Doc), updated.UnixMilli())
	if err != nil {
		return s.fail("put tenant settings", err)
	}
	ts.UpdatedAt = updated
	return nil
}
