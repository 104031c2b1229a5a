package sqlstore_test

import (
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// ownerFixture stores client c-name, user u-name of connection
// conn-name, that connection (con-name, enabled for the client), and n
// refresh tokens of the
// three whose creation times fall as seq rises and whose rows, refreshed
// in reverse, lie in the table and in its indexes in reverse too: any
// plan meets them in the reverse of seq order. It returns their ids in
// seq order.
func ownerFixture(t *testing.T, s *sqlstore.Store, name string, n int) []string {
	t.Helper()
	ctx := t.Context()
	conn := "conn-" + name
	if err := s.CreateClient(ctx, &store.Client{ClientID: "c-" + name, Callbacks: []string{"https://x.example"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpsertUser(ctx, &store.User{UserID: "u-" + name, Connection: conn, Email: name + "@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateConnection(ctx, &store.Connection{ID: "con-" + name, Name: conn, Strategy: "waad", EnabledClients: []string{"c-" + name}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", name, i)
		at := now.Add(-time.Duration(i) * time.Second)
		if err := s.CreateRefreshToken(ctx, &store.RefreshToken{ID: ids[i], SecretHash: []byte("hash"), ClientID: "c-" + name,
			UserID: "u-" + name, Audience: "urn:a", CreatedAt: at, IdleExpiresAt: ptr(at.Add(time.Hour)), Connection: conn}); err != nil {
			t.Fatal(err)
		}
	}
	for i := n - 1; i >= 0; i-- {
		// A refresh of a non-rotating token writes its indexed idle
		// expiry: a new row version, and new index entries.
		if err := s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: ids[i], Now: now, IdleExpiresAt: ptr(now.Add(time.Hour))}); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func ptr[T any](v T) *T { return &v }

// holdRows begins a transaction on db that locks the rows q selects, and
// returns it with its backend's pid.
func holdRows(t *testing.T, db *sql.DB, q string, args ...any) (*sql.Tx, int) {
	t.Helper()
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	var pid int
	if err := tx.QueryRowContext(t.Context(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(t.Context(), q, args...); err != nil {
		t.Fatal(err)
	}
	return tx, pid
}

// blockedBy waits until a backend other than those of except waits for
// a lock that one of pids holds, and returns its pid.
func blockedBy(t *testing.T, db *sql.DB, pids []int, except ...int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var pid int
		err := db.QueryRowContext(t.Context(), `SELECT pid FROM pg_stat_activity
			WHERE pg_blocking_pids(pid) && $1::int[] AND pid <> ALL ($2::int[]) LIMIT 1`, pids, append([]int{}, except...)).Scan(&pid)
		if err == nil {
			return pid
		}
		if !errors.Is(err, sql.ErrNoRows) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no backend waits for %v", pids)
	return 0
}

func openPostgres(t *testing.T) (*sqlstore.Store, *sql.DB) {
	t.Helper()
	dsn := storetest.DSN(t, storetest.Postgres)
	s := openRaw(t, dsn)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return s, db
}

// ownerDeletes are the deletions that take refresh tokens with them.
func ownerDeletes(s *sqlstore.Store) []struct {
	owner string
	del   func(t *testing.T, name string) error
} {
	return []struct {
		owner string
		del   func(t *testing.T, name string) error
	}{
		{"user", func(t *testing.T, name string) error { return s.DeleteUser(t.Context(), "u-"+name) }},
		{"client", func(t *testing.T, name string) error { return s.DeleteClient(t.Context(), "c-"+name) }},
		{"connection", func(t *testing.T, name string) error { return s.DeleteConnection(t.Context(), "con-"+name) }},
	}
}

// TestOwnerDeleteLocksRefreshTokensInSeqOrder: on PostgreSQL deleting a
// user, a client or a connection locks its refresh tokens in seq order,
// as a revocation does, whatever order a plan meets them in: while
// another transaction holds the token of the highest seq, the deletion
// waits for it holding all the others. The ON DELETE CASCADE that
// deleted a user's or a client's tokens met them here in reverse, waited
// for the highest holding none, then locked the rest downwards, and so
// deadlocked with a revocation locking upwards (the conformance test
// RefreshTokenOwnerDeleteRace shows it, not on every run).
func TestOwnerDeleteLocksRefreshTokensInSeqOrder(t *testing.T) {
	s, db := openPostgres(t)
	for _, c := range ownerDeletes(s) {
		t.Run(c.owner, func(t *testing.T) {
			ids := ownerFixture(t, s, c.owner, 4)
			tx, holder := holdRows(t, db, "SELECT 1 FROM refresh_tokens WHERE id = $1 FOR UPDATE", ids[len(ids)-1])
			done := make(chan error, 1)
			go func() { done <- c.del(t, c.owner) }()
			blockedBy(t, db, []int{holder})
			for _, id := range ids[:len(ids)-1] {
				_, err := db.ExecContext(t.Context(), "SELECT 1 FROM refresh_tokens WHERE id = $1 FOR UPDATE NOWAIT", id)
				if pgErr := (*pgconn.PgError)(nil); !errors.As(err, &pgErr) || pgErr.Code != "55P03" {
					t.Errorf("token %s while the deletion waits for %s: %v; want it locked by the deletion (55P03)", id, ids[len(ids)-1], err)
				}
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatalf("delete the %s: %v", c.owner, err)
			}
			for _, id := range ids {
				if _, err := s.GetRefreshToken(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("token %s after its %s's deletion: %v", id, c.owner, err)
				}
			}
		})
	}
}

// TestConnectionDeleteLocksLegacyTokensInSeqOrder: a connection's
// deletion finds the tokens issued through it and those stored before
// tokens recorded their connection (through its users) apart, and still
// locks them together in seq order on PostgreSQL: a legacy token between
// two of the others is locked after the lower and before the higher.
func TestConnectionDeleteLocksLegacyTokensInSeqOrder(t *testing.T) {
	s, db := openPostgres(t)
	const name = "legacy"
	ids := ownerFixture(t, s, name, 5)
	for _, id := range []string{ids[1], ids[3]} {
		if err := sqlstore.Exec(t.Context(), s, "UPDATE refresh_tokens SET connection = '' WHERE id = $1", id); err != nil {
			t.Fatal(err)
		}
	}
	tx, holder := holdRows(t, db, "SELECT 1 FROM refresh_tokens WHERE id = $1 FOR UPDATE", ids[len(ids)-1])
	done := make(chan error, 1)
	go func() { done <- s.DeleteConnection(t.Context(), "con-"+name) }()
	blockedBy(t, db, []int{holder})
	for _, id := range ids[:len(ids)-1] {
		_, err := db.ExecContext(t.Context(), "SELECT 1 FROM refresh_tokens WHERE id = $1 FOR UPDATE NOWAIT", id)
		if pgErr := (*pgconn.PgError)(nil); !errors.As(err, &pgErr) || pgErr.Code != "55P03" {
			t.Errorf("token %s while the deletion waits for %s: %v; want it locked by the deletion (55P03)", id, ids[len(ids)-1], err)
		}
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("delete the connection: %v", err)
	}
	for _, id := range ids {
		if _, err := s.GetRefreshToken(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("token %s after its connection's deletion: %v", id, err)
		}
	}
}

// TestOwnerDeleteDuringExchange: an exchange of a token whose user or
// client is being deleted ends cleanly on PostgreSQL, and
// no token is left. One that came first completes, its successor
// included, and the deletion takes the successor too; one that comes
// while the deletion holds the tokens waits, then finds its token gone
// (store.ErrNotFound: invalid_grant). Before, a user's or a client's
// deletion locked the user or the client first and then the tokens
// (ON DELETE CASCADE), while the exchange locks its token first and then
// the user and the client its successor refers to (FOREIGN KEY), so that
// each waited for the other (40P01, an answer 500).
func TestOwnerDeleteDuringExchange(t *testing.T) {
	s, db := openPostgres(t)
	lockOwner := map[string]string{
		"user":   "SELECT 1 FROM users WHERE user_id = 'u-' || $1 FOR UPDATE",
		"client": "SELECT 1 FROM clients WHERE client_id = 'c-' || $1 FOR UPDATE",
	}
	for _, c := range ownerDeletes(s) {
		if lockOwner[c.owner] == "" {
			// An exchange refers to no connection: nothing holds it
			// back before it has rotated its token.
			continue
		}
		for _, exchangeFirst := range []bool{false, true} {
			name := fmt.Sprintf("%s-exchange-first-%t", c.owner, exchangeFirst)
			t.Run(name, func(t *testing.T) {
				ids := ownerFixture(t, s, name, 3)
				// The owner's row is held, so that whichever of the two
				// starts first stops at it (a deletion) or at its
				// foreign key (an exchange) and the other then meets it.
				tx, holder := holdRows(t, db, lockOwner[c.owner], name)
				now := time.Now().UTC()
				next := &store.RefreshToken{ID: name + "-next", FamilyID: ids[0], SecretHash: []byte("hash"), ClientID: "c-" + name,
					UserID: "u-" + name, Audience: "urn:a", Rotating: true, CreatedAt: now, IdleExpiresAt: ptr(now.Add(time.Hour)),
					Connection: "conn-" + name}
				exchanged, deleted := make(chan error, 1), make(chan error, 1)
				exchange := func() {
					exchanged <- s.ExchangeRefreshToken(t.Context(), store.RefreshExchange{ID: ids[0], Now: now, Next: next})
				}
				del := func() { deleted <- c.del(t, name) }
				first, second := del, exchange
				if exchangeFirst {
					first, second = exchange, del
				}
				go first()
				waiting := blockedBy(t, db, []int{holder})
				go second()
				blockedBy(t, db, []int{holder, waiting}, waiting)
				if err := tx.Rollback(); err != nil {
					t.Fatal(err)
				}
				if err := <-deleted; err != nil {
					t.Fatalf("delete the %s: %v", c.owner, err)
				}
				err := <-exchanged
				switch {
				case exchangeFirst && err != nil:
					t.Errorf("exchange begun before the deletion: %v", err)
				case !exchangeFirst && !errors.Is(err, store.ErrNotFound):
					t.Errorf("exchange begun after the deletion: %v; want store.ErrNotFound", err)
				}
				for _, id := range append(ids, next.ID) {
					if _, err := s.GetRefreshToken(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
						t.Errorf("token %s after its %s's deletion: %v", id, c.owner, err)
					}
				}
			})
		}
	}
}

// TestClientAndConnectionDeletesTogether: deleting a client and a
// connection enabled for it at once succeeds on PostgreSQL. Each deletes
// its refresh tokens (seq order) before its row, whose ON DELETE CASCADE
// deletes the enablement. A connection's deletion that took the
// enablement first and then the tokens deadlocked with a client's that
// held the tokens and waited for the enablement.
func TestClientAndConnectionDeletesTogether(t *testing.T) {
	s, db := openPostgres(t)
	const name = "together"
	ids := ownerFixture(t, s, name, 3)
	// The client's deletion stops at its row, holding the tokens.
	tx, holder := holdRows(t, db, "SELECT 1 FROM clients WHERE client_id = $1 FOR UPDATE", "c-"+name)
	clientDeleted, connectionDeleted := make(chan error, 1), make(chan error, 1)
	go func() { clientDeleted <- s.DeleteClient(t.Context(), "c-"+name) }()
	client := blockedBy(t, db, []int{holder})
	go func() { connectionDeleted <- s.DeleteConnection(t.Context(), "con-"+name) }()
	blockedBy(t, db, []int{client}, holder)
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-clientDeleted; err != nil {
		t.Errorf("delete the client: %v", err)
	}
	if err := <-connectionDeleted; err != nil {
		t.Errorf("delete the connection: %v", err)
	}
	for _, id := range ids {
		if _, err := s.GetRefreshToken(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("token %s after the deletions: %v", id, err)
		}
	}
}

// TestClientDeleteDuringConnectionUpdate: deleting a client while a
// connection's enablements are rewritten does not deadlock on
// PostgreSQL. The update deletes the connection's enablements and
// inserts them again, whose foreign key then waits for the client's
// row; a deletion that held the row, and whose ON DELETE CASCADE then
// waited for the enablement the update held, deadlocked with it. The
// deletion deletes the client's enablements before its row.
func TestClientDeleteDuringConnectionUpdate(t *testing.T) {
	s, db := openPostgres(t)
	const name = "update"
	ownerFixture(t, s, name, 1)
	tx, holder := holdRows(t, db, "SELECT 1 FROM clients WHERE client_id = $1 FOR UPDATE", "c-"+name)
	deleted, updated := make(chan error, 1), make(chan error, 1)
	go func() { deleted <- s.DeleteClient(t.Context(), "c-"+name) }()
	client := blockedBy(t, db, []int{holder})
	go func() {
		_, err := s.PatchConnection(t.Context(), "con-"+name, func(c *store.Connection, _ store.ClientLookup) error {
			c.EnabledClients = []string{"c-" + name}
			return nil
		})
		updated <- err
	}()
	blockedBy(t, db, []int{holder, client}, client)
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-deleted; err != nil {
		t.Errorf("delete the client: %v", err)
	}
	// The update enables a client deleted meanwhile: its foreign key
	// finds none.
	if err := <-updated; !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update the connection: %v; want store.ErrNotFound", err)
	}
	c, err := s.GetConnection(t.Context(), "con-"+name)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.EnabledClients) != 0 {
		t.Errorf("connection enabled for %v after its client's deletion", c.EnabledClients)
	}
}

// chunkedBackends are those that delete an owner's refresh tokens in
// chunks that readers can see, so that they must refuse them while the
// deletion runs: SQLite alone. PostgreSQL deletes them in the owner's
// transaction and reads no deletion under way (refreshStatements).
var chunkedBackends = []string{storetest.SQLite}

// TestOwnerDeleteCrash: a deletion of a user, a client or a connection cut
// short after its first chunk of refresh tokens (a crash) leaves the rest
// refused, and after a restart the background purge deletes them, in
// bounded batches, then the owner.
func TestOwnerDeleteCrash(t *testing.T) {
	for _, b := range chunkedBackends {
		t.Run(b, func(t *testing.T) {
			for _, c := range []struct {
				kind, id string
				gone     func(s *sqlstore.Store) error
			}{
				{"user", "u-user", func(s *sqlstore.Store) error { _, err := s.GetUser(t.Context(), "u-user"); return err }},
				{"client", "c-client", func(s *sqlstore.Store) error { _, err := s.GetClient(t.Context(), "c-client"); return err }},
				{"connection", "con-connection", func(s *sqlstore.Store) error {
					_, err := s.GetConnection(t.Context(), "con-connection")
					return err
				}},
			} {
				t.Run(c.kind, func(t *testing.T) {
					ctx := t.Context()
					dsn := storetest.DSN(t, b)
					before := openRaw(t, dsn)
					if err := before.Migrate(ctx); err != nil {
						t.Fatal(err)
					}
					ids := ownerFixture(t, before, c.kind, 450)
					if err := sqlstore.CrashOwnerDelete(ctx, before, c.kind, c.id); err != nil {
						t.Fatal(err)
					}
					before.Close()
					s := openRaw(t, dsn)
					left := 0
					for _, id := range ids {
						if _, err := s.GetRefreshToken(ctx, id); err == nil {
							t.Fatalf("token %s read after its %s's deletion began", id, c.kind)
						}
						if err := s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: id, Now: time.Now(), IdleExpiresAt: ptr(time.Now().Add(time.Hour))}); !errors.Is(err, store.ErrNotFound) {
							t.Fatalf("exchange of %s after its %s's deletion began: %v, want ErrNotFound", id, c.kind, err)
						}
					}
					if err := storetest.RawDB(t, dsn).QueryRowContext(ctx, "SELECT COUNT(*) FROM refresh_tokens").Scan(&left); err != nil {
						t.Fatal(err)
					}
					if left == 0 {
						t.Fatal("the crashed deletion left no token to purge")
					}
					total := 0
					for {
						n, more, err := s.PurgeDeletedOwnerTokens(ctx, 100)
						if err != nil {
							t.Fatal(err)
						}
						if n > 100 {
							t.Fatalf("one batch deleted %d, want at most 100", n)
						}
						if total += n; !more {
							break
						}
					}
					if total != left+1 {
						t.Errorf("purge deleted %d, want the %d tokens left and the %s", total, left, c.kind)
					}
					if err := c.gone(s); !errors.Is(err, store.ErrNotFound) {
						t.Errorf("%s after the purge: %v, want ErrNotFound", c.kind, err)
					}
					var rows int
					if err := storetest.RawDB(t, dsn).QueryRowContext(ctx, "SELECT (SELECT COUNT(*) FROM refresh_tokens) + (SELECT COUNT(*) FROM refresh_purges)").Scan(&rows); err != nil {
						t.Fatal(err)
					}
					if rows != 0 {
						t.Errorf("%d refresh tokens and purge records left", rows)
					}
				})
			}
		})
	}
}

// TestOwnerDeleteLeavesOwnerMadeAgain: of two deletions of one owner (a
// retried API call, or a deletion and the background purge finishing it
// from a list it read before), the first to finish ends the other: the
// other, resumed once the owner was made again under the name, leaves
// the new owner and its refresh token alone. So does the background
// purge, for a deletion a crash cut short and then repeated.
func TestOwnerDeleteLeavesOwnerMadeAgain(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			for _, c := range []struct {
				kind, id string
				again    func(t *testing.T, s *sqlstore.Store)
				present  func(t *testing.T, s *sqlstore.Store) error
			}{
				{"user", "u-user",
					func(t *testing.T, s *sqlstore.Store) {
						_, err := s.UpsertUser(t.Context(), &store.User{UserID: "u-user", Connection: "conn-user", Email: "again@example.com"})
						if err != nil {
							t.Fatal(err)
						}
					},
					func(t *testing.T, s *sqlstore.Store) error { _, err := s.GetUser(t.Context(), "u-user"); return err }},
				{"client", "c-client",
					func(t *testing.T, s *sqlstore.Store) {
						if err := s.CreateClient(t.Context(), &store.Client{ClientID: "c-client", Callbacks: []string{"https://x.example"}}); err != nil {
							t.Fatal(err)
						}
					},
					func(t *testing.T, s *sqlstore.Store) error {
						_, err := s.GetClient(t.Context(), "c-client")
						return err
					}},
				{"connection", "con-connection",
					func(t *testing.T, s *sqlstore.Store) {
						if err := s.CreateConnection(t.Context(), &store.Connection{ID: "con-again", Name: "conn-connection", Strategy: "waad",
							EnabledClients: []string{"c-connection"}}); err != nil {
							t.Fatal(err)
						}
					},
					func(t *testing.T, s *sqlstore.Store) error {
						_, err := s.GetConnection(t.Context(), "con-again")
						return err
					}},
			} {
				for _, after := range []string{"resumed deletion", "background purge"} {
					t.Run(c.kind+"/"+after, func(t *testing.T) {
						ctx := t.Context()
						s := storetest.Open(t, b)
						ownerFixture(t, s, c.kind, 450)
						resume, err := sqlstore.PauseOwnerDelete(ctx, s, c.kind, c.id)
						if err != nil {
							t.Fatal(err)
						}
						if err := sqlstore.DeleteOwnerInChunks(ctx, s, c.kind, c.id); err != nil {
							t.Fatal(err)
						}
						c.again(t, s)
						now := time.Now().UTC()
						if err := s.CreateRefreshToken(ctx, &store.RefreshToken{ID: "again", SecretHash: []byte("hash"), ClientID: "c-" + c.kind,
							UserID: "u-" + c.kind, Audience: "urn:a", CreatedAt: now, IdleExpiresAt: ptr(now.Add(time.Hour)),
							Connection: "conn-" + c.kind}); err != nil {
							t.Fatal(err)
						}
						if after == "resumed deletion" {
							err = resume()
						} else {
							_, _, err = s.PurgeDeletedOwnerTokens(ctx, 500)
						}
						if err != nil {
							t.Fatal(err)
						}
						if err := c.present(t, s); err != nil {
							t.Errorf("the %s made again after its deletion: %v", c.kind, err)
						}
						if _, err := s.GetRefreshToken(ctx, "again"); err != nil {
							t.Errorf("the refresh token issued after the deletion: %v", err)
						}
					})
				}
			}
		})
	}
}

