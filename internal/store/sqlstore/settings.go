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

// PutTenantSettings replaces the document while the stored one is the one
// ts.UpdatedAt says was read (zero: none stored), else ErrConflict; it
// moves UpdatedAt forward.
func (s *Store) PutTenantSettings(ctx context.Context, ts *store.TenantSettings) error {
	if len(ts.Doc) == 0 || !json.Valid(ts.Doc) {
		return s.fail("put tenant settings", errors.New("document is not valid JSON"))
	}
	var (
		updated int64
		err     error
	)
	if ts.UpdatedAt.IsZero() {
		err = s.write.QueryRowContext(ctx,
			"INSERT INTO tenant_settings (id, doc, updated_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING RETURNING updated_at",
			string(ts.Doc), now().UnixMilli()).Scan(&updated)
	} else {
		err = s.write.QueryRowContext(ctx,
			"UPDATE tenant_settings SET doc = $1, updated_at = "+laterMS(2)+" WHERE id = 1 AND updated_at = $3 RETURNING updated_at",
			string(ts.Doc), now().UnixMilli(), ts.UpdatedAt.UnixMilli()).Scan(&updated)
	}
	if errors.Is(err, sql.ErrNoRows) {
		// The single row is never deleted: it was written since.
		err = store.ErrConflict
	}
	if err != nil {
		return s.fail("put tenant settings", err)
	}
	ts.UpdatedAt = fromMS(updated)
	return nil
}
