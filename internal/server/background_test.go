package server

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/store"
)

// TestPurgeAttackRows: the background purge removes counters idle past the
// brute-force expiry, batch after batch, and keeps recent ones.
func TestPurgeAttackRows(t *testing.T) {
	cfg := &config.Config{
		Addr: "127.0.0.1:0", Issuer: "http://127.0.0.1:1/",
		Database:  "sqlite:" + filepath.Join(t.TempDir(), "gatehouse.db"),
		LogFormat: "text", LogLevel: "info", ManagementTokenLifetime: time.Hour, ShutdownTimeout: time.Second,
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), cfg, NewLogger(io.Discard, "text", "info"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	long := time.Now().Add(-60 * 24 * time.Hour)
	take := func(id, ip string, at time.Time) {
		c := store.AttackCounter{Kind: store.AttackBruteForce, Connection: "c", Identifier: id, IP: ip}
		if _, err := s.store.TakeAttempt(ctx, c, 10, at, at.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range purgeBatch + 3 {
		take("stale@example.com", fmt.Sprintf("198.51.%d.%d", i/256, i%256), long)
	}
	take("fresh@example.com", "192.0.2.1", time.Now())
	s.purge(ctx)
	if got, err := s.store.ListAttackCounters(ctx, "stale@example.com", time.Time{}); err != nil || len(got) != 0 {
		t.Fatalf("stale counters left: %d (%v)", len(got), err)
	}
	if got, err := s.store.ListAttackCounters(ctx, "fresh@example.com", time.Time{}); err != nil || len(got) != 1 {
		t.Fatalf("fresh counter: %d (%v)", len(got), err)
	}
}
