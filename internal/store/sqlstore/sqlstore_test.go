package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store { return storetest.Open(t, b) })
		})
	}
}

// openRaw opens dsn without migrating, closed at cleanup.
func openRaw(t *testing.T, dsn string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(t.Context(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestPoolKeepsConnections fills the read pool twice: a connection given
// back while the server is busy must stay open, since opening one again
// costs PostgreSQL a process fork and authentication.
func TestPoolKeepsConnections(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			db := sqlstore.ReadPool(openRaw(t, storetest.DSN(t, b)))
			size := db.Stats().MaxOpenConnections
			for range 2 {
				conns := make([]*sql.Conn, size)
				for i := range conns {
					c, err := db.Conn(t.Context())
					if err != nil {
						t.Fatal(err)
					}
					conns[i] = c
				}
				for _, c := range conns {
					c.Close()
				}
			}
			st := db.Stats()
			if st.MaxIdleClosed != 0 || st.OpenConnections != size {
				t.Errorf("pool of %d: %d closed for lack of idle room, %d open after the load", size, st.MaxIdleClosed, st.OpenConnections)
			}
		})
	}
}

// TestConcurrentMigrate starts several stores — as separate processes
// would — on one empty database and migrates them at once.
func TestConcurrentMigrate(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			dsn := storetest.DSN(t, b)
			stores := make([]*sqlstore.Store, 4)
			for i := range stores {
				stores[i] = openRaw(t, dsn)
			}
			errs := make([]error, len(stores))
			var wg sync.WaitGroup
			for i, s := range stores {
				wg.Go(func() { errs[i] = s.Migrate(t.Context()) })
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("concurrent Migrate: %v", err)
			}
			versions, err := sqlstore.AppliedVersions(t.Context(), stores[0])
			if err != nil {
				t.Fatal(err)
			}
			want := make([]int, stores[0].LatestVersion())
			for i := range want {
				want[i] = i + 1
			}
			if fmt.Sprint(versions) != fmt.Sprint(want) {
				t.Errorf("schema_migrations holds %v, want %v", versions, want)
			}
			for _, s := range stores {
				if err := s.Ping(t.Context()); err != nil {
					t.Errorf("Ping after Migrate: %v", err)
				}
			}
		})
	}
}

func TestPingWantsMigrations(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			ctx := t.Context()
			s := openRaw(t, storetest.DSN(t, b))
			if v, err := s.CurrentVersion(ctx); err != nil || v != 0 {
				t.Fatalf("CurrentVersion of an empty database = %d, %v; want 0", v, err)
			}
			err := s.Ping(ctx)
			if err == nil || !strings.Contains(err.Error(), "migrat") {
				t.Fatalf("Ping before Migrate = %v, want an error asking for migrations", err)
			}
			for range 2 {
				if err := s.Migrate(ctx); err != nil {
					t.Fatalf("Migrate: %v", err)
				}
			}
			if v, err := s.CurrentVersion(ctx); err != nil || v != s.LatestVersion() {
				t.Fatalf("CurrentVersion = %d, %v; want %d", v, err, s.LatestVersion())
			}
			if err := s.Ping(ctx); err != nil {
				t.Fatalf("Ping after Migrate: %v", err)
			}
			if s.Backend() != b {
				t.Errorf("Backend() = %q, want %q", s.Backend(), b)
			}
		})
	}
}

// TestNewerSchema: a database a newer Gatehouse migrated is refused, by
// Migrate at start and by Ping at each readiness check, since this binary
// would misread what the newer one stores.
func TestNewerSchema(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			ctx := t.Context()
			s := openRaw(t, storetest.DSN(t, b))
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			next := s.LatestVersion() + 1
			if err := sqlstore.Exec(ctx, s, "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 0)", next); err != nil {
				t.Fatal(err)
			}
			for name, err := range map[string]error{"Migrate": s.Migrate(ctx), "Ping": s.Ping(ctx)} {
				if err == nil || !strings.Contains(err.Error(), "newer than this Gatehouse knows") {
					t.Errorf("%s on a newer schema = %v, want a refusal", name, err)
				}
			}
		})
	}
}

// TestMigrateSortsInFiles: the SQLite writer keeps temporary data in
// memory, but a migration (an index over a large table) sorts in files,
// and the writer is back in memory afterwards.
func TestMigrateSortsInFiles(t *testing.T) {
	ctx := t.Context()
	s := openRaw(t, storetest.DSN(t, storetest.SQLite))
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	sqlstore.AddMigration(s, "CREATE TABLE temp_store_probe AS SELECT temp_store FROM pragma_temp_store()")
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var during int
	if err := sqlstore.ReadPool(s).QueryRowContext(ctx, "SELECT temp_store FROM temp_store_probe").Scan(&during); err != nil {
		t.Fatal(err)
	}
	after, err := sqlstore.WriterTempStore(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if during != 1 || after != 2 {
		t.Errorf("writer's temp_store during a migration %d, after %d; want 1 (file), 2 (memory)", during, after)
	}
}

func TestMigrationsMatchAcrossBackends(t *testing.T) {
	sq, err := sqlstore.MigrationNames("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	pg, err := sqlstore.MigrationNames("postgres")
	if err != nil {
		t.Fatal(err)
	}
	if len(sq) == 0 || fmt.Sprint(sq) != fmt.Sprint(pg) {
		t.Errorf("migrations differ: sqlite %v, postgres %v", sq, pg)
	}
}

func TestOpenRejects(t *testing.T) {
	for _, dsn := range []string{
		"",
		"mysql://user:hunter2@db/gatehouse",
		"sqlite:",
		"sqlite::memory:",
		"sqlite:file:x?mode=memory",
		"postgres://user:hunter2@127.0.0.1:1/db?connect_timeout=1",
	} {
		s, err := sqlstore.Open(t.Context(), dsn, nil)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", dsn)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q) error reveals the password: %v", dsn, err)
		}
	}
}

