package oauth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/store"
)

// errBadRefreshToken is Auth0's one answer for every refresh token that
// cannot be used: unknown, forged, expired, revoked, reused or another
// client's.
func errBadRefreshToken(cause error) *Error {
	return &Error{Status: http.StatusForbidden, Code: "invalid_grant", Description: "Unknown or invalid refresh token.", Cause: cause}
}

// refreshGrant is grant_type=refresh_token, with its sertft, fertft or
// (reuse) ferrt event in the tenant log.
func (p *Provider) refreshGrant(ctx context.Context, t *tokenRequest, c *store.Client) (*tokenResponse, error) {
	ev := p.grantEvent(t, c, audit.SuccessExchangeRefreshToken)
	resp, err := p.useRefreshToken(ctx, t, c, ev)
	if err != nil {
		typ := audit.FailedExchangeRefreshToken
		if errors.Is(err, store.ErrRefreshTokenReused) {
			typ = audit.FailedExchangeRotatingRefreshToken
		}
		p.recordRefusedGrant(ctx, ev, typ, err)
	}
	return resp, err
}

// useRefreshToken exchanges a refresh token. The user's claims come from
// the stored user, so a blocked or deleted user cannot refresh, nor one
// whose connection or API no longer allows it (stillGranted); the access
// token's scope may be narrowed with scope. The success event is
// stored with the exchange itself.
func (p *Provider) useRefreshToken(ctx context.Context, t *tokenRequest, c *store.Client, ev *audit.Event) (*tokenResponse, error) {
	raw, err := t.require("refresh_token")
	if err != nil {
		return nil, err
	}
	// A deleted user's tokens are deleted with it.
	rt, u, err := p.findRefreshToken(ctx, raw)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errBadRefreshToken(errors.New("unknown refresh token"))
	}
	if err != nil {
		return nil, errServer(err)
	}
	ev.UserID, ev.Audience = rt.UserID, rt.Audience
	if rt.ClientID != c.ClientID {
		return nil, errBadRefreshToken(errors.New("refresh token of another client"))
	}
	now := p.now()
	// A rotated token's own idle expiry does not matter: presented again
	// while its family lives, it is reuse, which the store detects and
	// answers by revoking the family. (Tokens rotated before the store
	// cleared it on rotation still carry one.)
	if (rt.ExpiresAt != nil && !now.Before(*rt.ExpiresAt)) || (rt.RotatedAt == nil && rt.IdleExpiresAt != nil && !now.Before(*rt.IdleExpiresAt)) {
		return nil, errBadRefreshToken(errors.New("refresh token expired"))
	}
	pol := refreshPolicyOf(c)
	scopes := strings.Fields(rt.Scope)
	if req := strings.Fields(t.get("scope")); len(req) > 0 {
		for _, s := range req {
			if !slices.Contains(scopes, s) {
				return nil, p.refuseRefresh(ctx, rt, now, pol, &Error{Status: http.StatusForbidden, Code: "invalid_scope",
					Description: "The requested scope exceeds the scope granted by the resource owner."})
			}
		}
		scopes = req
	}
	ev.Scope = strings.Join(scopes, " ")
	if u.Blocked {
		return nil, p.refuseRefresh(ctx, rt, now, pol, &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Description: "user is blocked"})
	}
	var api *store.ResourceServer
	if rt.Audience != "" {
		if api, err = p.lookupAPI(ctx, rt.Audience); err != nil {
			// A deleted API leaves the token good for nothing (a rotated
			// one presented is still reuse); a failure to read it is
			// ours, and invalid_grant would have the app drop a good token
			// and sign its user out.
			if oe := (*Error)(nil); errors.As(err, &oe) && oe.Status >= http.StatusInternalServerError {
				return nil, err
			}
			return nil, p.refuseRefresh(ctx, rt, now, pol, errBadRefreshToken(err))
		}
		// A token older than the API of its identifier was issued for one
		// deleted since: deleting an API refuses its tokens without
		// deleting them, and an API made again under the identifier,
		// perhaps with other scopes, must not take them on. The two times
		// come from the clocks of the replicas that wrote them, as for a
		// connection made again (stillGranted).
		if rt.CreatedAt.Before(api.CreatedAt) {
			return nil, p.refuseRefresh(ctx, rt, now, pol, errBadRefreshToken(fmt.Errorf("API %q made again after the token was issued", api.Identifier)))
		}
	}
	// Tokens stored before their connection was recorded have the user's.
	conn := cmp.Or(rt.Connection, u.Connection)
	switch refusal, err := p.stillGranted(ctx, rt, conn, c, api); {
	case err != nil:
		return nil, err
	case refusal != nil:
		return nil, p.refuseRefresh(ctx, rt, now, pol, refusal)
	}
	scopes = stillDefined(scopes, api)
	ev.Scope = strings.Join(scopes, " ")
	g := userGrant{client: c, user: u, requested: t.get("scope"), scopes: scopes, api: api, gty: grantRefreshToken,
		ip: p.clientIP(t, c), ua: userAgent(t.r), fromRefresh: true}

	ex := store.RefreshExchange{ID: rt.ID, Now: now, Leeway: pol.leeway, IP: g.ip, UA: g.ua}
	var next string
	if rt.Rotating || pol.rotating {
		// A successor keeps the token's scope, audience, connection,
		// tenant generation and first IP and user agent; only its idle
		// expiry starts again.
		var row *store.RefreshToken
		next, row = newRefreshToken(userGrant{client: c, user: u, scopes: strings.Fields(rt.Scope), api: api, ip: g.ip, ua: g.ua,
			tenantGeneration: rt.TenantGeneration}, now, pol)
		row.Audience, row.InitialIP, row.InitialUA, row.Connection = rt.Audience, rt.InitialIP, rt.InitialUA, conn
		ex.Next = row
	}
	switch {
	case rt.Rotating != pol.rotating:
		// Rotation was turned on or off since the token was issued: as at
		// Auth0, it is exchanged for a token of the client's type now,
		// which starts a family of its own, and every token of its old
		// type for this client, API and user goes. Its lifetimes are the
		// client's, but never past the old token's absolute expiry.
		ex.Next.FamilyID, ex.Replace = ex.Next.ID, true
		if rt.ExpiresAt != nil && (ex.Next.ExpiresAt == nil || rt.ExpiresAt.Before(*ex.Next.ExpiresAt)) {
			ex.Next.ExpiresAt = rt.ExpiresAt
		}
	case rt.Rotating:
		// The family keeps its absolute expiry.
		ex.Next.FamilyID, ex.Next.ExpiresAt = rt.FamilyID, rt.ExpiresAt
	default:
		ex.IdleExpiresAt = after(now, pol.idle)
	}
	if p.audit != nil {
		if ex.Log, err = p.audit.LogEvent(ev); err != nil {
			return nil, errServer(err)
		}
	}
	// The tokens are made before the exchange: once the old token is
	// rotated, only a lost connection can keep the new one from its app,
	// never a failure of ours (with leeway 0 the app's retry would be reuse
	// and end the family).
	resp, err := p.issueUserTokens(ctx, g)
	if err != nil {
		return nil, err
	}
	switch err := p.refresh.ExchangeRefreshToken(ctx, ex); {
	case errors.Is(err, store.ErrRefreshTokenReused):
		p.logger.WarnContext(ctx, "refresh token reuse detected: revoked its family", "client_id", c.ClientID, "user_id", u.UserID, "family", rt.FamilyID)
		return nil, errBadRefreshToken(err)
	case errors.Is(err, store.ErrNotFound):
		return nil, errBadRefreshToken(err)
	case err != nil:
		return nil, errServer(err)
	}
	resp.RefreshToken = next
	return resp, nil
}

