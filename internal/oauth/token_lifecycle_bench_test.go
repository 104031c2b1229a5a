package oauth_test

import (
	"net/http"
	"net/url"
	"runtime"
	"testing"
	"time"

	emulator "github.com/gatehouse/gatehouse/emulator/entra"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// BenchmarkRefreshGrant measures rotating refresh-token grants per second
// and process CPU per grant, 16 in flight, each following its own rotation
// chain. Scope "openid offline_access": one
// RS256 signature (the id_token) per grant, plus the rotation transaction.
// x-sign is cpu-µs/grant, load generator included, over one signature
// sampled while the grants run (cryptoSampler).
func BenchmarkRefreshGrant(b *testing.B) {
	for _, backend := range storetest.Backends() {
		b.Run(backend, func(b *testing.B) {
			e, form := benchEnv(b, backend, emulator.Options{ReuseTokens: time.Hour})
			status, body := e.api(b, "PATCH", "api/v2/clients/"+e.clientID, map[string]any{
				"grant_types":   []string{"http://auth0.com/oauth/grant-type/password-realm", "refresh_token"},
				"refresh_token": map[string]any{"rotation_type": "rotating", "expiration_type": "expiring", "leeway": 0},
			})
			if status != http.StatusOK {
				b.Fatalf("patch client: %d %v", status, body)
			}
			form.Set("scope", "openid offline_access")
			// The chains start from logins made one after the other before
			// the clock starts: attack protection refuses a burst of
			// logins of one user.
			const chains = 16
			b.SetParallelism(chains / runtime.GOMAXPROCS(0))
			tokens := make(chan string, chains)
			for range chains {
				r := e.token(b, form)
				if r.str("refresh_token") == "" {
					b.Fatalf("login: %d %s", r.status, r.raw)
				}
				tokens <- r.str("refresh_token")
			}
			sampler := startCryptoSampler(b)
			cpu0 := cpuTime()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				rt := <-tokens
				for pb.Next() {
					r := e.token(b, url.Values{"grant_type": {"refresh_token"}, "client_id": {e.clientID}, "refresh_token": {rt}})
					if rt = r.str("refresh_token"); r.status != http.StatusOK || rt == "" {
						b.Errorf("refresh: %d %s", r.status, r.raw)
						return
					}
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			sign, _, own := sampler.finish(b)
			perGrant := float64((cpuTime() - cpu0 - own).Microseconds()) / float64(b.N)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "grants/s")
			b.ReportMetric(perGrant, "cpu-µs/grant")
			b.ReportMetric(sign, "sign-µs")
			b.ReportMetric(perGrant/sign, "x-sign")
		})
	}
}

// BenchmarkClientCredentialsGrant measures client_credentials grants for a
// custom API (resource server + client grant lookups, one signature), with
// x-sign as in BenchmarkRefreshGrant.
func BenchmarkClientCredentialsGrant(b *testing.B) {
	for _, backend := range storetest.Backends() {
		b.Run(backend, func(b *testing.B) {
			e, _ := benchEnv(b, backend, emulator.Options{ReuseTokens: time.Hour})
			const aud = "https://bench.example/api"
			if status, body := e.api(b, "POST", "api/v2/resource-servers", map[string]any{"identifier": aud,
				"scopes": []map[string]string{{"value": "read:x"}}}); status != http.StatusCreated {
				b.Fatalf("resource server: %d %v", status, body)
			}
			status, c := e.api(b, "POST", "api/v2/clients", map[string]any{"name": "m2m", "app_type": "non_interactive", "grant_types": []string{"client_credentials"}})
			if status != http.StatusCreated {
				b.Fatalf("client: %d", status)
			}
			if status, body := e.api(b, "POST", "api/v2/client-grants", map[string]any{"client_id": c["client_id"], "audience": aud, "scope": []string{"read:x"}}); status != http.StatusCreated {
				b.Fatalf("grant: %d %v", status, body)
			}
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c["client_id"].(string)},
				"client_secret": {c["client_secret"].(string)}, "audience": {aud}}
			b.SetParallelism(64 / runtime.GOMAXPROCS(0))
			sampler := startCryptoSampler(b)
			cpu0 := cpuTime()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if r := e.token(b, form); r.status != http.StatusOK {
						b.Errorf("client_credentials: %d %s", r.status, r.raw)
						return
					}
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			sign, _, own := sampler.finish(b)
			perGrant := float64((cpuTime() - cpu0 - own).Microseconds()) / float64(b.N)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "grants/s")
			b.ReportMetric(perGrant, "cpu-µs/grant")
			b.ReportMetric(sign, "sign-µs")
			b.ReportMetric(perGrant/sign, "x-sign")
		})
	}
}
