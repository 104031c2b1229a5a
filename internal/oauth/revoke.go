package oauth

import (
	"errors"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/store"
)

// revoke is POST /oauth/revoke (RFC 7009): it revokes a refresh token and
// its whole family. It answers 200 for unknown tokens too, so that it
// reveals nothing; another client's token is left alone.
func (p *Provider) revoke(w http.ResponseWriter, r *http.Request) {
	if err := p.revokeToken(w, r); err != nil {
		p.logTokenError(r, err)
		writeError(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func (p *Provider) revokeToken(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return errPostOnly("revocation")
	}
	t, err := parseTokenRequest(w, r)
	if err != nil {
		return challengeBasic(r, err)
	}
	// The client first, as at the token endpoint and in RFC 7009 §2.1:
	// a caller that cannot authenticate learns nothing of its request.
	c, err := p.authenticateClient(t)
	if err != nil {
		return challengeBasic(r, err)
	}
	raw, err := t.require("token")
	if err != nil {
		return err
	}
	rt, _, err := p.findRefreshToken(r.Context(), raw)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return errServer(err)
	}
	if rt.ClientID != c.ClientID {
		p.logger.InfoContext(r.Context(), "revocation of another client's refresh token ignored", "client_id", c.ClientID)
		return nil
	}
	switch err := p.refresh.RevokeRefreshTokenFamily(r.Context(), rt.FamilyID); {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return errServer(err)
	}
	ev := p.grantEvent(t, c, audit.SuccessRevokeRefreshToken)
	ev.UserID, ev.Audience = rt.UserID, rt.Audience
	p.recordGrant(r.Context(), ev)
	return nil
}
