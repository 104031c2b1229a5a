package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/secrets"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// bootstrapFixture is a fresh store of backend, a keyring and a logger
// for bootstrapAdmin.
func bootstrapFixture(t *testing.T, backend string) (store.Store, *secrets.Keyring, *slog.Logger) {
	t.Helper()
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	kr, err := secrets.NewKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	return storetest.Open(t, backend), kr, slog.New(slog.NewTextHandler(io.Discard, nil))
}

// TestBootstrapAdminAtOnce: replicas starting together each update the
// configured admin application, on both backends. The store refuses a
// client write over another made since its read (store.ErrConflict); each
// start must read again and succeed rather than fail, and the application
// ends with the configured secret.
func TestBootstrapAdminAtOnce(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			st, kr, logger := bootstrapFixture(t, backend)
			cfg := &config.Config{AdminClientID: "admin-app", AdminClientSecret: "admin-secret-" + rand.Text()}
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

// createdMeanwhile is a store on which another replica creates the
// application between this start's read and its create: the first read
// finds none.
type createdMeanwhile struct {
	store.ClientStore
	read bool
}

func (s *createdMeanwhile) GetClient(ctx context.Context, id string) (*store.Client, error) {
	if !s.read {
		s.read = true
		return nil, store.ErrNotFound
	}
	return s.ClientStore.GetClient(ctx, id)
}

// TestBootstrapAdminCreatedMeanwhile: a start whose create finds the
// application another replica created since its read updates it to its
// own configuration, as if it had read it, rather than leave the other's
// secret in place.
func TestBootstrapAdminCreatedMeanwhile(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			st, kr, logger := bootstrapFixture(t, backend)
			other := &config.Config{AdminClientID: "admin-app", AdminClientSecret: "other-replica-secret-" + rand.Text()}
			if err := bootstrapAdmin(t.Context(), other, st, kr, logger, io.Discard); err != nil {
				t.Fatal(err)
			}
			cfg := &config.Config{AdminClientID: "admin-app", AdminClientSecret: "this-replica-secret-" + rand.Text()}
			if err := bootstrapAdmin(t.Context(), cfg, &createdMeanwhile{ClientStore: st}, kr, logger, io.Discard); err != nil {
				t.Fatal(err)
			}
			c, err := st.GetClient(t.Context(), "admin-app")
			if err != nil {
				t.Fatal(err)
			}
			if got, err := kr.Open(c.SecretEnc, store.ClientSecretAAD(c.ClientID)); err != nil || !bytes.Equal(got, []byte(cfg.AdminClientSecret)) {
				t.Errorf("admin secret after a start that lost the create: %q, %v; want this start's", got, err)
			}
		})
	}
}

// createAlwaysConflicts refuses every create as a conflict while no read
// finds the application (a unique value other than the client_id taken),
// for up to limit creates, then fails otherwise.
type createAlwaysConflicts struct {
	store.ClientStore
	creates, limit int
}

var errGaveUp = errors.New("the store gave up refusing creates")

func (s *createAlwaysConflicts) GetClient(context.Context, string) (*store.Client, error) {
	return nil, store.ErrNotFound
}

func (s *createAlwaysConflicts) CreateClient(context.Context, *store.Client) error {
	s.creates++
	if s.creates >= s.limit {
		return errGaveUp
	}
	return store.ErrConflict
}

// TestBootstrapAdminCreateRefusedForAnotherReason: a create refused as a
// conflict while the read never finds the application ends the start
// with an error after a few rounds rather than spin.
func TestBootstrapAdminCreateRefusedForAnotherReason(t *testing.T) {
	backing, kr, logger := bootstrapFixture(t, "sqlite")
	st := &createAlwaysConflicts{ClientStore: backing, limit: 1000}
	cfg := &config.Config{AdminClientID: "admin-app", AdminClientSecret: "secret-" + rand.Text()}
	err := bootstrapAdmin(t.Context(), cfg, st, kr, logger, io.Discard)
	if !errors.Is(err, store.ErrConflict) || st.creates > maxAdminCreateRefusals {
		t.Errorf("after %d creates: %v; want ErrConflict within %d", st.creates, err, maxAdminCreateRefusals)
	}
}
