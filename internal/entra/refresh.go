package entra

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// RefreshRequest redeems a refresh token, possibly for another resource:
// Entra's refresh tokens are multi-resource, which is how a broker holding a
// token for a custom API obtains one for Microsoft Graph without asking for
// the password again.
type RefreshRequest struct {
	Endpoint     Endpoint
	ClientID     string
	ClientSecret string
	RefreshToken string
	// Resource (v1) or Scopes (v2) name the new token's audience.
	Resource string
	Scopes   []string
}

// Refresh runs the refresh_token grant. Like PasswordToken it never resends
// a POST that reached Entra. Every failure is an *Error.
func (c *Client) Refresh(ctx context.Context, req RefreshRequest) (*TokenResponse, error) {
	if err := req.Endpoint.check(); err != nil {
		return nil, err
	}
	if req.ClientID == "" || req.RefreshToken == "" {
		return nil, errors.New("entra: refresh: client id and refresh token are required")
	}
	f := url.Values{
		"grant_type":    {"refresh_token"},
		"client_id":     {req.ClientID},
		"refresh_token": {req.RefreshToken},
	}
	if req.ClientSecret != "" {
		f.Set("client_secret", req.ClientSecret)
	}
	if req.Endpoint.Version == V1 {
		if req.Resource == "" {
			return nil, errors.New("entra: refresh: the v1 endpoint needs a resource")
		}
		f.Set("resource", req.Resource)
	} else {
		f.Set("scope", strings.Join(req.Scopes, " "))
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.postOnce(ctx, req.Endpoint.tokenURL(), f.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := readBody(resp)
	if err != nil {
		return nil, unreachable(fmt.Errorf("reading token response: %w", err))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, newError(resp, raw)
	}
	return parseTokenResponse(raw, c.now())
}
