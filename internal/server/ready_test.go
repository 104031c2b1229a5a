package server

import (
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestReadyzWhenKeysCannotLoad: a replica whose reload finds signing keys
// it cannot unseal (sealed under a master key it lacks, say) keeps signing
// with keys the others may have rotated away, so /readyz takes it out of
// the load balancer until a reload succeeds.
func TestReadyzWhenKeysCannotLoad(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			dsn := storetest.DSN(t, backend)
			s := purgeTestServerOn(t, dsn, 0)
			ts := httptest.NewServer(s.Handler())
			defer ts.Close()
			ready := func() int {
				t.Helper()
				resp, err := http.Get(ts.URL + "/readyz")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			if got := ready(); got != http.StatusOK {
				t.Fatalf("/readyz before: %d", got)
			}
			driver, conn := "pgx", dsn
			if backend == storetest.SQLite {
				driver, conn = "sqlite", strings.TrimPrefix(dsn, "sqlite:")
			}
			db, err := sql.Open(driver, conn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var good []byte
			if err := db.QueryRowContext(ctx, "SELECT private_enc FROM signing_keys WHERE state = 'current'").Scan(&good); err != nil {
				t.Fatal(err)
			}
			set := func(enc []byte) {
				t.Helper()
				if _, err := db.ExecContext(ctx, "UPDATE signing_keys SET private_enc = $1 WHERE state = 'current'", enc); err != nil {
					t.Fatal(err)
				}
			}
			set([]byte("sealed under a key this replica does not hold"))
			if err := s.keys.Reload(ctx); err == nil {
				t.Fatal("reload of an unsealable key succeeded")
			}
			if got := ready(); got != http.StatusServiceUnavailable {
				t.Errorf("/readyz with keys that do not load: %d, want 503", got)
			}
			set(good)
			if err := s.keys.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			if got := ready(); got != http.StatusOK {
				t.Errorf("/readyz after a good reload: %d, want 200", got)
			}
		})
	}
}
