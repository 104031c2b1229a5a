package oauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"

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

// clientCredentials is grant_type=client_credentials for the Management API.
func (p *Provider) clientCredentials(ctx context.Context, t *tokenRequest, c *store.Client) (*tokenResponse, error) {
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
	if audience != p.mgmtAudience {
		return nil, &Error{Status: http.StatusForbidden, Code: "access_denied", Description: "Service not enabled within domain: " + audience}
	}
	granted := p.managementScopesOf(c)
	if len(granted) == 0 {
		return nil, &Error{Status: http.StatusForbidden, Code: "access_denied",
			Description: `Client is not authorized to access "` + audience + `". You need to create a "client-grant" associated to this API.`}
	}
	scopes := granted
	if requested := strings.Fields(t.get("scope")); len(requested) > 0 {
		scopes = nil
		for _, s := range requested {
			if slices.Contains(granted, s) && !slices.Contains(scopes, s) {
				scopes = append(scopes, s)
			}
		}
	}
	now := p.now()
	exp := now.Add(p.mgmtLifetime)
	claims := accessTokenClaims{
		Iss:   p.issuer,
		Sub:   c.ClientID + "@clients",
		Aud:   audience,
		Iat:   now.Unix(),
		Exp:   exp.Unix(),
		Jti:   newJTI(),
		Scope: strings.Join(scopes, " "),
		Gty:   "client-credentials",
		Azp:   c.ClientID,
	}
	at, err := p.keys.Sign(claims)
	if err != nil {
		return nil, errServer(err)
	}
	return &tokenResponse{
		AccessToken: at,
		Scope:       claims.Scope,
		ExpiresIn:   exp.Unix() - now.Unix(),
		TokenType:   "Bearer",
	}, nil
}

func (p *Provider) managementScopesOf(c *store.Client) []string {
	if slices.Contains(c.ManagementScopes, "*") {
		return p.mgmtScopes
	}
	var out []string
	for _, s := range c.ManagementScopes {
		if slices.Contains(p.mgmtScopes, s) {
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
