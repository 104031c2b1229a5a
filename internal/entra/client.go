package entra

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// GlobalAuthority is the Entra login host of Microsoft's global cloud. National
// clouds use their own (login.microsoftonline.us, login.partner.microsoftonline.cn).
const GlobalAuthority = "https://login.microsoftonline.com"

// GlobalGraph is Microsoft Graph in the global cloud.
const GlobalGraph = "https://graph.microsoft.com"

// Version selects the identity platform endpoint: v1 takes resource=, v2 takes scope=.
type Version int

const (
	V1 Version = 1
	V2 Version = 2
)

// Endpoint names one tenant on one Entra authority host.
type Endpoint struct {
	// Authority is the login host as a URL, e.g. GlobalAuthority, or an
	// emulator's http://127.0.0.1:port. Empty means GlobalAuthority.
	Authority string
	// Tenant is the tenant's domain or id. Ignored when Common is set.
	Tenant string
	// Common uses Entra's multi-tenant endpoint. For the password grant on
	// v2 that is "organizations": "common" and "consumers" refuse it
	// (AADSTS9001023). v1 has no "organizations" (AADSTS90002, tenant not
	// found: panva/openid-client#175); its multi-tenant endpoint is
	// "common" (AD v1-protocols-oauth-code.md), which takes the grant.
	Common  bool
	Version Version
}

func (e Endpoint) authority() string {
	if e.Authority == "" {
		return GlobalAuthority
	}
	return strings.TrimRight(e.Authority, "/")
}

func (e Endpoint) tenant() string {
	switch {
	case e.Common && e.Version == V1:
		return "common"
	case e.Common:
		return "organizations"
	}
	return e.Tenant
}

func (e Endpoint) check() error {
	if e.Version != V1 && e.Version != V2 {
		return fmt.Errorf("entra: unknown identity API version %d", e.Version)
	}
	if e.Common {
		return nil
	}
	switch t := strings.ToLower(e.Tenant); t {
	case "":
		return errors.New("entra: no tenant")
	case "common", "consumers":
		return fmt.Errorf("entra: tenant %q cannot be used with the password grant; use the tenant domain or the common endpoint option (organizations)", t)
	}
	if strings.ContainsAny(e.Tenant, "/?#") {
		return fmt.Errorf("entra: invalid tenant %q", e.Tenant)
	}
	return nil
}

// TokenURL is {authority}/{tenant}/oauth2/token (v1) or .../oauth2/v2.0/token (v2).
func (e Endpoint) TokenURL() string {
	if e.Version == V1 {
		return e.authority() + "/" + e.tenant() + "/oauth2/token"
	}
	return e.authority() + "/" + e.tenant() + "/oauth2/v2.0/token"
}

// metadataURL is the OpenID configuration of the endpoint's version.
func (e Endpoint) metadataURL() string {
	if e.Version == V1 {
		return e.authority() + "/" + e.tenant() + "/.well-known/openid-configuration"
	}
	return e.authority() + "/" + e.tenant() + "/v2.0/.well-known/openid-configuration"
}

// Options configures a Client. The zero value is usable.
type Options struct {
	// Transport defaults to NewTransport(). Tests inject their own.
	Transport http.RoundTripper
	// Timeout bounds each upstream call, on top of any deadline the caller's
	// context carries. Default 30s.
	Timeout time.Duration
	// Now is the clock for token validation and caching. Default time.Now.
	Now func() time.Time
	// GraphPageSize is the $top of Graph collection requests. Default 999,
	// Graph's maximum for directory objects, so that a user with many groups
	// costs few round trips.
	GraphPageSize int
	// RealmTimeout bounds a user realm lookup (UserRealm). Default 3s: the
	// lookup only explains a refused password, and must not hold it up.
	RealmTimeout time.Duration
}

// Client talks to Entra and Graph. It is safe for concurrent use; share one.
type Client struct {
	hc           *http.Client
	timeout      time.Duration
	realmTimeout time.Duration
	now          func() time.Time
	pageSize     int
	keys         *keyCache
	realms       realmCache
}

// NewClient returns a Client with its own metadata and key cache.
func NewClient(opts Options) *Client {
	rt := opts.Transport
	if rt == nil {
		rt = NewTransport()
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	pageSize := opts.GraphPageSize
	if pageSize <= 0 || pageSize > 999 {
		pageSize = 999
	}
	realmTimeout := opts.RealmTimeout
	if realmTimeout <= 0 {
		realmTimeout = 3 * time.Second
	}
	c := &Client{
		hc: &http.Client{
			Transport: rt,
			// Following a 307/308 would re-send the credential form to
			// wherever the redirect points; a POST's redirect is returned as is.
			// So is a Graph call's: net/http keeps the bearer token on a
			// redirect to the same host name on any port or scheme, and a
			// redirect elsewhere would get around the nextLink origin check.
			// Metadata and keys follow a redirect only within their origin:
			// keys fetched from another host, or over http after https,
			// would let whoever serves them sign id_tokens.
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				first := via[0]
				if first.Method != http.MethodGet || first.Header.Get("Authorization") != "" || len(via) >= 5 ||
					!sameHost(req.URL, first.URL) {
					return http.ErrUseLastResponse
				}
				return nil
			},
		},
		timeout:      timeout,
		realmTimeout: realmTimeout,
		now:          now,
		pageSize:     pageSize,
	}
	c.keys = newKeyCache(c)
	return c
}

// NewTransport returns the transport a broker wants in front of Entra: a few
// hundred concurrent logins must reuse connections rather than open (and TLS
// handshake) a new one each, which is what Go's default of two idle
// connections per host ends up doing under load.
func NewTransport() *http.Transport {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 20 * time.Second,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512,
		MaxConnsPerHost:       0,
		// Below the idle timeout of Azure's load balancers (4 min), so a
		// pooled connection is rarely closed under a credential POST, which
		// could then not be retried.
		IdleConnTimeout: 90 * time.Second,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: 30 * time.Second,
			PingTimeout:     10 * time.Second,
		},
	}
}

// maxBody bounds what is read from any upstream response.
const maxBody = 4 << 20

func readBody(resp *http.Response) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBody {
		return nil, errors.New("response too large")
	}
	return b, nil
}

// unreachable wraps a transport failure so the broker answers it as an outage.
func unreachable(err error) *Error {
	return &Error{Class: ClassUnavailable, Err: err}
}

// get fetches a metadata or keys document. A non-2xx answer is an *Error.
func (c *Client) get(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("entra: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, unreachable(err)
	}
	defer resp.Body.Close()
	body, err := readBody(resp)
	if err != nil {
		return nil, unreachable(fmt.Errorf("reading %s: %w", url, err))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, newError(resp, body)
	}
	return body, nil
}
