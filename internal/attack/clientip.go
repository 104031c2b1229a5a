package attack

import (
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/store"
)

// ClientIP is the end user's address. auth0-forwarded-for counts only
// from an authenticated confidential client with
// is_token_endpoint_ip_header_trusted (a backend calling on a user's
// behalf); X-Forwarded-For only when the peer is a trusted proxy, and then
// its last hop that is not itself a trusted proxy. Otherwise the peer.
// c may be nil when no client is authenticated.
func ClientIP(r *http.Request, c *store.Client, trusted []netip.Prefix) string {
	if c != nil && c.IsTokenEndpointIPHeaderTrusted && c.TokenEndpointAuthMethod != "none" {
		if ip, err := netip.ParseAddr(strings.TrimSpace(r.Header.Get("auth0-forwarded-for"))); err == nil {
			return ip.Unmap().String()
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	if !contains(trusted, peer) {
		return peer.String()
	}
	hops := r.Header.Values("X-Forwarded-For")
	var all []string
	for _, h := range hops {
		all = append(all, strings.Split(h, ",")...)
	}
	for i := len(all) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(all[i]))
		if err != nil {
			break
		}
		if hop = hop.Unmap(); !contains(trusted, hop) {
			return hop.String()
		}
	}
	return peer.String()
}

func contains(prefixes []netip.Prefix, a netip.Addr) bool {
	return slices.ContainsFunc(prefixes, func(p netip.Prefix) bool { return p.Contains(a) })
}
