package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"

	"github.com/gatehouse/gatehouse/internal/store"
)

// sealedColumns lists every column that holds a sealed blob, with the
// additional data its owner binds it to.
var sealedColumns = []struct {
	table, key, column string
	aad                func(string) []byte
}{
	{"clients", "client_id", "secret_enc", store.ClientSecretAAD},
	{"connections", "id", "secret_enc", store.ConnectionSecretAAD},
	{"signing_keys", "kid", "private_enc", store.SigningKeyAAD},
	{"users", "user_id", "idp_tokens_enc", store.UserIdPTokensAAD},
}

// RewrapSecrets replaces every sealed blob with fn(aad, blob), all in one
// transaction: when fn fails for any blob, nothing changes. A row that a
// running server rewrote meanwhile is left alone (compare-and-swap on
// the old blob): it was sealed under that server's current key. It
// returns how many blobs it replaced.
func (s *Store) RewrapSecrets(ctx context.Context, fn func(aad, blob []byte) ([]byte, error)) (int, error) {
	n := 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, c := range sealedColumns {
			type row struct {
				key  string
				blob []byte
			}
			rows, err := tx.QueryContext(ctx, fmt.Sprintf("SELECT %s, %s FROM %s WHERE %s IS NOT NULL", c.key, c.column, c.table, c.column))
			if err != nil {
				return err
			}
			var all []row
			for rows.Next() {
				var r row
				if err := rows.Scan(&r.key, &r.blob); err != nil {
					rows.Close()
					return err
				}
				all = append(all, r)
			}
			if err := rows.Close(); err != nil {
				return err
			}
			for _, r := range all {
				out, err := fn(c.aad(r.key), r.blob)
				if err != nil {
					// The key names the row, never its content.
					return fmt.Errorf("%s %s: %w", c.table, r.key, err)
				}
				if bytes.Equal(out, r.blob) {
					continue
				}
				res, err := tx.ExecContext(ctx, fmt.Sprintf("UPDATE %s SET %s = $1 WHERE %s = $2 AND %s = $3", c.table, c.column, c.key, c.column),
					out, r.key, r.blob)
				if err != nil {
					return err
				}
				if k, err := res.RowsAffected(); err == nil && k == 1 {
					n++
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlstore: rewrap secrets: %w", err)
	}
	return n, nil
}
