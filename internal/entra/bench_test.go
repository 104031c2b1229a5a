package entra

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkTransport runs 300 concurrent password grants against a local TLS
// token endpoint that answers after 20ms, through Go's default transport
// (2 idle connections per host) and through NewTransport. With the default
// most connections are closed after each call and the next call pays a new
// TCP and TLS handshake; dials/op shows the churn.
//
//	go test -run '^$' -bench Transport -benchtime 20000x ./internal/entra/
func BenchmarkTransport(b *testing.B) {
	const workers = 300
	const latency = 20 * time.Millisecond
	for _, bc := range []struct {
		name  string
		http2 bool
		tr    func(tlsSrv *http.Transport) *http.Transport
	}{
		{"default/http1", false, func(s *http.Transport) *http.Transport {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.TLSClientConfig = s.TLSClientConfig.Clone()
			return tr
		}},
		{"entra/http1", false, func(s *http.Transport) *http.Transport {
			tr := NewTransport()
			tr.TLSClientConfig.RootCAs = s.TLSClientConfig.RootCAs
			return tr
		}},
		{"default/http2", true, func(s *http.Transport) *http.Transport {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.TLSClientConfig = s.TLSClientConfig.Clone()
			return tr
		}},
		{"entra/http2", true, func(s *http.Transport) *http.Transport {
			tr := NewTransport()
			tr.TLSClientConfig.RootCAs = s.TLSClientConfig.RootCAs
			return tr
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var dials atomic.Int64
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				time.Sleep(latency)
				io.WriteString(w, `{"token_type":"Bearer","scope":"openid","expires_in":3599,"ext_expires_in":3599,"access_token":"at","id_token":"it"}`)
			}))
			srv.EnableHTTP2 = bc.http2
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					dials.Add(1)
				}
			}
			srv.StartTLS()
			defer srv.Close()
			tr := bc.tr(srv.Client().Transport.(*http.Transport))
			defer tr.CloseIdleConnections()
			c := NewClient(Options{Transport: tr})
			req := PasswordRequest{Endpoint: Endpoint{Authority: srv.URL, Tenant: "contoso.com", Version: V2},
				ClientID: "cid", ClientSecret: "secret", Username: "u@contoso.com", Password: "p"}

			var next atomic.Int64
			lat := make([][]time.Duration, workers)
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := range workers {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						t0 := time.Now()
						if _, err := c.PasswordToken(context.Background(), req); err != nil {
							b.Error(err)
							return
						}
						lat[w] = append(lat[w], time.Since(t0))
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			all := slices.Concat(lat...)
			slices.Sort(all)
			if len(all) > 0 {
				b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
			b.ReportMetric(float64(dials.Load())/float64(b.N), "dials/op")
		})
	}
}

// BenchmarkValidateIDToken is a login's check of Entra's id_token with the
// tenant's keys cached: parsing, one RS256 verification, decoding the
// claims and checking them.
//
//	go test -run '^$' -bench ValidateIDToken ./internal/entra/
func BenchmarkValidateIDToken(b *testing.B) {
	f := newFakeEntra(b)
	clk := newClock()
	c := clk.client()
	raw := sign(b, rsaKey(b, 0), "kid-1", f.idClaims(V2, clk.Now()))
	o := opts(f, V2)
	if _, err := c.ValidateIDToken(b.Context(), raw, o); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.ValidateIDToken(b.Context(), raw, o); err != nil {
			b.Fatal(err)
		}
	}
}
