package sqlstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// stallTokensEnv names how many refresh tokens TestOwnerDeleteStall gives
// the owner it deletes; the test is skipped without it (it is a
// measurement, not a check of every run).
const stallTokensEnv = "GATEHOUSE_STALL_TOKENS"

// TestOwnerDeleteStall measures, on SQLite, how long the small writes of
// logins (an attack-protection take, a log event) wait while a user, a
// client or a connection with many refresh tokens is deleted.
func TestOwnerDeleteStall(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(stallTokensEnv))
	if n <= 0 {
		t.Skip(stallTokensEnv + " is not set")
	}
	deletes := []struct {
		owner string
		del   func(ctx context.Context, s *sqlstore.Store) error
	}{
		{"user", func(ctx context.Context, s *sqlstore.Store) error { return s.DeleteUser(ctx, "u-stall") }},
		{"client", func(ctx context.Context, s *sqlstore.Store) error { return s.DeleteClient(ctx, "c-stall") }},
		{"connection", func(ctx context.Context, s *sqlstore.Store) error { return s.DeleteConnection(ctx, "con-stall") }},
	}
	for _, d := range deletes {
		t.Run(d.owner, func(t *testing.T) {
			ctx := t.Context()
			dsn := storetest.DSN(t, storetest.SQLite)
			s := openRaw(t, dsn)
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			stallFixture(t, s, dsn, n)
			stop := make(chan struct{})
			var (
				wg    sync.WaitGroup
				mu    sync.Mutex
				worst time.Duration
				count int
			)
			write := func(i int, f func(int) error) {
				for j := 0; ; j++ {
					select {
					case <-stop:
						return
					default:
					}
					start := time.Now()
					if err := f(i*1_000_000 + j); err != nil {
						t.Error(err)
						return
					}
					took := time.Since(start)
					mu.Lock()
					worst, count = max(worst, took), count+1
					mu.Unlock()
					time.Sleep(2 * time.Millisecond)
				}
			}
			for i := range 4 {
				wg.Go(func() {
					write(i, func(j int) error {
						_, _, _, err := s.TakeToken(ctx, fmt.Sprintf("ip:%d", j), 10, time.Second, time.Now())
						return err
					})
				})
				wg.Go(func() {
					write(i, func(j int) error {
						return s.AppendLogEvent(ctx, &store.LogEvent{Type: "s", UserID: "u-other", Doc: json.RawMessage(`{}`)})
					})
				})
			}
			time.Sleep(time.Second)
			mu.Lock()
			idle := worst
			worst = 0
			mu.Unlock()
			start := time.Now()
			if err := d.del(ctx, s); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			close(stop)
			wg.Wait()
			var left int
			if err := storetest.RawDB(t, dsn).QueryRowContext(ctx, "SELECT COUNT(*) FROM refresh_tokens").Scan(&left); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s with %d tokens: deletion returned in %v, %d tokens left; %d concurrent writes, longest %v (%v in the second before the deletion)",
				d.owner, n, took.Round(time.Millisecond), left, count, worst.Round(time.Millisecond), idle.Round(time.Millisecond))
		})
	}
}

// stallFixture stores client c-stall, connection conn-stall (con-stall)
// enabled for it, user u-stall of the connection, and n refresh tokens of
// the three, written beneath the store in one statement.
func stallFixture(t *testing.T, s *sqlstore.Store, dsn string, n int) {
	t.Helper()
	ctx := t.Context()
	if err := s.CreateClient(ctx, &store.Client{ClientID: "c-stall", Callbacks: []string{"https://x.example"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpsertUser(ctx, &store.User{UserID: "u-stall", Connection: "conn-stall", Email: "stall@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateConnection(ctx, &store.Connection{ID: "con-stall", Name: "conn-stall", Strategy: "waad", EnabledClients: []string{"c-stall"}}); err != nil {
		t.Fatal(err)
	}
	_, err := storetest.RawDB(t, dsn).ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
		INSERT INTO refresh_tokens (id, family_id, secret_hash, client_id, user_id, audience, scope, rotating, created_at,
			initial_ip, initial_ua, last_ip, last_ua, connection)
		SELECT 'rt-' || i, 'rt-' || i, x'00', 'c-stall', 'u-stall', 'urn:a', 'openid', 0, $2 + i, '', '', '', '', 'conn-stall' FROM n`,
		n, time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
}
