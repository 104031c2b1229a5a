package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/tokens"
)

// APIStore finds APIs and client grants.
type APIStore interface {
	GetResourceServerByIdentifier(ctx context.Context, identifier string) (*store.ResourceServer, error)
	FindClientGrant(ctx context.Context, clientID, audience string) (*store.ClientGrant, error)
}

// RefreshTokenStore keeps refresh tokens.
type RefreshTokenStore interface {
	CreateRefreshToken(ctx context.Context, rt *store.RefreshToken) error
	GetRefreshTokenWithUser(ctx context.Context, id string) (*store.RefreshToken, *store.User, error)
	ExchangeRefreshToken(ctx context.Context, ex store.RefreshExchange) error
	RefreshTokenReused(ctx context.Context, id string, now time.Time, leeway time.Duration) (bool, error)
	RevokeRefreshTokenFamily(ctx context.Context, familyID string) error
}

const grantRefreshToken = "refresh_token"

// Auth0's defaults for a client's refresh_token object.
const (
	defaultRefreshLifetime     = 2592000 * time.Second
	defaultRefreshIdleLifetime = 1296000 * time.Second
	maxRefreshLeeway           = 60 * time.Second
)

// refreshPolicy is a client's Auth0 refresh_token object.
type refreshPolicy struct {
	rotating       bool
	leeway         time.Duration
	lifetime, idle time.Duration // 0: infinite
}

func refreshPolicyOf(c *store.Client) refreshPolicy {
	var doc struct {
		RotationType              string `json:"rotation_type"`
		ExpirationType            string `json:"expiration_type"`
		Leeway                    int64  `json:"leeway"`
		TokenLifetime             int64  `json:"token_lifetime"`
		InfiniteTokenLifetime     *bool  `json:"infinite_token_lifetime"`
		IdleTokenLifetime         int64  `json:"idle_token_lifetime"`
		InfiniteIdleTokenLifetime *bool  `json:"infinite_idle_token_lifetime"`
	}
	if len(c.RefreshToken) > 0 {
		_ = json.Unmarshal(c.RefreshToken, &doc)
	}
	// Lifetimes apply to expiring tokens only; infinite_* default to
	// true for non-expiring tokens and false for expiring ones, as in
	// Auth0.
	expiring := doc.ExpirationType == "expiring" || doc.RotationType == "rotating"
	lifetime := func(secs int64, infinite *bool, def time.Duration) time.Duration {
		if !expiring || (infinite != nil && *infinite) {
			return 0
		}
		if secs > 0 {
			return time.Duration(secs) * time.Second
		}
		return def
	}
	return refreshPolicy{
		rotating: doc.RotationType == "rotating",
		leeway:   min(max(time.Duration(doc.Leeway)*time.Second, 0), maxRefreshLeeway),
		lifetime: lifetime(doc.TokenLifetime, doc.InfiniteTokenLifetime, defaultRefreshLifetime),
		idle:     lifetime(doc.IdleTokenLifetime, doc.InfiniteIdleTokenLifetime, defaultRefreshIdleLifetime),
	}
}

func after(now time.Time, d time.Duration) *time.Time {
	if d <= 0 {
		return nil
	}
	t := now.Add(d)
	return &t
}

// userGrant is what one user token response is issued for: a login, or
// the exchange of a refresh token.
type userGrant struct {
	client *store.Client
	user   *store.User
	// requested is the scope parameter as sent; scopes is what is granted.
	requested string
	scopes    []string
	api       *store.ResourceServer // nil: no API, the access token is good for /userinfo
	gty       string
	ip, ua    string
	// fromRefresh marks an exchange: the caller returns the refresh token.
	fromRefresh bool
	// tenantGeneration is that of the connection the login read, which
	// its refresh token keeps (stillGranted).
	tenantGeneration int64
}

// userScopes are the scopes a login grants: the OIDC scopes (openid alone
// meaning all of them, as in Auth0), offline_access when a refresh token
// may be issued, and the API's scopes (all of them when none is named).
func userScopes(requested string, c *store.Client, api *store.ResourceServer) []string {
	req := strings.Fields(requested)
	out := grantedScopes(requested)
	if slices.Contains(req, "offline_access") && slices.Contains(c.GrantTypes, grantRefreshToken) && (api == nil || api.AllowOfflineAccess) {
		out = append(out, "offline_access")
	}
	if api == nil {
		return out
	}
	for _, s := range api.Scopes {
		if (len(req) == 0 || slices.Contains(req, s.Value)) && !slices.Contains(out, s.Value) {
			out = append(out, s.Value)
		}
	}
	return out
}

// userAPI resolves the audience of a user grant: none (or /userinfo) for
// an opaque access token, else an API. The Management API never accepts
// user tokens. default_audience applies when audience is omitted.
func (p *Provider) userAPI(ctx context.Context, t *tokenRequest) (*store.ResourceServer, error) {
	aud := t.get("audience")
	if aud == "" {
		def, _, err := p.tenantSettings(ctx)
		if err != nil {
			return nil, err
		}
		aud = def
	}
	switch {
	case aud == "" || aud == p.issuer+"userinfo":
		return nil, nil
	case aud == p.mgmtAudience:
		return nil, &Error{Status: http.StatusForbidden, Code: "access_denied", Description: "Client is not authorized to access \"" + aud + "\" with a user grant."}
	}
	return p.lookupAPI(ctx, aud)
}

