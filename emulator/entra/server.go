package entra

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a Server. The zero value is usable: it generates a
// 2048-bit key, uses the wall clock and Graph's default page size.
type Options struct {
	// BaseURL is the public URL of the emulator (scheme://host[:port]); it
	// is put in issuers, metadata and @odata.nextLink. Under httptest it is
	// known only after the listener starts: call SetBaseURL then.
	BaseURL string
	// STSURL, when set, is the base of v1 issuers instead of BaseURL, e.g.
	// "https://sts.windows.net" to mint issuers exactly like Entra's.
	STSURL string
	// Clock replaces time.Now, so tests can move past token expiry.
	Clock func() time.Time
	// GraphPageSize is the default page size of Graph collections (Graph
	// uses 100); $top overrides it per request.
	GraphPageSize int
	// GraphMaxPageSize, when positive, caps every Graph page, $top
	// included. Graph may return fewer objects than $top asks for, and a
	// client must follow @odata.nextLink regardless; this makes that case
	// reproducible from outside the process.
	GraphMaxPageSize int
	// Latency is added to every request, for benchmarks; per-endpoint
	// delays are faults (see Fault).
	Latency time.Duration
	// KeyBits is the RSA size of generated signing keys (default 2048). A
	// smaller size (1024) is a documented benchmark mode: it signs about
	// four times faster.
	KeyBits int
	// SigningKey, when set, is the initial signing key, sparing the key
	// generation (tests share one key across servers).
	SigningKey *rsa.PrivateKey
	// KeyGracePeriod is how long a replaced signing key stays published
	// (default 24h, the key cache lifetime Microsoft recommends).
	KeyGracePeriod time.Duration
	// TokenLifetime is the lifetime of access and ID tokens (default
	// 3599s, the expires_in of the documented samples).
	TokenLifetime time.Duration
	// ReuseTokens, when positive, answers an identical grant (same user,
	// client, resource and scopes) within this window with the tokens
	// already issued instead of signing new ones: a benchmark mode that
	// takes RSA signing off the hot path.
	ReuseTokens time.Duration
	// Logger receives one line per request; nil discards. Passwords and
	// secrets are never logged.
	Logger *slog.Logger
}

// Server is the emulator. It implements http.Handler.
type Server struct {
	dir      *Directory
	opts     Options
	baseURL  atomic.Pointer[string]
	mux      *http.ServeMux
	keys     keySet
	faults   faultTable
	counters counterSet
	codes    codeStore
	sealer   cipher.AEAD
	cache    tokenCache
	log      *slog.Logger

	stateMu     sync.RWMutex
	states      map[string]UserState // runtime overrides keyed by lower-case UPN
	enabled     map[string]bool
	legacyGraph LegacyGraphMode
}

// New builds a server for the directory. Key material is generated here,
// never per request.
func New(dir *Directory, opts Options) (*Server, error) {
	if dir == nil {
		return nil, errors.New("entra: nil directory")
	}
	// A Directory built in Go, or parsed and then changed (a test adding
	// users to the example), needs validating and indexing again.
	if err := dir.index(); err != nil {
		return nil, fmt.Errorf("entra: %w", err)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.GraphPageSize <= 0 {
		opts.GraphPageSize = 100
	}
	if opts.KeyBits == 0 {
		opts.KeyBits = 2048
	}
	if opts.KeyGracePeriod <= 0 {
		opts.KeyGracePeriod = 24 * time.Hour
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = 3599 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		dir:         dir,
		opts:        opts,
		log:         log,
		states:      map[string]UserState{},
		enabled:     map[string]bool{},
		legacyGraph: dir.LegacyGraph,
		keys:        keySet{bits: opts.KeyBits, grace: opts.KeyGracePeriod},
	}
	s.SetBaseURL(opts.BaseURL)
	if _, err := s.keys.publish(opts.SigningKey, s.now()); err != nil {
		return nil, fmt.Errorf("entra: %w", err)
	}
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return nil, fmt.Errorf("entra: token sealing key: %w", err)
	}
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, fmt.Errorf("entra: %w", err)
	}
	if s.sealer, err = cipher.NewGCM(block); err != nil {
		return nil, fmt.Errorf("entra: %w", err)
	}
	for name, f := range dir.Faults {
		s.faults.set(name, f)
	}
	s.routes()
	return s, nil
}