// stillGranted checks, at each exchange, what a login would check today
// and an administrator may have changed since the token was issued: the
// connection the token was issued through (by name, as users name theirs)
// exists, admits the Entra tenants it admitted at the login and is enabled
// for the client, and the token's API still allows offline access.
// refusal says what no longer holds; err is a failure to read it, ours,
// so not invalid_grant. The tokens are left alone: undoing a change of
// enablement or offline access makes them work again, so a mistaken
// toggle does not sign every user out for good. The lookups are served from the
// store's cache (package cache), so the check adds no database statement
// to a refresh while the cache holds the connection and the API.
// Auth0 documents no answer for these cases; the descriptions are
// Gatehouse's (docs/errors.md).
func (p *Provider) stillGranted(ctx context.Context, rt *store.RefreshToken, connection string, c *store.Client, api *store.ResourceServer) (refusal *Error, err error) {
	refused := func(desc string, cause error) *Error {
		return &Error{Status: http.StatusForbidden, Code: "invalid_grant", Description: desc, Cause: cause}
	}
	conn, err := p.connections.GetConnectionByName(ctx, connection)
	if errors.Is(err, store.ErrNotFound) {
		return refused("The connection no longer exists.", fmt.Errorf("connection %q deleted", connection)), nil
	}
	if err != nil {
		return nil, errServer(err)
	}
	// A token older than the connection of its name was issued through
	// one deleted since: a login in flight while it was deleted, or one
	// through another replica's cached copy, stores its token after the
	// deletion took the connection's tokens away, and a connection made
	// again under the name, perhaps for another Entra tenant, must not
	// take it on. A token that did not record its connection (before
	// migration 8) is checked against its user's, which may well be
	// newer than it. The two times come from the clocks of the replicas
	// that wrote them (docs/security.md).
	if rt.Connection != "" && rt.CreatedAt.Before(conn.CreatedAt) {
		return refused("The connection no longer exists.", fmt.Errorf("connection %q made again after the token was issued", connection)), nil
	}
	// The connection admits fewer Entra users than when the token's login
	// read it (another tenant, an allowed tenant removed: see
	// connection.TenantNarrower), and a refresh does not ask Entra whether
	// the user is still one of them. The token keeps the generation its
	// login read rather than the time it was stored, so a login in flight
	// across the change, or served from another replica's cached copy,
	// is refused too. Undoing the change does not bring the tokens back:
	// the generation only grows. A token stored before generations were
	// recorded has 0 and is refused once its user's connection narrowed.
	// A token of a later generation than the connection as read is not
	// refused: another replica issued it after the change, and this
	// replica's cached copy predates it (its notification not yet
	// arrived); refusing it would sign its user out for good.
	if rt.TenantGeneration < conn.TenantGeneration {
		return refused("The connection's Entra tenants changed since the token was issued.",
			fmt.Errorf("connection %q admits other Entra tenants than at the login (tenant generation %d, token's %d)", conn.Name, conn.TenantGeneration, rt.TenantGeneration)), nil
	}
	// The connection as read holds its enabled clients. Asking for this
	// client's enablement apart, as a login does, costs a statement
	// whenever the cache holds the connection but not that answer: after
	// other clients' requests, or once it expired before the connection.
	if !slices.Contains(conn.EnabledClients, c.ClientID) {
		return refused("The connection is not enabled for this client.", fmt.Errorf("connection %q not enabled for the client", conn.Name)), nil
	}
	if api != nil && !api.AllowOfflineAccess {
		return refused("The API no longer allows offline access.", fmt.Errorf("API %q does not allow offline access", api.Identifier)), nil
	}
	return nil, nil
}

