package server

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// syncBuffer is a log destination safe for the goroutines that log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestShutdownStopsBackgroundFirst: a purge is waiting for SQLite's write
// lock (another process holds it) when shutdown starts. Serve returns only
// once the purge has stopped, so nothing of the background work outlives
// it into Close, and a purge cut short by shutdown is not logged as a
// failure (an alert on error logs would fire at every deploy).
func TestShutdownStopsBackgroundFirst(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	cfg := &config.Config{
		Addr: "127.0.0.1:0", Issuer: "http://127.0.0.1:1/",
		Database:  "sqlite:" + path,
		LogFormat: "text", LogLevel: "info", ManagementTokenLifetime: time.Hour, ShutdownTimeout: time.Second,
		AdminClientID: purgeAdminID, AdminClientSecret: purgeAdminSecret,
		SecretKey: strings.Repeat("0f", 32),
	}
	var logs syncBuffer
	s := testServer(t, cfg, &logs)

	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}

	_, cancel, done := serveLoopback(t, s)
	// The purge runs at start; give it time to reach the lock.
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	for _, fn := range []string{"server.(*Server).purge", "server.(*Server).runBackground", "tokens.(*Keys).Run"} {
		if strings.Contains(stacks, fn) {
			t.Errorf("%s still runs after Serve returned", fn)
		}
	}
	if _, err := lock.ExecContext(context.Background(), "COMMIT"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("shutdown logged an error:\n%s", logs.String())
	}
}

// TestShutdownTimeoutClosesConnections: a request still in flight when
// GATEHOUSE_SHUTDOWN_TIMEOUT runs out has its connection closed before
// Serve returns, so that its handler is cancelled rather than left
// running on into the closing of the database.
func TestShutdownTimeoutClosesConnections(t *testing.T) {
	cfg := &config.Config{
		Addr: "127.0.0.1:0", Issuer: "http://127.0.0.1:1/",
		Database:  "sqlite:" + filepath.Join(t.TempDir(), "gatehouse.db"),
		LogFormat: "text", LogLevel: "info", ManagementTokenLifetime: time.Hour, ShutdownTimeout: 300 * time.Millisecond,
		AdminClientID: purgeAdminID, AdminClientSecret: purgeAdminSecret,
		SecretKey: strings.Repeat("0f", 32),
	}
	addr, cancel, done := serveLoopback(t, testServer(t, cfg, nil))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A body that never completes keeps the request in its handler.
	fmt.Fprint(c, "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=")
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Serve: nil, want the shutdown timeout reported")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its shutdown timeout")
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Error("the in-flight request's connection is still open after Serve returned")
	}
}