// TestOwnerDeleteIsNoReuse: a rotated refresh token of an owner whose
// deletion has begun is gone for an exchange and for reuse detection
// alike (store.ErrNotFound): it is refused for the deletion, not reused,
// and its family goes with the owner anyway.
func TestOwnerDeleteIsNoReuse(t *testing.T) {
	for _, b := range chunkedBackends {
		t.Run(b, func(t *testing.T) {
			for _, c := range []struct{ kind, id string }{{"user", "u-user"}, {"client", "c-client"}, {"connection", "con-connection"}} {
				t.Run(c.kind, func(t *testing.T) {
					ctx := t.Context()
					s := storetest.Open(t, b)
					ids := ownerFixture(t, s, c.kind, 450)
					now := time.Now().UTC()
					// The first chunk takes the tokens in its index's order:
					// one of the first and the last is left.
					rotated := []string{ids[0], ids[len(ids)-1]}
					for _, id := range rotated {
						if err := s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: id, Now: now, Next: &store.RefreshToken{ID: "next-" + id,
							FamilyID: id, SecretHash: []byte("hash"), ClientID: "c-" + c.kind, UserID: "u-" + c.kind, Audience: "urn:a",
							Rotating: true, CreatedAt: now, IdleExpiresAt: ptr(now.Add(time.Hour)), Connection: "conn-" + c.kind}}); err != nil {
							t.Fatal(err)
						}
					}
					if _, err := sqlstore.PauseOwnerDelete(ctx, s, c.kind, c.id); err != nil {
						t.Fatal(err)
					}
					left := 0
					for _, id := range rotated {
						var n int
						if err := sqlstore.ReadPool(s).QueryRowContext(ctx, "SELECT COUNT(*) FROM refresh_tokens WHERE id = $1", id).Scan(&n); err != nil {
							t.Fatal(err)
						}
						if n == 0 {
							continue
						}
						left++
						_, err := s.RefreshTokenReused(ctx, id, now, 0)
						if !errors.Is(err, store.ErrNotFound) {
							t.Errorf("reuse of the rotated token %s: %v, want store.ErrNotFound", id, err)
						}
						err = s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: id, Now: now, IdleExpiresAt: ptr(now.Add(time.Hour))})
						if !errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrRefreshTokenReused) {
							t.Errorf("exchange of the rotated token %s: %v, want store.ErrNotFound", id, err)
						}
					}
					if left == 0 {
						t.Fatal("the first chunk took both rotated tokens")
					}
				})
			}
		})
	}
}

