package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// testServer validates cfg and builds its server, logging to logs (nil:
// nowhere); the server is closed when the test ends.
func testServer(t *testing.T, cfg *config.Config, logs io.Writer) *Server {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if logs == nil {
		logs = io.Discard
	}
	s, err := New(context.Background(), cfg, NewLogger(logs, "text", "info"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// serveLoopback serves s on a loopback listener until cancel and waits
// until it answers /healthz; done yields what Serve returned.
func serveLoopback(t *testing.T, s *Server) (addr string, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, l) }()
	for range 100 {
		if resp, err := http.Get("http://" + l.Addr().String() + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return l.Addr().String(), cancel, errc
}
