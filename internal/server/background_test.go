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

// purgeTestServer is a server on a new SQLite file, not serving.
func purgeTestServer(t *testing.T, logRetention time.Duration) *Server {
	t.Helper()
	cfg := &config.Config{
		Addr: "127.0.0.1:0", Issuer: "http://127.0.0.1:1/",
		Database:  "sqlite:" + filepath.Join(t.TempDir(), "gatehouse.db"),
		LogFormat: "text", LogLevel: "info", ManagementTokenLifetime: time.Hour, ShutdownTimeout: time.Second,
		LogRetention: logRetention,
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), cfg, NewLogger(io.Discard, "text", "info"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestPurgeLogEvents: events older than GATEHOUSE_LOG_RETENTION go, batch
// after batch; younger ones stay; with retention 0 nothing goes.
func TestPurgeLogEvents(t *testing.T) {
	for _, c := range []struct {
		retention time.Duration
		want      int
	}{{24 * time.Hour, 1}, {0, purgeBatch + 4}} {
		t.Run(c.retention.String(), func(t *testing.T) {
			s := purgeTestServer(t, c.retention)
			ctx := context.Background()
			old := time.Now().Add(-48 * time.Hour)
			for i := range purgeBatch + 3 {
				if err := s.store.AppendLogEvent(ctx, &store.LogEvent{Type: "sertft", Date: old.Add(time.Duration(i) * time.Millisecond)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.store.AppendLogEvent(ctx, &store.LogEvent{Type: "sepft"}); err != nil {
				t.Fatal(err)
			}
			s.purge(ctx)
			left, total, err := s.store.ListLogEvents(ctx, store.LogFilter{}, store.ListOptions{})
			if err != nil || total != c.want || (c.retention != 0 && left[0].Type != "sepft") {
				t.Fatalf("%d events left (%v), want %d", total, err, c.want)
			}
		})
	}
}

// TestPurgeAttackRows: the background purge removes counters idle past the
// brute-force expiry, batch after batch, and keeps recent ones.
func TestPurgeAttackRows(t *testing.T) {
	s := purgeTestServer(t, 0)
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