// SetBaseURL sets the public URL put in issuers, metadata and next links.
func (s *Server) SetBaseURL(u string) {
	u = strings.TrimSuffix(u, "/")
	s.baseURL.Store(&u)
	s.keys.mu.Lock()
	s.keys.docs = nil
	s.keys.mu.Unlock()
}

// BaseURL returns the public URL in use.
func (s *Server) BaseURL() string { return s.base() }

func (s *Server) base() string { return *s.baseURL.Load() }

func (s *Server) stsBase() string {
	if s.opts.STSURL != "" {
		return strings.TrimSuffix(s.opts.STSURL, "/")
	}
	return s.base()
}

func (s *Server) now() time.Time { return s.opts.Clock() }

// TenantID returns the id of the first tenant of the directory: a stable
// value tests can build URLs and expected issuers from.
func (s *Server) TenantID() string { return s.dir.Tenants[0].ID }

// IssuerV1 and IssuerV2 return the issuers of tokens for a tenant id.
func (s *Server) IssuerV1(tid string) string { return s.stsBase() + "/" + tid + "/" }

// IssuerV2 returns the v2.0 issuer for a tenant id.
func (s *Server) IssuerV2(tid string) string { return s.base() + "/" + tid + "/v2.0" }

// PublishKey publishes a new signing key without signing with it yet, the
// first half of a rollover; it returns the key's kid.
func (s *Server) PublishKey() (string, error) {
	k, err := s.keys.publish(nil, s.now())
	if err != nil {
		return "", fmt.Errorf("entra: %w", err)
	}
	s.cache.clear()
	return k.kid, nil
}

// ActivateKey makes a published key the signing key. The previous one stays
// published for Options.KeyGracePeriod (measured on Options.Clock).
func (s *Server) ActivateKey(kid string) error {
	if err := s.keys.activate(kid, s.now()); err != nil {
		return fmt.Errorf("entra: activate %s: %w", kid, err)
	}
	s.cache.clear()
	return nil
}

// RollKey publishes a new key and signs with it from now on.
func (s *Server) RollKey() (string, error) {
	kid, err := s.PublishKey()
	if err != nil {
		return "", err
	}
	return kid, s.ActivateKey(kid)
}

// SigningKeyID returns the kid tokens are signed with now.
func (s *Server) SigningKeyID() string { return s.keys.signer().kid }

// PublishedKeyIDs returns the kids in the keys document now.
func (s *Server) PublishedKeyIDs() []string {
	var out []string
	for _, k := range s.keys.published(s.now()) {
		out = append(out, k.kid)
	}
	return out
}

// SetUserState changes a user's state at run time, e.g. to lock an account
// between two sign-ins.
func (s *Server) SetUserState(upn string, st UserState) error {
	if s.findUser(upn) == nil {
		return fmt.Errorf("entra: no user %q", upn)
	}
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	s.states[strings.ToLower(upn)] = st
	s.cache.clear()
	return nil
}

// SetAccountEnabled overrides a user's accountEnabled at run time.
func (s *Server) SetAccountEnabled(upn string, enabled bool) error {
	if s.findUser(upn) == nil {
		return fmt.Errorf("entra: no user %q", upn)
	}
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	s.enabled[strings.ToLower(upn)] = enabled
	s.cache.clear()
	return nil
}

// SetLegacyGraph switches the Azure AD Graph between served and retired.
func (s *Server) SetLegacyGraph(m LegacyGraphMode) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	s.legacyGraph = m
}

func (s *Server) legacyMode() LegacyGraphMode {
	s.stateMu.RLock()
	defer s.stateMu.RUnlock()
	return s.legacyGraph
}

func (s *Server) userState(u *User) (UserState, bool) {
	s.stateMu.RLock()
	defer s.stateMu.RUnlock()
	k := strings.ToLower(u.UserPrincipalName)
	st, ok := s.states[k]
	if !ok {
		st = u.State
	}
	en, ok := s.enabled[k]
	if !ok {
		en = u.Enabled()
	}
	return st, en
}

