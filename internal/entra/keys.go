package entra

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Cache timings, from Microsoft's signing-key-rollover guidance: refresh in
// the background every hour; on a token signed by an unknown key, refetch,
// but not more often than every five minutes (a stream of forged kids must
// not turn into a stream of fetches).
const (
	refreshEvery = time.Hour
	minRefetch   = 5 * time.Minute
	fetchTimeout = 30 * time.Second
)

// Metadata is the part of a tenant's OpenID configuration the broker uses.
type Metadata struct {
	Issuer        string // may hold the literal {tenantid} on organizations/common
	TokenEndpoint string
	JWKSURI       string
	// TenantID is the tenant GUID taken from a tenant-specific issuer; empty
	// for organizations/common.
	TenantID          string
	MSGraphHost       string // e.g. graph.microsoft.com
	CloudInstanceName string // e.g. microsoftonline.com
	// KeyIDs lists the signing keys currently published, sorted.
	KeyIDs    []string
	FetchedAt time.Time
}

// signingKey is a published RSA key; issuer is the per-key issuer (template)
// some v2 key sets carry.
type signingKey struct {
	key    *rsa.PublicKey
	issuer string
}

type cacheKey struct {
	authority, tenant string
	version           Version
}

func keyOf(ep Endpoint) cacheKey {
	return cacheKey{ep.authority(), strings.ToLower(ep.tenant()), ep.Version}
}

type keyCache struct {
	c       *Client
	mu      sync.Mutex
	tenants map[cacheKey]*tenantKeys
}

// tenantKeys is the cached state of one (authority, tenant, version). All
// fields are guarded by keyCache.mu; fetches run outside the lock.
type tenantKeys struct {
	meta      *Metadata
	keys      map[string]signingKey
	attempted time.Time // last fetch start, successful or not
	lastErr   error
	inflight  chan struct{} // closed when the running fetch ends; nil when idle
}

func newKeyCache(c *Client) *keyCache {
	return &keyCache{c: c, tenants: make(map[cacheKey]*tenantKeys)}
}

// Metadata returns the endpoint's OpenID configuration and published keys,
// fetching them if they are not cached. It is what the "try" step shows.
func (c *Client) Metadata(ctx context.Context, ep Endpoint) (*Metadata, error) {
	if err := ep.check(); err != nil {
		return nil, err
	}
	m, _, err := c.keys.get(ctx, ep, false)
	return m, err
}

// get returns the cached metadata and keys. With unknownKID set the caller
// has seen a kid the cache lacks: it waits for a refetch unless one ran in the
// last minRefetch. A stale entry is refreshed in the background while the
// last-known-good one is served; an empty one is fetched while waiting.
func (kc *keyCache) get(ctx context.Context, ep Endpoint, unknownKID bool) (*Metadata, map[string]signingKey, error) {
	k := keyOf(ep)
	now := kc.c.now()
	kc.mu.Lock()
	t := kc.tenants[k]
	if t == nil {
		t = &tenantKeys{}
		kc.tenants[k] = t
	}
	var wait bool
	switch {
	case t.meta == nil:
		wait = true
	case unknownKID:
		wait = t.inflight != nil || now.Sub(t.attempted) >= minRefetch
	case now.Sub(t.meta.FetchedAt) >= refreshEvery:
		// Failed refreshes are retried at the unknown-kid pace, not per login.
		wait = false
		if now.Sub(t.attempted) >= minRefetch {
			kc.start(ep, k, t, now)
		}
	}
	if !wait {
		m, keys := t.meta, t.keys
		kc.mu.Unlock()
		return m, keys, nil
	}
	done := kc.start(ep, k, t, now)
	kc.mu.Unlock()

	select {
	case <-done:
	case <-ctx.Done():
		return nil, nil, unreachable(fmt.Errorf("waiting for tenant keys: %w", ctx.Err()))
	}
	kc.mu.Lock()
	defer kc.mu.Unlock()
	if t.meta == nil {
		return nil, nil, t.lastErr
	}
	return t.meta, t.keys, nil
}

// lastErr is the failure of the endpoint's last fetch, nil once one
// succeeded.
func (kc *keyCache) lastErr(ep Endpoint) error {
	kc.mu.Lock()
	defer kc.mu.Unlock()
	if t := kc.tenants[keyOf(ep)]; t != nil {
		return t.lastErr
	}
	return nil
}

