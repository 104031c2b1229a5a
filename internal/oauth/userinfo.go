package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/tokens"
)

// userinfo is GET (or POST) /userinfo: the user's claims per the scopes of
// the access token.
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		writeError(w, &Error{Status: http.StatusMethodNotAllowed, Code: "invalid_request",
			Description: "The userinfo endpoint accepts GET and POST only.", Header: http.Header{"Allow": {"GET, POST"}}})
		return
	}
	scheme, raw, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	// Of two Authorization headers, a proxy in front may have checked the
	// one Gatehouse would not.
	if !strings.EqualFold(scheme, "Bearer") || raw == "" || len(r.Header.Values("Authorization")) > 1 {
		p.userinfoUnauthorized(w, "")
		return
	}
	sub, scope, err := p.userinfoToken(r.Context(), strings.TrimSpace(raw))
	if err == nil && !slices.Contains(strings.Fields(scope), "openid") {
		// Auth0: /userinfo "will work only if openid was granted as a
		// scope for the Access Token" (Authentication API, Get User Info);
		// an API's JWT without openid already fails on its audience.
		err = errors.New("openid was not granted")
	}
	if err != nil {
		p.logger.InfoContext(r.Context(), "userinfo token refused", "reason", err.Error())
		p.userinfoUnauthorized(w, "invalid_token")
		return
	}
	u, err := p.users.GetUser(r.Context(), sub)
	if errors.Is(err, store.ErrNotFound) {
		p.userinfoUnauthorized(w, "invalid_token")
		return
	}
	if err != nil {
		p.logger.ErrorContext(r.Context(), "userinfo", "error", err)
		writeError(w, errServer(err))
		return
	}
	if u.Blocked {
		p.userinfoUnauthorized(w, "invalid_token")
		return
	}
	c := &idTokenClaims{Sub: u.UserID}
	if err := profileClaims(c, u, strings.Fields(scope)); err != nil {
		p.logger.ErrorContext(r.Context(), "userinfo", "error", err)
		writeError(w, errServer(err))
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(userinfoBody(c))
}

// userinfoToken accepts the two access tokens a user grant issues: the
// opaque handle (no API requested) and, as Auth0 does, an API's JWT whose
// audience includes {issuer}userinfo because openid was granted.
func (p *Provider) userinfoToken(ctx context.Context, raw string) (sub, scope string, err error) {
	if strings.Count(raw, ".") == 2 {
		c, err := p.keys.ParseJWT(ctx, raw, p.issuer, p.issuer+"userinfo", p.now(), tokens.ReplicaSkew)
		if err != nil {
			return "", "", err
		}
		return c.Subject, c.Scope, nil
	}
	h, err := p.openHandle(raw)
	if err != nil {
		return "", "", err
	}
	return h.Sub, h.Scope, nil
}

// userinfoBody drops the id_token-only claims.
func userinfoBody(c *idTokenClaims) map[string]any {
	b, _ := json.Marshal(c)
	m := map[string]any{}
	_ = json.Unmarshal(b, &m)
	for _, k := range []string{"iss", "aud", "iat", "exp"} {
		delete(m, k)
	}
	return m
}

// userinfoUnauthorized answers as Auth0 does: a plain "Unauthorized", the
// reason only in WWW-Authenticate (RFC 6750 §3), which is where SDKs read
// it. Other userinfo errors have the Authentication API's JSON body.
func (p *Provider) userinfoUnauthorized(w http.ResponseWriter, code string) {
	v := `Bearer realm="userinfo"`
	if code != "" {
		v += `, error="` + code + `"`
	}
	w.Header().Set("WWW-Authenticate", v)
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "Unauthorized", http.StatusUnauthorized)
}