// stillDefined keeps of a refresh token's scopes those a login for its API
// would grant today: a scope taken out of the API is no longer issued,
// though the token keeps it, so that it is granted again once put back.
func stillDefined(scopes []string, api *store.ResourceServer) []string {
	if api == nil {
		return scopes
	}
	return slices.DeleteFunc(slices.Clone(scopes), func(s string) bool {
		return !slices.Contains([]string{"openid", "profile", "email", "offline_access"}, s) &&
			!slices.ContainsFunc(api.Scopes, func(d store.ResourceServerScope) bool { return d.Value == s })
	})
}

// refuseRefresh answers a refresh refused before the exchange with oe,
// unless the token was rotated, without a leeway or longer than the leeway
// ago: that is reuse whatever else is wrong with the request, and reuse
// ends the family, as the exchange would have. Without a leeway no clock
// is compared, as in the store: another replica's clock may run ahead.
// Within the leeway only the family's latest rotated token may be
// exchanged again, which the store alone knows.
func (p *Provider) refuseRefresh(ctx context.Context, rt *store.RefreshToken, now time.Time, pol refreshPolicy, oe *Error) error {
	if rt.RotatedAt == nil {
		return oe
	}
	if pol.leeway > 0 && now.Sub(*rt.RotatedAt) <= pol.leeway {
		switch reused, err := p.refresh.RefreshTokenReused(ctx, rt.ID, now, pol.leeway); {
		case errors.Is(err, store.ErrNotFound):
			return errBadRefreshToken(err)
		case err != nil:
			return errServer(err)
		case !reused:
			return oe
		}
	}
	if err := p.refresh.RevokeRefreshTokenFamily(ctx, rt.FamilyID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return errServer(err)
	}
	p.logger.WarnContext(ctx, "refresh token reuse detected: revoked its family", "client_id", rt.ClientID, "user_id", rt.UserID, "family", rt.FamilyID)
	return errBadRefreshToken(store.ErrRefreshTokenReused)
}