func (s *Server) findUser(upn string) *User {
	for _, t := range s.dir.Tenants {
		if u := t.user(upn); u != nil {
			return u
		}
	}
	return nil
}

// tenantByDomain finds the tenant owning a verified domain.
func (s *Server) tenantByDomain(domain string) *Tenant {
	for _, t := range s.dir.Tenants {
		if d, ok := t.domain(domain); ok && d.IsVerified {
			return t
		}
	}
	return nil
}

// resolveTenant interprets the {tenant} path segment: a tenant id, a
// verified domain, or one of the multi-tenant aliases (returned as alias
// with a nil tenant).
func (s *Server) resolveTenant(seg string) (t *Tenant, alias string, ok bool) {
	switch strings.ToLower(seg) {
	case "common", "organizations", "consumers":
		return nil, strings.ToLower(seg), true
	}
	for _, t := range s.dir.Tenants {
		if strings.EqualFold(t.ID, seg) {
			return t, "", true
		}
	}
	if t := s.tenantByDomain(seg); t != nil {
		return t, "", true
	}
	return nil, "", false
}

// endpointTenant is resolveTenant for the protocol endpoints of one
// version: "organizations" is an alias of the v2 endpoint only, so v1
// answers it as an unknown tenant (AADSTS90002, panva/openid-client#175);
// v1's multi-tenant endpoint is "common" (AD v1-protocols-oauth-code.md).
func (s *Server) endpointTenant(seg string, v2 bool) (t *Tenant, alias string, ok bool) {
	t, alias, ok = s.resolveTenant(seg)
	if !v2 && alias == "organizations" {
		return nil, "", false
	}
	return t, alias, ok
}

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	h := func(pattern, endpoint string, fn http.HandlerFunc) {
		s.mux.Handle(pattern, s.instrument(endpoint, fn))
	}
	h("/{tenant}/oauth2/token", epToken, s.serveToken(false))
	h("/{tenant}/oauth2/v2.0/token", epToken, s.serveToken(true))
	h("GET /{tenant}/.well-known/openid-configuration", epMetadata, s.serveMetadata(false))
	h("GET /{tenant}/v2.0/.well-known/openid-configuration", epMetadata, s.serveMetadata(true))
	h("GET /{tenant}/discovery/keys", epKeys, s.serveKeys(false))
	h("GET /{tenant}/discovery/v2.0/keys", epKeys, s.serveKeys(true))
	h("GET /common/discovery/instance", epMetadata, s.serveInstanceDiscovery)
	h("GET /discovery/keys", epKeys, s.serveKeys(false))
	h("GET /discovery/v2.0/keys", epKeys, s.serveKeys(true))
	h("/{tenant}/oauth2/authorize", epAuthorize, s.serveAuthorize(false))
	h("/{tenant}/oauth2/v2.0/authorize", epAuthorize, s.serveAuthorize(true))
	// MSAL Go spells the path /common/UserRealm/ (reference §4.1).
	h("GET /common/userrealm/{user}", epUserRealm, s.serveUserRealm)
	h("GET /common/UserRealm/{user}", epUserRealm, s.serveUserRealm)

	h("GET /oidc/userinfo", epGraph, s.serveUserInfo)
	h("GET /{tenant}/openid/userinfo", epGraph, s.serveUserInfo)
	h("GET /v1.0/me", epGraph, s.serveGraphMe)
	h("GET /v1.0/me/memberOf", epGraph, s.serveGraphMemberOf(false))
	h("GET /v1.0/me/transitiveMemberOf", epGraph, s.serveGraphMemberOf(true))
	h("POST /v1.0/me/getMemberGroups", epGraph, s.serveGraphGetMemberGroups)
	h("POST /v1.0/directoryObjects/getByIds", epGraph, s.serveGraphGetByIDs)

	h("GET /me", epAADGraph, s.serveAADGraphMe)
	h("GET /{tenant}/me", epAADGraph, s.serveAADGraphMe)
	h("GET /me/memberOf", epAADGraph, s.serveAADGraphMemberOf)
	h("GET /{tenant}/me/memberOf", epAADGraph, s.serveAADGraphMemberOf)

	s.adminRoutes()
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}
