package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// ownerPurgeTokens is more refresh tokens than one chunk of a deletion on
// SQLite, so that a deletion runs several.
const ownerPurgeTokens = 650

// testOwnerDeleteRefusesAtOnce: while a user, a client or a connection
// with many refresh tokens is being deleted, none of its tokens can be
// exchanged or read once any of them is gone, and when the deletion
// returns all of them are gone, with the owner, and nothing is left for
// the background purge. An owner made again under the name gets none of
// them back.
func testOwnerDeleteRefusesAtOnce(t *testing.T, s store.Store) {
	for _, c := range []struct {
		owner    string
		del      func(t *testing.T) error
		recreate func(t *testing.T)
		gone     func(t *testing.T) error
	}{
		{"user", func(t *testing.T) error { return s.DeleteUser(t.Context(), "u-user") },
			func(t *testing.T) {
				_, err := s.UpsertUser(t.Context(), fullUser("u-user"))
				must(t, err)
			},
			func(t *testing.T) error { _, err := s.GetUser(t.Context(), "u-user"); return err }},
		{"client", func(t *testing.T) error { return s.DeleteClient(t.Context(), "c-client") },
			func(t *testing.T) { must(t, s.CreateClient(t.Context(), fullClient("c-client"))) },
			func(t *testing.T) error { _, err := s.GetClient(t.Context(), "c-client"); return err }},
		{"connection", func(t *testing.T) error { return s.DeleteConnection(t.Context(), "con-connection") },
			func(t *testing.T) {
				must(t, s.CreateConnection(t.Context(), fullConnection("con-again", "conn-connection", "c-connection")))
			},
			func(t *testing.T) error { _, err := s.GetConnection(t.Context(), "con-connection"); return err }},
	} {
		t.Run(c.owner, func(t *testing.T) {
			ctx := t.Context()
			client, user, conn := "c-"+c.owner, "u-"+c.owner, "conn-"+c.owner
			must(t, s.CreateClient(ctx, fullClient(client)))
			_, err := s.UpsertUser(ctx, fullUser(user))
			must(t, err)
			must(t, s.CreateConnection(ctx, fullConnection("con-"+c.owner, conn, client)))
			start := time.Now().UTC().Add(-time.Hour)
			ids := make([]string, ownerPurgeTokens)
			for i := range ids {
				ids[i] = fmt.Sprintf("%s-%d", c.owner, i)
				at := start.Add(time.Duration(i) * time.Millisecond)
				must(t, s.CreateRefreshToken(ctx, &store.RefreshToken{ID: ids[i], SecretHash: []byte("hash"), ClientID: client, UserID: user,
					Audience: "urn:a", Scope: "openid offline_access", CreatedAt: at, IdleExpiresAt: ptr(at.Add(2 * time.Hour)),
					Connection: conn}))
			}
			first, last := ids[0], ids[len(ids)-1]
			done := make(chan error, 1)
			go func() { done <- c.del(t) }()
			exchange := func() error {
				now := time.Now().UTC()
				return s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: last, Now: now, IdleExpiresAt: ptr(now.Add(time.Hour))})
			}
		watch:
			for {
				select {
				case err := <-done:
					must(t, err)
					break watch
				default:
				}
				if _, err := s.GetRefreshToken(ctx, first); err == nil {
					continue
				}
				// The deletion has begun: the rest are refused already.
				if err := exchange(); err == nil {
					t.Fatalf("token %s exchanged after %s was deleted", last, first)
				}
				if _, err := s.GetRefreshToken(ctx, last); err == nil {
					t.Fatalf("token %s read after %s was deleted", last, first)
				}
				if _, _, err := s.GetRefreshTokenWithUser(ctx, last); err == nil {
					t.Fatalf("token %s read with its user after %s was deleted", last, first)
				}
			}
			wantErr(t, c.owner+" after its deletion", c.gone(t), store.ErrNotFound)
			wantErr(t, "second deletion of the "+c.owner, c.del(t), store.ErrNotFound)
			c.recreate(t)
			wantErr(t, "exchange after the "+c.owner+" was made again", exchange(), store.ErrNotFound)
			for _, id := range ids {
				if _, err := s.GetRefreshToken(ctx, id); err == nil {
					t.Fatalf("token %s of the deleted %s is left", id, c.owner)
				}
			}
			n, more, err := s.PurgeDeletedOwnerTokens(ctx, 500)
			must(t, err)
			if n != 0 || more {
				t.Errorf("PurgeDeletedOwnerTokens after the deletion: %d deleted, more %v; want nothing left to do", n, more)
			}
		})
	}
}
