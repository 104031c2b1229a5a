package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// TestConnectionLimits: on the public listener and on the metrics one, a
// caller that dribbles its headers, sends oversized ones, or keeps a
// connection idle is cut off. The limits are shortened so that the test
// runs in a second; Serve must apply them to both listeners.
func TestConnectionLimits(t *testing.T) {
	saved := httpLimits
	t.Cleanup(func() { httpLimits = saved })
	httpLimits.readHeader, httpLimits.read, httpLimits.idle = 300*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond

	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := free.Addr().String()
	free.Close()
	cfg := &config.Config{
		Addr: "127.0.0.1:0", Issuer: "http://127.0.0.1:1/",
		Database:  "sqlite:" + filepath.Join(t.TempDir(), "gatehouse.db"),
		LogFormat: "text", LogLevel: "info", ManagementTokenLifetime: time.Hour, ShutdownTimeout: time.Second,
		MetricsAddr:   metricsAddr,
		AdminClientID: purgeAdminID, AdminClientSecret: purgeAdminSecret,
		SecretKey: strings.Repeat("0f", 32),
	}
	addr, cancel, done := serveLoopback(t, testServer(t, cfg, nil))
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	for _, lst := range []struct{ name, addr, path string }{
		{"public", addr, "/healthz"},
		{"metrics", metricsAddr, "/metrics"},
	} {
		dial := func(t *testing.T) net.Conn {
			t.Helper()
			for range 100 {
				c, err := net.Dial("tcp", lst.addr)
				if err == nil {
					t.Cleanup(func() { c.Close() })
					return c
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Fatalf("%s: cannot connect", lst.addr)
			return nil
		}
		// closedWithin reports whether the server closes c within d,
		// whatever it sends first.
		closedWithin := func(c net.Conn, d time.Duration) bool {
			_ = c.SetReadDeadline(time.Now().Add(d))
			_, err := io.Copy(io.Discard, c)
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
		t.Run(lst.name+"/slow headers", func(t *testing.T) {
			c := dial(t)
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n", lst.path)
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
					}
					if _, err := fmt.Fprintf(c, "X-%d: y\r\n", i); err != nil {
						return
					}
				}
			}()
			if !closedWithin(c, 3*time.Second) {
				t.Error("a connection dribbling its headers is still open after 3 s")
			}
		})
		t.Run(lst.name+"/idle keep-alive", func(t *testing.T) {
			c := dial(t)
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", lst.path)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d", lst.path, resp.StatusCode)
			}
			if !closedWithin(c, 3*time.Second) {
				t.Error("an idle keep-alive connection is still open after 3 s")
			}
		})
		t.Run(lst.name+"/oversized headers", func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, "http://"+lst.addr+lst.path, nil)
			req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("64 KiB of headers: %d, want 431", resp.StatusCode)
			}
		})
	}
}