func (p *Provider) lookupAPI(ctx context.Context, aud string) (*store.ResourceServer, error) {
	if p.apis == nil {
		return nil, errServiceNotEnabled(aud)
	}
	api, err := p.apis.GetResourceServerByIdentifier(ctx, aud)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errServiceNotEnabled(aud)
	}
	if err != nil {
		return nil, errServer(err)
	}
	return api, nil
}

func errServiceNotEnabled(aud string) *Error {
	return &Error{Status: http.StatusForbidden, Code: "access_denied", Description: "Service not enabled within domain: " + aud}
}

// apiTokenLifetime is the API's token_lifetime, Auth0's default a day.
func apiTokenLifetime(api *store.ResourceServer) time.Duration {
	if api.TokenLifetime > 0 {
		return boundedLifetime(int64(api.TokenLifetime))
	}
	return accessTokenLifetime
}

// boundedLifetime is a lifetime of seconds, at most tokens.MaxTokenLifetime:
// the previous signing key is published that long, so a longer-lived token
// would stop verifying before it expires. Comparing in seconds keeps a
// stored value the Management API would refuse from overflowing the
// Duration into an exp in the past.
func boundedLifetime(seconds int64) time.Duration {
	if seconds > int64(tokens.MaxTokenLifetime/time.Second) {
		return tokens.MaxTokenLifetime
	}
	return time.Duration(seconds) * time.Second
}

// signAPIAccessToken signs a JWT access token for an API.
func (p *Provider) signAPIAccessToken(g userGrant, now time.Time) (string, time.Duration, error) {
	lifetime := apiTokenLifetime(g.api)
	var aud any = g.api.Identifier
	if slices.Contains(g.scopes, "openid") {
		aud = []string{g.api.Identifier, p.issuer + "userinfo"}
	}
	at, err := p.keys.Sign(accessTokenClaims{
		Iss: p.issuer, Sub: g.user.UserID, Aud: aud, Iat: now.Unix(), Exp: now.Add(lifetime).Unix(),
		Jti: newJTI(), Scope: strings.Join(g.scopes, " "), Gty: g.gty, Azp: g.client.ClientID,
	})
	return at, lifetime, err
}

// newRefreshToken creates the token "<id>.<secret>" and its row; the row
// holds SHA-256(secret) only. Its connection is the user's, which a login
// has just set to its own.
func newRefreshToken(g userGrant, now time.Time, pol refreshPolicy) (string, *store.RefreshToken) {
	id, secret := make([]byte, 16), make([]byte, 32)
	// The id starts with the time in milliseconds, so that the rows of one
	// moment share pages of the primary key's index instead of each
	// landing on a random one (a page written per grant). Not its last
	// pages: base64url's digits do not sort in their values' order, so
	// the id's first characters place each few seconds' rows in a range
	// of their own. It is a lookup key, not the secret: the 32 random
	// bytes after the dot are.
	msec := now.UnixMilli()
	for i := range 6 {
		id[i] = byte(msec >> (40 - 8*i))
	}
	_, _ = rand.Read(id[6:])
	_, _ = rand.Read(secret)
	sum := sha256.Sum256(secret)
	rt := &store.RefreshToken{
		ID: base64.RawURLEncoding.EncodeToString(id), SecretHash: sum[:],
		ClientID: g.client.ClientID, UserID: g.user.UserID, Scope: strings.Join(g.scopes, " "),
		Rotating: pol.rotating, CreatedAt: now,
		ExpiresAt: after(now, pol.lifetime), IdleExpiresAt: after(now, pol.idle),
		InitialIP: g.ip, InitialUA: g.ua, LastIP: g.ip, LastUA: g.ua, Connection: g.user.Connection,
		TenantGeneration: g.tenantGeneration,
	}
	if g.api != nil {
		rt.Audience = g.api.Identifier
	}
	return rt.ID + "." + base64.RawURLEncoding.EncodeToString(secret), rt
}

// issueRefreshToken starts a new refresh token family for a login.
func (p *Provider) issueRefreshToken(ctx context.Context, g userGrant, now time.Time) (string, error) {
	if p.refresh == nil {
		return "", nil
	}
	tok, rt := newRefreshToken(g, now, refreshPolicyOf(g.client))
	if err := p.refresh.CreateRefreshToken(ctx, rt); err != nil {
		return "", fmt.Errorf("store refresh token: %w", err)
	}
	return tok, nil
}

// findRefreshToken returns the stored token a presented one names, and
// its user, after comparing the secret's hash in constant time.
func (p *Provider) findRefreshToken(ctx context.Context, raw string) (*store.RefreshToken, *store.User, error) {
	id, secret, ok := strings.Cut(raw, ".")
	sec, err := base64.RawURLEncoding.DecodeString(secret)
	if !ok || err != nil || len(id) != 22 {
		return nil, nil, store.ErrNotFound
	}
	rt, u, err := p.refresh.GetRefreshTokenWithUser(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	sum := sha256.Sum256(sec)
	if subtle.ConstantTimeCompare(sum[:], rt.SecretHash) != 1 {
		return nil, nil, store.ErrNotFound
	}
	return rt, u, nil
}
