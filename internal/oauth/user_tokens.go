package oauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// idTokenClaims are the claims of a Gatehouse id_token. Profile and email
// claims appear only when their scope was granted.
type idTokenClaims struct {
	Iss           string `json:"iss"`
	Sub           string `json:"sub"`
	Aud           string `json:"aud"`
	Iat           int64  `json:"iat"`
	Exp           int64  `json:"exp"`
	Name          string `json:"name,omitempty"`
	Nickname      string `json:"nickname,omitempty"`
	GivenName     string `json:"given_name,omitempty"`
	FamilyName    string `json:"family_name,omitempty"`
	Picture       string `json:"picture,omitempty"`
	UpdatedAt     string `json:"updated_at,omitempty"`
	Email         string `json:"email,omitempty"`
	EmailVerified *bool  `json:"email_verified,omitempty"`
}

// handle is the content of an opaque access token: sealed, so the client
// can neither read nor forge it, and good only at /userinfo, which opens it
// without a database lookup or an RSA operation.
type handle struct {
	Sub   string `json:"s"`
	Azp   string `json:"c"`
	Scope string `json:"sc"`
	Exp   int64  `json:"e"`
}

// handleAAD binds sealed handles to their use.
var handleAAD = []byte("gatehouse:userinfo_access_token")

const handlePrefix = "gh1."

// grantedScopes are the OIDC scopes a user grant issues. As in Auth0,
// "openid" alone grants every standard scope; userScopes adds the rest.
func grantedScopes(requested string) []string {
	req := strings.Fields(requested)
	if len(req) == 1 && req[0] == "openid" {
		return []string{"openid", "profile", "email"}
	}
	var out []string
	for _, s := range []string{"openid", "profile", "email"} {
		if slices.Contains(req, s) {
			out = append(out, s)
		}
	}
	return out
}

// profileClaims fills the scope-dependent claims shared by the id_token
// and /userinfo.
func profileClaims(c *idTokenClaims, u *store.User, scopes []string) error {
	var p struct {
		Name          string `json:"name"`
		Nickname      string `json:"nickname"`
		GivenName     string `json:"given_name"`
		FamilyName    string `json:"family_name"`
		Picture       string `json:"picture"`
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
	}
	for _, part := range []json.RawMessage{u.Profile, u.RootAttributes} {
		if len(part) > 0 {
			if err := json.Unmarshal(part, &p); err != nil {
				return fmt.Errorf("user profile: %w", err)
			}
		}
	}
	if slices.Contains(scopes, "profile") {
		c.Name, c.Nickname, c.GivenName, c.FamilyName, c.Picture = p.Name, p.Nickname, p.GivenName, p.FamilyName, p.Picture
		c.UpdatedAt = u.UpdatedAt.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	if slices.Contains(scopes, "email") {
		c.Email = p.Email
		c.EmailVerified = &p.EmailVerified
	}
	return nil
}

// issueUserTokens issues the tokens of a user grant: the access token (a
// JWT for an API, else the sealed /userinfo handle), the id_token when
// openid was granted, and for a login with offline_access a new refresh
// token family.
func (p *Provider) issueUserTokens(ctx context.Context, g userGrant) (*tokenResponse, error) {
	c, u, scopes := g.client, g.user, g.scopes
	now := p.now()
	resp := &tokenResponse{TokenType: "Bearer"}
	if g.api != nil {
		at, lifetime, err := p.signAPIAccessToken(g, now)
		if err != nil {
			return nil, errServer(err)
		}
		resp.AccessToken, resp.ExpiresIn = at, int64(lifetime/time.Second)
	} else {
		atExp := now.Add(accessTokenLifetime)
		h, err := json.Marshal(handle{Sub: u.UserID, Azp: c.ClientID, Scope: strings.Join(scopes, " "), Exp: atExp.Unix()})
		if err != nil {
			return nil, errServer(err)
		}
		sealed, err := p.sealer.Seal(h, handleAAD)
		if err != nil {
			return nil, errServer(fmt.Errorf("seal access token: %w", err))
		}
		resp.AccessToken = handlePrefix + base64.RawURLEncoding.EncodeToString(sealed)
		resp.ExpiresIn = int64(accessTokenLifetime / time.Second)
	}
	if granted := strings.Join(scopes, " "); granted != strings.Join(strings.Fields(g.requested), " ") {
		resp.Scope = &granted
	}
	if slices.Contains(scopes, "openid") {
		claims := &idTokenClaims{
			Iss: p.issuer,
			Sub: u.UserID,
			Aud: c.ClientID,
			Iat: now.Unix(),
			Exp: now.Add(idTokenLifetime(c)).Unix(),
		}
		if err := profileClaims(claims, u, scopes); err != nil {
			return nil, errServer(err)
		}
		var err error
		if resp.IDToken, err = p.keys.Sign(claims); err != nil {
			return nil, errServer(err)
		}
	}
	if !g.fromRefresh && slices.Contains(scopes, "offline_access") {
		var err error
		if resp.RefreshToken, err = p.issueRefreshToken(ctx, g, now); err != nil {
			return nil, errServer(err)
		}
	}
	return resp, nil
}

// idTokenLifetime is the client's jwt_configuration.lifetime_in_seconds.
func idTokenLifetime(c *store.Client) time.Duration {
	var jc struct {
		Lifetime int64 `json:"lifetime_in_seconds"`
	}
	if len(c.JWTConfiguration) > 0 && json.Unmarshal(c.JWTConfiguration, &jc) == nil && jc.Lifetime > 0 {
		return boundedLifetime(jc.Lifetime)
	}
	return defaultIDTokenLifetime
}

// openHandle returns the content of a valid, unexpired opaque access token.
func (p *Provider) openHandle(token string) (*handle, error) {
	rest, ok := strings.CutPrefix(token, handlePrefix)
	if !ok {
		return nil, fmt.Errorf("not a Gatehouse access token")
	}
	sealed, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("malformed access token")
	}
	b, err := p.sealer.Open(sealed, handleAAD)
	if err != nil {
		return nil, fmt.Errorf("access token does not open")
	}
	var h handle
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("malformed access token content")
	}
	if p.now().Unix() >= h.Exp {
		return nil, fmt.Errorf("access token expired")
	}
	return &h, nil
}
