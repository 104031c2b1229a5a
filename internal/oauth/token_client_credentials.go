package oauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/store"
)

// accessTokenClaims are the claims of a Gatehouse JWT access token.
type accessTokenClaims struct {
	Iss   string `json:"iss"`
	Sub   string `json:"sub"`
	Aud   any    `json:"aud"`
	Iat   int64  `json:"iat"`
	Exp   int64  `json:"exp"`
	Jti   string `json:"jti,omitempty"`
	Scope string `json:"scope,omitempty"`
	Gty   string `json:"gty,omitempty"`
	Azp   string `json:"azp"`
}

// clientCredentials is grant_type=client_credentials for any API, with
// its seccft or feccft event in the tenant log.
func (p *Provider) clientCredentials(ctx context.Context, t *tokenRequest, c *store.Client) (*tokenResponse, error) {
	ev := p.grantEvent(t, c, audit.SuccessExchangeClientCredentials)
	resp, err := p.issueClientCredentials(ctx, t, c, ev)
	if err != nil {
		p.recordRefusedGrant(ctx, ev, audit.FailedExchangeClientCredentials, err)
		return nil, err
	}
	p.recordGrant(ctx, ev)
	return resp, nil
}

// issueClientCredentials checks that the client has a client grant for
// the audience, and issues the requested scopes that the grant and the
// API both allow (all of them when none is requested).
func (p *Provider) issueClientCredentials(ctx context.Context, t *tokenRequest, c *store.Client, ev *audit.Event) (*tokenResponse, error) {
	if c.TokenEndpointAuthMethod == "none" {
		// A public client has no credentials to present (Auth0: public
		// apps cannot use client_credentials).
		return nil, errGrantNotAllowed("client_credentials")
	}
	audience := t.get("audience")
	if audience == "" {
		def, _, err := p.tenantSettings(ctx)
		if err != nil {
			return nil, err
		}
		audience = def
	}
	if audience == "" {
		return nil, errMissing("audience")
	}
	ev.Audience = audience
	var (
		allowed  []string
		lifetime time.Duration
	)
	if audience == p.mgmtAudience {
		allowed, lifetime = p.managementScopesOf(c), p.mgmtLifetime
		g, err := p.clientGrant(ctx, c.ClientID, audience)
		if err != nil {
			return nil, err
		}
		if g != nil {
			allowed = union(allowed, intersect(g.Scope, p.mgmtScopes))
		}
		if len(allowed) == 0 && g == nil {
			return nil, errNoClientGrant(audience)
		}
	} else {
		api, err := p.lookupAPI(ctx, audience)
		if err != nil {
			return nil, err
		}
		g, err := p.clientGrant(ctx, c.ClientID, audience)
		if err != nil {
			return nil, err
		}
		if g == nil {
			return nil, errNoClientGrant(audience)
		}
		defined := make([]string, len(api.Scopes))
		for i, s := range api.Scopes {
			defined[i] = s.Value
		}
		allowed, lifetime = intersect(g.Scope, defined), apiTokenLifetime(api)
	}
	scopes := allowed
	if requested := strings.Fields(t.get("scope")); len(requested) > 0 {
		scopes = intersect(requested, allowed)
	}
	ev.Scope = strings.Join(scopes, " ")
	now := p.now()
	exp := now.Add(lifetime)
	claims := accessTokenClaims{
		Iss:   p.issuer,
		Sub:   c.ClientID + "@clients",
		Aud:   audience,
		Iat:   now.Unix(),
		Exp:   exp.Unix(),
		Jti:   newJTI(),
		Scope: ev.Scope,
		Gty:   "client-credentials",
		Azp:   c.ClientID,
	}
	at, err := p.keys.Sign(claims)
	if err != nil {
		return nil, errServer(err)
	}
	resp := &tokenResponse{AccessToken: at, ExpiresIn: exp.Unix() - now.Unix(), TokenType: "Bearer"}
	if claims.Scope != "" {
		resp.Scope = &claims.Scope
	}
	return resp, nil
}

// clientGrant returns the client's grant for the audience, or nil.
func (p *Provider) clientGrant(ctx context.Context, clientID, audience string) (*store.ClientGrant, error) {
	if p.apis == nil {
		return nil, nil
	}
	g, err := p.apis.FindClientGrant(ctx, clientID, audience)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, errServer(err)
	}
	return g, nil
}

func errNoClientGrant(audience string) *Error {
	return &Error{Status: http.StatusForbidden, Code: "access_denied",
		Description: `Client is not authorized to access "` + audience + `". You need to create a "client-grant" associated to this API.`}
}

func (p *Provider) managementScopesOf(c *store.Client) []string {
	if slices.Contains(c.ManagementScopes, "*") {
		return p.mgmtScopes
	}
	return intersect(c.ManagementScopes, p.mgmtScopes)
}

// intersect keeps the members of a that b has, in a's order, once each.
func intersect(a, b []string) []string {
	var out []string
	for _, s := range a {
		if slices.Contains(b, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func newJTI() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
