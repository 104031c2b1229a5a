package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// tokenResponse is the success body of /oauth/token.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	IDToken      string `json:"id_token,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	// Scope is given when it differs from the one asked for, even empty:
	// absent, it would say that everything asked for was granted (RFC
	// 6749 §5.1).
	Scope     *string `json:"scope,omitempty"`
	ExpiresIn int64   `json:"expires_in"`
	TokenType string  `json:"token_type"`
}

// token is POST /oauth/token. Checks run in the order docs/errors.md
// gives: the request (body, grant_type), client authentication, the
// client's grant_types, then the grant's own checks, its parameters
// first. A client that fails to authenticate learns nothing about the
// rest of its request.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	grant, resp, err := p.exchange(r.Context(), w, r)
	if p.metrics != nil {
		p.metrics.ObserveToken(grant, outcome(err), time.Since(start))
	}
	if err != nil {
		p.logTokenError(r, err)
		writeError(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	_ = json.NewEncoder(w).Encode(resp)
}

// exchange answers a token request, and names its grant for the metrics:
// a grant type Gatehouse serves, or "none" and "unsupported", so that a
// caller cannot invent label values.
func (p *Provider) exchange(ctx context.Context, w http.ResponseWriter, r *http.Request) (string, *tokenResponse, error) {
	if r.Method != http.MethodPost {
		return "none", nil, errPostOnly("token")
	}
	t, err := parseTokenRequest(w, r)
	if err != nil {
		return "none", nil, challengeBasic(r, err)
	}
	grant, err := t.require("grant_type")
	if err != nil {
		return "none", nil, err
	}
	handler, ok := p.grants[grant]
	if !ok {
		return "unsupported", nil, &Error{Status: http.StatusBadRequest, Code: "unsupported_grant_type", Description: "Grant type not supported"}
	}
	c, err := p.authenticateClient(t)
	if err != nil {
		return grant, nil, challengeBasic(r, err)
	}
	if !slices.Contains(c.GrantTypes, grant) {
		return grant, nil, errGrantNotAllowed(grant)
	}
	resp, err := handler(ctx, t, c)
	return grant, resp, err
}

// outcome is "ok" or the OAuth error code err answers with.
func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	var oe *Error
	if errors.As(err, &oe) {
		return oe.Code
	}
	return "server_error"
}

// logTokenError records a refused token request without its parameters:
// they carry secrets and passwords.
func (p *Provider) logTokenError(r *http.Request, err error) {
	var oe *Error
	if !errors.As(err, &oe) || oe.Status >= 500 {
		p.logger.ErrorContext(r.Context(), "token request failed", "error", err)
		return
	}
	p.logger.InfoContext(r.Context(), "token request refused", "error", oe.Code, "reason", fmt.Sprint(oe.Cause))
}

// tenantSettings reads the settings the token endpoint depends on.
func (p *Provider) tenantSettings(ctx context.Context) (defaultAudience, defaultDirectory string, err error) {
	s, err := p.settings.GetTenantSettings(ctx)
	if err != nil {
		return "", "", errServer(err)
	}
	var doc struct {
		DefaultAudience  string `json:"default_audience"`
		DefaultDirectory string `json:"default_directory"`
	}
	if len(s.Doc) > 0 {
		if err := json.Unmarshal(s.Doc, &doc); err != nil {
			return "", "", errServer(fmt.Errorf("tenant settings: %w", err))
		}
	}
	return doc.DefaultAudience, doc.DefaultDirectory, nil
}
