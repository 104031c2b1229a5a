package attack_test

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/attack"
	"github.com/gatehouse/gatehouse/internal/store"
)

func TestClientIP(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fe80::1/128")}
	trustedBackend := &store.Client{IsTokenEndpointIPHeaderTrusted: true, TokenEndpointAuthMethod: "client_secret_post"}
	for _, tc := range []struct {
		name    string
		client  *store.Client
		remote  string
		headers map[string]string
		want    string
	}{
		{"socket address", nil, "192.0.2.1:5555", nil, "192.0.2.1"},
		{"auth0-forwarded-for from a trusted confidential client", trustedBackend, "192.0.2.1:5555",
			map[string]string{"auth0-forwarded-for": "203.0.113.9"}, "203.0.113.9"},
		{"auth0-forwarded-for from an untrusted client is ignored", &store.Client{TokenEndpointAuthMethod: "client_secret_post"}, "192.0.2.1:5555",
			map[string]string{"auth0-forwarded-for": "203.0.113.9"}, "192.0.2.1"},
		{"auth0-forwarded-for from a public client is ignored", &store.Client{IsTokenEndpointIPHeaderTrusted: true, TokenEndpointAuthMethod: "none"}, "192.0.2.1:5555",
			map[string]string{"auth0-forwarded-for": "203.0.113.9"}, "192.0.2.1"},
		{"malformed auth0-forwarded-for falls back", trustedBackend, "192.0.2.1:5555",
			map[string]string{"auth0-forwarded-for": "203.0.113.9, 1.2.3.4"}, "192.0.2.1"},
		{"X-Forwarded-For from an untrusted peer is ignored", nil, "192.0.2.1:5555",
			map[string]string{"X-Forwarded-For": "203.0.113.9"}, "192.0.2.1"},
		{"X-Forwarded-For from a trusted proxy", nil, "10.1.2.3:5555",
			map[string]string{"X-Forwarded-For": "203.0.113.9"}, "203.0.113.9"},
		{"spoofed first hop behind a trusted proxy", nil, "10.1.2.3:5555",
			map[string]string{"X-Forwarded-For": "198.51.100.1, 203.0.113.9, 10.9.9.9"}, "203.0.113.9"},
		{"a hop that is not an address is the client, never the proxy", nil, "10.1.2.3:5555",
			map[string]string{"X-Forwarded-For": "203.0.113.9, junk"}, "junk"},
		{"RFC 7239 unknown is the client", nil, "10.1.2.3:5555",
			map[string]string{"X-Forwarded-For": "unknown"}, "unknown"},
		{"an unparseable hop is bounded and printable", nil, "10.1.2.3:5555",
			map[string]string{"X-Forwarded-For": "a b\"c\\d\x01" + strings.Repeat("x", 100)}, "a_b_c_d_" + strings.Repeat("x", 56)},
		{"garbage left of the client is ignored", nil, "10.1.2.3:5555",
			map[string]string{"X-Forwarded-For": "junk, 203.0.113.9"}, "203.0.113.9"},
		{"IPv4 hop with a port (Azure Application Gateway)", nil, "10.1.2.3:5555",
			map[string]string{"X-Forwarded-For": "203.0.113.7:51234"}, "203.0.113.7"},
		{"IPv6 hop with a port", nil, "10.1.2.3:5555",
			map[string]string{"X-Forwarded-For": "[2001:db8::1]:443"}, "2001:db8::1"},
		{"IPv6 hop in brackets", nil, "10.1.2.3:5555",
			map[string]string{"X-Forwarded-For": "[2001:db8::1]"}, "2001:db8::1"},
		{"quoted hop with a port", nil, "10.1.2.3:5555",
			map[string]string{"X-Forwarded-For": `"[2001:db8::1]:443"`}, "2001:db8::1"},
		{"IPv4-mapped hop with a port", nil, "10.1.2.3:5555",
			map[string]string{"X-Forwarded-For": "[::ffff:203.0.113.7]:80"}, "203.0.113.7"},
		{"trusted proxy hops with ports are skipped", nil, "10.1.2.3:5555",
			map[string]string{"X-Forwarded-For": "198.51.100.1:1, 203.0.113.7:51234, 10.9.9.9:80"}, "203.0.113.7"},
		{"empty list elements are ignored", nil, "10.1.2.3:5555",
			map[string]string{"X-Forwarded-For": "203.0.113.9, , "}, "203.0.113.9"},
		{"only trusted hops: the first of them", nil, "10.1.2.3:5555",
			map[string]string{"X-Forwarded-For": "10.9.9.9, 10.8.8.8"}, "10.9.9.9"},
		{"empty X-Forwarded-For: the peer", nil, "10.1.2.3:5555",
			map[string]string{"X-Forwarded-For": " , "}, "10.1.2.3"},
		{"auth0-forwarded-for with a port", trustedBackend, "192.0.2.1:5555",
			map[string]string{"auth0-forwarded-for": "[2001:db8::5]:443"}, "2001:db8::5"},
		{"IPv4-mapped IPv6 peer", nil, "[::ffff:192.0.2.7]:5555", nil, "192.0.2.7"},
		// A link-local peer's address carries the zone of the interface it
		// came in on; the configured proxy has none.
		{"trusted proxy on a link-local address with a zone", nil, "[fe80::1%eth0]:5555",
			map[string]string{"X-Forwarded-For": "203.0.113.9"}, "203.0.113.9"},
		{"trusted link-local hop with a zone is skipped", nil, "10.1.2.3:5555",
			map[string]string{"X-Forwarded-For": "203.0.113.9, fe80::1%eth0"}, "203.0.113.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/oauth/token", nil)
			r.RemoteAddr = tc.remote
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			if got := attack.ClientIP(r, tc.client, proxies); got != tc.want {
				t.Fatalf("ClientIP = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestClientIPMultipleHeaders: hops of repeated X-Forwarded-For headers
// form one list, in order.
func TestClientIPMultipleHeaders(t *testing.T) {
	r := httptest.NewRequest("POST", "/oauth/token", nil)
	r.RemoteAddr = "10.1.2.3:5555"
	r.Header.Add("X-Forwarded-For", "198.51.100.1")
	r.Header.Add("X-Forwarded-For", "203.0.113.7:51234, 10.9.9.9")
	if got := attack.ClientIP(r, nil, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}); got != "203.0.113.7" {
		t.Fatalf("ClientIP = %q, want 203.0.113.7", got)
	}
}

// TestOpaqueHopWarning: a trusted proxy writing hops that are not
// addresses is logged once per interval, without the hop.
func TestOpaqueHopWarning(t *testing.T) {
	var logs bytes.Buffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	attack.ResetOpaqueHopWarning()
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, hop := range []string{"secret-hop-1", "secret-hop-2", "203.0.113.9"} {
		r := httptest.NewRequest("POST", "/oauth/token", nil)
		r.RemoteAddr = "10.1.2.3:5555"
		r.Header.Set("X-Forwarded-For", hop)
		attack.ClientIP(r, nil, proxies)
	}
	out := logs.String()
	if n := strings.Count(out, "level=WARN"); n != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "proxy=10.1.2.3") || strings.Contains(out, "secret-hop") {
		t.Fatalf("warning should name the proxy and not the hop:\n%s", out)
	}
}