// TestConcurrentLoad hammers one database from many goroutines through two
// stores, as two processes sharing a SQLite file would: no operation may
// fail, in particular not with SQLITE_BUSY.
func TestConcurrentLoad(t *testing.T) {
	const goroutines, ops = 50, 50
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			ctx := t.Context()
			dsn := storetest.DSN(t, b)
			stores := []*sqlstore.Store{openRaw(t, dsn), openRaw(t, dsn)}
			if err := stores[0].Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if err := stores[0].CreateConnection(ctx, &store.Connection{ID: "con_1", Name: "one", Strategy: "waad"}); err != nil {
				t.Fatal(err)
			}
			errs := make(chan error, goroutines*ops)
			var wg sync.WaitGroup
			for g := range goroutines {
				s := stores[g%len(stores)]
				wg.Go(func() {
					for i := range ops {
						if err := op(ctx, s, g, i); err != nil {
							errs <- fmt.Errorf("goroutine %d op %d: %w", g, i, err)
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			_, total, err := stores[1].ListLogEvents(ctx, store.LogFilter{}, store.ListOptions{})
			if err != nil || total != goroutines*ops/5 {
				t.Errorf("log events: total %d, %v; want %d", total, err, goroutines*ops/5)
			}
		})
	}
}

// op is one step of the load: a mix of transactions, plain writes and
// reads.
func op(ctx context.Context, s *sqlstore.Store, g, i int) error {
	id := fmt.Sprintf("g%d-%d", g, i)
	switch i % 5 {
	case 0:
		return s.CreateClient(ctx, &store.Client{ClientID: id, Callbacks: []string{"https://x.example"}})
	case 1:
		return s.SetConnectionClients(ctx, "con_1", map[string]bool{fmt.Sprintf("g%d-%d", g, i-1): true})
	case 2:
		_, err := s.UpsertUser(ctx, &store.User{UserID: fmt.Sprintf("u%d", g%7), Connection: "one", Email: id + "@example.com", LoginsCount: i})
		return err
	case 3:
		if _, _, err := s.ListUsers(ctx, store.UserFilter{Connection: "one"}, store.ListOptions{PerPage: 5}); err != nil {
			return err
		}
		if _, err := s.ConnectionEnabledForClient(ctx, "con_1", fmt.Sprintf("g%d-%d", g, i-3)); err != nil {
			return err
		}
		_, err := s.GetConnection(ctx, "con_1")
		return err
	default:
		if _, err := s.InsertSigningKeyIfNone(ctx, &store.SigningKey{KID: id, PrivateEnc: []byte("p"), CertDER: []byte("c"), State: store.KeyCurrent}); err != nil {
			return err
		}
		return s.AppendLogEvent(ctx, &store.LogEvent{Type: "s", UserID: id})
	}
}

// TestLogIDsInIndexOrder: the database's own order of log_id (its
// collation, which the unique index follows) is the order of the events'
// dates, so that new events append to the index.
func TestLogIDsInIndexOrder(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			s := storetest.Open(t, b)
			var want []string
			for i := range 40 {
				e := &store.LogEvent{Type: "s", Date: time.UnixMilli(1 << i)}
				if err := s.AppendLogEvent(t.Context(), e); err != nil {
					t.Fatal(err)
				}
				want = append(want, e.ID)
			}
			rows, err := sqlstore.ReadPool(s).QueryContext(t.Context(), "SELECT log_id FROM log_events ORDER BY log_id")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var got []string
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				got = append(got, id)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("ORDER BY log_id:\n%q\nby date:\n%q", got, want)
			}
		})
	}
}

// TestPurgeSkipsLockedRefreshTokens: on PostgreSQL the refresh-token purge
// skips a token another transaction holds instead of waiting for it: a
// purge that waited, holding the rows it had met, could close a deadlock
// with a revocation or a connection's deletion, which lock tokens in seq
// order. The token goes in a later batch.
func TestPurgeSkipsLockedRefreshTokens(t *testing.T) {
	ctx := t.Context()
	dsn := storetest.DSN(t, storetest.Postgres)
	s := openRaw(t, dsn)
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(ctx, &store.Client{ClientID: "c1", Callbacks: []string{"https://x.example"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpsertUser(ctx, &store.User{UserID: "u1", Connection: "one", Email: "u1@example.com"}); err != nil {
		t.Fatal(err)
	}
	issued := time.Now().Add(-48 * time.Hour).UTC()
	expired := issued.Add(time.Hour)
	for _, id := range []string{"held", "free1", "free2"} {
		if err := s.CreateRefreshToken(ctx, &store.RefreshToken{ID: id, SecretHash: []byte(id), ClientID: "c1", UserID: "u1",
			CreatedAt: issued, ExpiresAt: &expired}); err != nil {
			t.Fatal(err)
		}
	}
	holder, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	tx, err := holder.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT 1 FROM refresh_tokens WHERE id = 'held' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	purgeCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if n, err := s.PurgeExpiredRefreshTokens(purgeCtx, time.Now(), 10); err != nil || n != 2 {
		t.Fatalf("purge while a token is held: %d, %v; want the 2 others, at once", n, err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeExpiredRefreshTokens(ctx, time.Now(), 10); err != nil || n != 1 {
		t.Errorf("purge once the token is free: %d, %v; want 1", n, err)
	}
}
