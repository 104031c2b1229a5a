package server

import (
	"bytes"
	"crypto/rand"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/secrets"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestBootstrapAdminAtOnce: replicas starting together each update the
// configured admin application, on both backends. The store refuses a
// client write over another made since its read (store.ErrConflict); each
// start must read again and succeed rather than fail, and the application
// ends with the configured secret.
func TestBootstrapAdminAtOnce(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			st := storetest.Open(t, backend)
			master := make([]byte, 32)
			_, _ = rand.Read(master)
			kr, err := secrets.NewKeyring(master)
			if err != nil {
				t.Fatal(err)
			}
			cfg := &config.Config{AdminClientID: "admin-app", AdminClientSecret: "admin-secret-" + rand.Text()}
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			if err := bootstrapAdmin(t.Context(), cfg, st, kr, logger, io.Discard); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					if err := bootstrapAdmin(t.Context(), cfg, st, kr, logger, io.Discard); err != nil {
						t.Errorf("a start beside others: %v", err)
					}
				})
			}
			wg.Wait()
			c, err := st.GetClient(t.Context(), "admin-app")
			if err != nil {
				t.Fatal(err)
			}
			if got, err := kr.Open(c.SecretEnc, store.ClientSecretAAD(c.ClientID)); err != nil || !bytes.Equal(got, []byte(cfg.AdminClientSecret)) {
				t.Errorf("admin secret after the starts: %q, %v", got, err)
			}
		})
	}
}
