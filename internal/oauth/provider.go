package oauth

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/connection"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/tokens"
)

// ClientGetter finds applications.
type ClientGetter interface {
	GetClient(ctx context.Context, clientID string) (*store.Client, error)
}

// SettingsGetter reads the tenant settings.
type SettingsGetter interface {
	GetTenantSettings(ctx context.Context) (*store.TenantSettings, error)
}

// Opener opens sealed secrets.
type Opener interface {
	Open(ciphertext, aad []byte) ([]byte, error)
}

// Signer signs JWTs with the current key, publishes the key set, and
// verifies Gatehouse's own JWTs (access tokens presented at /userinfo).
type Signer interface {
	Sign(claims any) (string, error)
	// KID is the key that signs, "" when none can (tokens.ErrNoSigningKey).
	KID() string
	JWKS() []byte
	ParseJWT(ctx context.Context, token, issuer, audience string, now time.Time, skew time.Duration) (*tokens.Claims, error)
}

// Config is what a Provider is built from.
type Config struct {
	// Issuer is the public base URL ending in "/".
	Issuer   string
	Clients  ClientGetter
	Settings SettingsGetter
	Secrets  Opener
	Keys     Signer
	// ManagementScopes is every scope of the Management API; a client whose
	// ManagementScopes is ["*"] may obtain all of them.
	ManagementScopes        []string
	ManagementTokenLifetime time.Duration
	// APIs are the resource servers and client grants; without them only
	// the Management API is served.
	APIs APIStore
	// RefreshTokens keeps refresh tokens; without it none are issued.
	RefreshTokens RefreshTokenStore
	// Assertions are the client credentials and used assertions of
	// private_key_jwt; without them no assertion is accepted.
	Assertions AssertionStore
	Logger     *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	// The password grants need the following; without Connectors they
	// are not offered.
	Connections ConnectionGetter
	Users       UserStore
	Audit       *audit.Recorder
	Connectors  connection.Registry
	// Sealer seals the opaque access tokens that /userinfo accepts.
	Sealer Sealer
	// TrustedProxies are the peers whose X-Forwarded-For names the client.
	TrustedProxies []netip.Prefix
	// Guard applies attack protection to password logins; none when nil.
	Guard Guard
	// Metrics counts token requests and upstream logins; none when nil.
	Metrics Observer
}

// Observer receives what the metrics count.
type Observer interface {
	ObserveToken(grant, outcome string, d time.Duration)
	ObserveUpstream(strategy, outcome string, d time.Duration)
}

// Provider serves the Authentication API.
type Provider struct {
	issuer       string
	mgmtAudience string
	clients      ClientGetter
	settings     SettingsGetter
	secrets      Opener
	keys         Signer
	mgmtScopes   []string
	mgmtLifetime time.Duration
	logger       *slog.Logger
	now          func() time.Time
	grants       map[string]grantHandler
	apis         APIStore
	refresh      RefreshTokenStore
	assertions   AssertionStore

	connections    ConnectionGetter
	users          UserStore
	audit          *audit.Recorder
	connectors     connection.Registry
	sealer         Sealer
	trustedProxies []netip.Prefix
	guard          Guard
	metrics        Observer
}

// grantHandler answers one grant type for an authenticated client whose
// grant_types allow it.
type grantHandler func(ctx context.Context, t *tokenRequest, c *store.Client) (*tokenResponse, error)

// New builds a Provider.
func New(cfg Config) *Provider {
	p := &Provider{
		issuer:       cfg.Issuer,
		mgmtAudience: ManagementAudience(cfg.Issuer),
		clients:      cfg.Clients,
		settings:     cfg.Settings,
		secrets:      cfg.Secrets,
		keys:         cfg.Keys,
		mgmtScopes:   cfg.ManagementScopes,
		mgmtLifetime: cfg.ManagementTokenLifetime,
		apis:         cfg.APIs,
		refresh:      cfg.RefreshTokens,
		assertions:   cfg.Assertions,
		logger:       cfg.Logger,
		now:          cfg.Now,

		connections:    cfg.Connections,
		users:          cfg.Users,
		audit:          cfg.Audit,
		connectors:     cfg.Connectors,
		sealer:         cfg.Sealer,
		trustedProxies: cfg.TrustedProxies,
		guard:          cfg.Guard,
		metrics:        cfg.Metrics,
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.logger == nil {
		p.logger = slog.Default()
	}
	p.grants = map[string]grantHandler{
		"client_credentials": p.clientCredentials,
	}
	if len(p.connectors) > 0 {
		p.grants[grantPassword] = p.passwordGrant
		p.grants[grantPasswordRealm] = p.passwordGrant
		if p.refresh != nil {
			p.grants[grantRefreshToken] = p.refreshGrant
		}
	}
	return p
}

// ManagementAudience is the audience of Management API tokens.
func ManagementAudience(issuer string) string { return issuer + "api/v2/" }

// Register adds the Authentication API routes to mux.
func (p *Provider) Register(mux *http.ServeMux) {
	mux.HandleFunc("/oauth/token", p.token)
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /.well-known/jwks.json", p.jwks)
	if len(p.connectors) > 0 {
		mux.HandleFunc("/userinfo", p.userinfo)
		if p.refresh != nil {
			mux.HandleFunc("/oauth/revoke", p.revoke)
		}
	}
}
