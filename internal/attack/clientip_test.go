package attack_test

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/gatehouse/gatehouse/internal/attack"
	"github.com/gatehouse/gatehouse/internal/store"
)

func TestClientIP(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
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
		{"garbage hop stops the walk", nil, "10.1.2.3:5555",
			map[string]string{"X-Forwarded-For": "203.0.113.9, junk"}, "10.1.2.3"},
		{"IPv4-mapped IPv6 peer", nil, "[::ffff:192.0.2.7]:5555", nil, "192.0.2.7"},
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