// start launches a fetch unless one is running and returns its done channel.
// The fetch does not use the caller's context: other callers wait on it too,
// and one caller giving up must not fail them all. kc.mu must be held.
func (kc *keyCache) start(ep Endpoint, k cacheKey, t *tenantKeys, now time.Time) <-chan struct{} {
	if t.inflight != nil {
		return t.inflight
	}
	done := make(chan struct{})
	t.inflight = done
	t.attempted = now
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
		defer cancel()
		m, keys, err := kc.c.fetchKeys(ctx, ep)
		kc.mu.Lock()
		if err != nil {
			// Keep the last-known-good metadata and keys.
			t.lastErr = err
		} else {
			t.meta, t.keys, t.lastErr = m, keys, nil
		}
		t.inflight = nil
		kc.mu.Unlock()
		close(done)
	}()
	return done
}

func (c *Client) fetchKeys(ctx context.Context, ep Endpoint) (*Metadata, map[string]signingKey, error) {
	body, err := c.get(ctx, ep.metadataURL())
	if err != nil {
		return nil, nil, fmt.Errorf("entra: tenant metadata: %w", err)
	}
	var doc struct {
		Issuer            string `json:"issuer"`
		TokenEndpoint     string `json:"token_endpoint"`
		JWKSURI           string `json:"jwks_uri"`
		MSGraphHost       string `json:"msgraph_host"`
		CloudInstanceName string `json:"cloud_instance_name"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, nil, fmt.Errorf("entra: tenant metadata: %w", err)
	}
	if doc.Issuer == "" || doc.JWKSURI == "" {
		return nil, nil, errors.New("entra: tenant metadata lacks issuer or jwks_uri")
	}
	// Entra publishes its keys on the login host itself (reference §
	// metadata: {authority}/{tenant}/discovery/keys); keys from anywhere
	// else are refused, whoever wrote the metadata.
	base, err := url.Parse(ep.authority())
	if err != nil {
		return nil, nil, fmt.Errorf("entra: authority: %w", err)
	}
	if _, err := sameOrigin(base, doc.JWKSURI); err != nil {
		return nil, nil, fmt.Errorf("entra: tenant metadata's jwks_uri: %w", err)
	}
	body, err = c.get(ctx, doc.JWKSURI)
	if err != nil {
		return nil, nil, fmt.Errorf("entra: tenant keys: %w", err)
	}
	keys, err := parseKeys(body)
	if err != nil {
		return nil, nil, err
	}
	m := &Metadata{
		Issuer:            doc.Issuer,
		TokenEndpoint:     doc.TokenEndpoint,
		JWKSURI:           doc.JWKSURI,
		TenantID:          issuerTenant(doc.Issuer),
		MSGraphHost:       doc.MSGraphHost,
		CloudInstanceName: doc.CloudInstanceName,
		FetchedAt:         c.now(),
	}
	for kid := range keys {
		m.KeyIDs = append(m.KeyIDs, kid)
	}
	sort.Strings(m.KeyIDs)
	return m, keys, nil
}

// parseKeys reads a JWKS. One key Go cannot use (another kty, a malformed
// certificate) is skipped rather than losing the whole set.
func parseKeys(body []byte) (map[string]signingKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("entra: tenant keys: %w", err)
	}
	keys := make(map[string]signingKey, len(set.Keys))
	for _, raw := range set.Keys {
		var jwk jose.JSONWebKey
		if jwk.UnmarshalJSON(raw) != nil || jwk.KeyID == "" || (jwk.Use != "" && jwk.Use != "sig") {
			continue
		}
		pub, ok := jwk.Key.(*rsa.PublicKey)
		if !ok {
			continue
		}
		var extra struct {
			Issuer string `json:"issuer"`
		}
		_ = json.Unmarshal(raw, &extra)
		keys[jwk.KeyID] = signingKey{key: pub, issuer: extra.Issuer}
	}
	if len(keys) == 0 {
		return nil, errors.New("entra: tenant keys: no usable RSA signing key")
	}
	return keys, nil
}

// issuerTenant returns the tenant segment of an Entra issuer:
// https://sts.windows.net/{tid}/ and https://login.microsoftonline.com/{tid}/v2.0
// both carry it first in the path. A template ({tenantid}) yields "".
func issuerTenant(iss string) string {
	u, err := url.Parse(iss)
	if err != nil {
		return ""
	}
	seg, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if seg == "" || strings.Contains(seg, "{") {
		return ""
	}
	return seg
}