// TestOwnerDeleteHidesTokensFromLists: while the deletion of a user, a
// client or a connection runs, the Management API's lists (a user's
// refresh tokens, one by id) show none of the tokens it refused, and no
// exchange, of either rotation type or replacing the token, succeeds.
func TestOwnerDeleteHidesTokensFromLists(t *testing.T) {
	for _, b := range chunkedBackends {
		t.Run(b, func(t *testing.T) {
			for _, c := range []struct{ kind, id string }{{"user", "u-user"}, {"client", "c-client"}, {"connection", "con-connection"}} {
				t.Run(c.kind, func(t *testing.T) {
					ctx := t.Context()
					s := storetest.Open(t, b)
					ids := ownerFixture(t, s, c.kind, 450)
					if _, err := sqlstore.PauseOwnerDelete(ctx, s, c.kind, c.id); err != nil {
						t.Fatal(err)
					}
					list, total, err := s.ListRefreshTokens(ctx, store.RefreshTokenFilter{UserID: "u-" + c.kind}, store.ListOptions{PerPage: 50})
					if err != nil {
						t.Fatal(err)
					}
					if len(list) != 0 || total != 0 {
						t.Errorf("the user's list shows %d tokens of %d", len(list), total)
					}
					now := time.Now().UTC()
					for _, id := range []string{ids[0], ids[len(ids)-1]} {
						if list, _, err := s.ListRefreshTokens(ctx, store.RefreshTokenFilter{ID: id}, store.ListOptions{}); err != nil || len(list) != 0 {
							t.Errorf("token %s by id: %d shown, %v", id, len(list), err)
						}
						for name, ex := range map[string]store.RefreshExchange{
							"refresh": {ID: id, Now: now, IdleExpiresAt: ptr(now.Add(time.Hour))},
							"rotate": {ID: id, Now: now, Next: &store.RefreshToken{ID: "next-" + id, FamilyID: id, SecretHash: []byte("hash"),
								ClientID: "c-" + c.kind, UserID: "u-" + c.kind, Audience: "urn:a", Rotating: true, CreatedAt: now,
								Connection: "conn-" + c.kind}},
							"replace": {ID: id, Now: now, Replace: true, Next: &store.RefreshToken{ID: "replaced-" + id, SecretHash: []byte("hash"),
								ClientID: "c-" + c.kind, UserID: "u-" + c.kind, Audience: "urn:a", Rotating: true, CreatedAt: now,
								Connection: "conn-" + c.kind}},
						} {
							if err := s.ExchangeRefreshToken(ctx, ex); !errors.Is(err, store.ErrNotFound) {
								t.Errorf("%s of token %s: %v, want store.ErrNotFound", name, id, err)
							}
						}
					}
				})
			}
		})
	}
}

