package server

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// partition forwards connections to a database until cut, after which it
// forwards nothing and answers nothing, as a network partition does: the
// server sees neither an error nor a reply.
type partition struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
}

func newPartition(t *testing.T, target string) *partition {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &partition{l: l, target: target}
	t.Cleanup(func() {
		l.Close()
		p.heal()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, c)
			cut := p.cut
			p.mu.Unlock()
			if !cut {
				go p.forward(c)
			}
		}
	}()
	return p
}

func (p *partition) forward(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, up)
	p.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if err != nil {
				dst.Close()
				return
			}
			p.mu.Lock()
			cut := p.cut
			p.mu.Unlock()
			if cut {
				// Held open, never answered.
				continue
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				src.Close()
				return
			}
		}
	}
	go pipe(up, c)
	go pipe(c, up)
}

func (p *partition) partition() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
}

// heal ends the partition: the connections it held are closed, as TCP
// would once it gave up on them, and new ones are forwarded again.
func (p *partition) heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestReadyzWhenPostgresPartitioned: while PostgreSQL answers nothing
// (its connections neither reply nor fail), /readyz answers 503 within
// its 2 s bound, and /healthz, which touches no database, still 200. Once
// the database is reachable again, /readyz is 200 again.
func TestReadyzWhenPostgresPartitioned(t *testing.T) {
	dsn := storetest.DSN(t, storetest.Postgres)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := newPartition(t, u.Host)
	u.Host = p.l.Addr().String()
	s := purgeTestServerOn(t, u.String(), 0)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	if got := readyz(t, ts.URL); got != http.StatusOK {
		t.Fatalf("/readyz before: %d", got)
	}

	p.partition()
	for i := range 3 {
		start := time.Now()
		got := readyz(t, ts.URL)
		if took := time.Since(start); got != http.StatusServiceUnavailable || took > 3*time.Second {
			t.Errorf("/readyz %d during the partition: %d after %v, want 503 within 3 s", i, got, took)
		}
	}
	resp, err := (&http.Client{Timeout: time.Second}).Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatalf("/healthz during the partition: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz during the partition: %d", resp.StatusCode)
	}

	p.heal()
	got := 0
	for range 25 {
		if got = readyz(t, ts.URL); got == http.StatusOK {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got != http.StatusOK {
		t.Errorf("/readyz after the partition: %d, want 200", got)
	}
}
