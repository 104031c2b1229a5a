package attack

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// ClientIP is the end user's address. auth0-forwarded-for counts only
// from an authenticated confidential client with
// is_token_endpoint_ip_header_trusted (a backend calling on a user's
// behalf); X-Forwarded-For only when the peer is a trusted proxy, and then
// its last hop that is not itself a trusted proxy. Otherwise the peer.
// Addresses may carry a port (203.0.113.7:51234, [2001:db8::1]:443), as
// some proxies write them; only the address is kept. c may be nil when no
// client is authenticated.
func ClientIP(r *http.Request, c *store.Client, trusted []netip.Prefix) string {
	if c != nil && c.IsTokenEndpointIPHeaderTrusted && c.TokenEndpointAuthMethod != "none" {
		if ip, ok := parseHop(r.Header.Get("auth0-forwarded-for")); ok {
			return ip.String()
		}
	}
	peer, host := peerAddr(r)
	if !peer.IsValid() {
		return host
	}
	if !contains(trusted, peer) {
		return peer.String()
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		for hop := range strings.SplitSeq(h, ",") {
			// Empty list elements are allowed and mean nothing (RFC 9110).
			if hop = strings.TrimSpace(hop); hop != "" {
				hops = append(hops, hop)
			}
		}
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := parseHop(hops[i])
		if !ok {
			// A trusted proxy wrote this hop, so it names the client, in a
			// form that is not an address. Falling back to the proxy's own
			// address would count every user behind it as one.
			warnOpaqueHop(r.Context(), peer)
			return opaqueHop(hops[i])
		}
		if client = hop; !contains(trusted, hop) {
			break
		}
	}
	return client.String()
}

// FromTrustedProxy reports whether r came straight from one of trusted:
// only then are headers that proxies write (X-Forwarded-For,
// X-Request-Id) believed.
func FromTrustedProxy(r *http.Request, trusted []netip.Prefix) bool {
	peer, _ := peerAddr(r)
	return contains(trusted, peer)
}

// peerAddr is r's socket peer, or the zero Addr and the raw host when that
// is not an address.
func peerAddr(r *http.Request) (netip.Addr, string) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, host
	}
	return a.Unmap(), host
}

// parseHop reads one address as proxies write it: bare, with a port, in
// brackets, or quoted.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	if len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// maxOpaqueHop bounds what an unparseable hop contributes to a counter key
// and to log events.
const maxOpaqueHop = 64

// opaqueHop is a client's identity when its trusted proxy named it in a
// form that is not an address ("unknown", an obfuscated identifier, or a
// format Gatehouse does not know): the hop's own text, bounded and
// printable, so that such clients stay apart from each other.
func opaqueHop(s string) string {
	if len(s) > maxOpaqueHop {
		s = s[:maxOpaqueHop]
	}
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r >= 0x7f || r == '"' || r == '\\' {
			return '_'
		}
		return r
	}, s)
}

// opaqueHopWarningInterval spaces the warnings about unparseable hops: a
// misconfigured proxy sends one with every request.
const opaqueHopWarningInterval = 10 * time.Minute

// lastOpaqueHopWarning is when the last of those warnings was logged (Unix
// nanoseconds).
var lastOpaqueHopWarning atomic.Int64

// warnOpaqueHop logs, at most once per interval, that a trusted proxy
// names clients in a form that is not an address. The hop itself is not
// logged: it is client data and the proxy's address is enough to find the
// misconfiguration.
func warnOpaqueHop(ctx context.Context, proxy netip.Addr) {
	now := time.Now().UnixNano()
	last := lastOpaqueHopWarning.Load()
	if now-last < int64(opaqueHopWarningInterval) || !lastOpaqueHopWarning.CompareAndSwap(last, now) {
		return
	}
	slog.WarnContext(ctx, "a trusted proxy's X-Forwarded-For names the client in a form that is not an IP address; that client is counted under the text as given (logged at most every 10 minutes)",
		"proxy", proxy.String())
}

func contains(prefixes []netip.Prefix, a netip.Addr) bool {
	// Prefix.Contains is false for any address with a zone, as a
	// link-local peer's always has: the zone names our interface, not the
	// peer.
	a = a.WithZone("")
	return slices.ContainsFunc(prefixes, func(p netip.Prefix) bool { return p.Contains(a) })
}