// TestConnectionDeleteRefusesLegacyTokens: while a connection's deletion
// runs, a token stored before tokens recorded their connection (migration
// 8) is refused when its user's latest login went through the connection,
// as the deletion takes it, and not when it went through another; once
// the deletion returns the first is gone and the second still works.
func TestConnectionDeleteRefusesLegacyTokens(t *testing.T) {
	for _, b := range chunkedBackends {
		t.Run(b, func(t *testing.T) {
			ctx := t.Context()
			s := storetest.Open(t, b)
			ownerFixture(t, s, "legacy", 450)
			if _, err := s.UpsertUser(ctx, &store.User{UserID: "u-other", Connection: "conn-other", Email: "other@example.com"}); err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC()
			for _, uid := range []string{"u-legacy", "u-other"} {
				if err := s.CreateRefreshToken(ctx, &store.RefreshToken{ID: "old-" + uid, SecretHash: []byte("hash"), ClientID: "c-legacy",
					UserID: uid, Audience: "urn:a", CreatedAt: now, IdleExpiresAt: ptr(now.Add(time.Hour))}); err != nil {
					t.Fatal(err)
				}
			}
			resume, err := sqlstore.PauseOwnerDelete(ctx, s, "connection", "con-legacy")
			if err != nil {
				t.Fatal(err)
			}
			exchange := func(id string) error {
				return s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: id, Now: now, IdleExpiresAt: ptr(now.Add(time.Hour))})
			}
			if err := exchange("old-u-legacy"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("legacy token of the connection's user during the deletion: %v, want store.ErrNotFound", err)
			}
			if _, _, err := s.GetRefreshTokenWithUser(ctx, "old-u-legacy"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("legacy token of the connection's user read during the deletion: %v, want store.ErrNotFound", err)
			}
			if err := exchange("old-u-other"); err != nil {
				t.Errorf("legacy token of another connection's user during the deletion: %v", err)
			}
			if err := resume(); err != nil {
				t.Fatal(err)
			}
			var left int
			if err := sqlstore.ReadPool(s).QueryRowContext(ctx, "SELECT COUNT(*) FROM refresh_tokens WHERE id = 'old-u-legacy'").Scan(&left); err != nil {
				t.Fatal(err)
			}
			if left != 0 {
				t.Error("the legacy token of the connection's user outlived the deletion")
			}
			if err := exchange("old-u-other"); err != nil {
				t.Errorf("legacy token of another connection's user after the deletion: %v", err)
			}
		})
	}
}

// TestOverlappingOwnerDeletes: a user, its client and its connection,
// each deleted twice at once, all go with every refresh token, each
// deletion succeeding or finding its owner gone, and no deletion is left
// for the background purge.
func TestOverlappingOwnerDeletes(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			ctx := t.Context()
			s := storetest.Open(t, b)
			ownerFixture(t, s, "all", 650)
			dels := []func() error{
				func() error { return s.DeleteUser(ctx, "u-all") },
				func() error { return s.DeleteClient(ctx, "c-all") },
				func() error { return s.DeleteConnection(ctx, "con-all") },
			}
			errs := make(chan error, 2*len(dels))
			for range 2 {
				for _, del := range dels {
					go func() { errs <- del() }()
				}
			}
			for range 2 * len(dels) {
				if err := <-errs; err != nil && !errors.Is(err, store.ErrNotFound) {
					t.Error(err)
				}
			}
			var rows int
			if err := sqlstore.ReadPool(s).QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM refresh_tokens) + (SELECT COUNT(*) FROM refresh_purges)
				+ (SELECT COUNT(*) FROM users WHERE user_id = 'u-all') + (SELECT COUNT(*) FROM clients WHERE client_id = 'c-all')
				+ (SELECT COUNT(*) FROM connections WHERE id = 'con-all')`).Scan(&rows); err != nil {
				t.Fatal(err)
			}
			if rows != 0 {
				t.Errorf("%d rows of the owners, their tokens and their deletions left", rows)
			}
			if n, more, err := s.PurgeDeletedOwnerTokens(ctx, 500); n != 0 || more || err != nil {
				t.Errorf("purge after the deletions: %d, %v, %v; want nothing to do", n, more, err)
			}
		})
	}
}
