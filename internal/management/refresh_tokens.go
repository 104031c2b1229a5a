package management

import (
	"errors"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/store"
)

func (a *API) refreshTokenRoutes(route routeFunc) {
	route("GET /api/v2/users/{id}/refresh-tokens", "read:refresh_tokens", a.listUserRefreshTokens)
	route("DELETE /api/v2/users/{id}/refresh-tokens", "delete:refresh_tokens", a.deleteUserRefreshTokens)
	route("GET /api/v2/refresh-tokens/{id}", "read:refresh_tokens", a.getRefreshToken)
	route("DELETE /api/v2/refresh-tokens/{id}", "delete:refresh_tokens", a.deleteRefreshToken)
}

func errNoRefreshToken() *Error {
	return NotFound("The refresh token does not exist", "refresh_token_not_found")
}

// refreshTokenJSON is Auth0's refresh token object; the token itself is
// never shown, only its id.
func refreshTokenJSON(rt *store.RefreshToken) map[string]any {
	doc := map[string]any{
		"id":         rt.ID,
		"user_id":    rt.UserID,
		"client_id":  rt.ClientID,
		"created_at": isoTime(rt.CreatedAt),
		"rotating":   rt.Rotating,
		"device": map[string]string{
			"initial_ip": rt.InitialIP, "initial_user_agent": rt.InitialUA,
			"last_ip": rt.LastIP, "last_user_agent": rt.LastUA,
		},
		"resource_servers": []map[string]string{{"audience": rt.Audience, "scopes": rt.Scope}},
	}
	if rt.ExpiresAt != nil {
		doc["expires_at"] = isoTime(*rt.ExpiresAt)
	}
	if rt.IdleExpiresAt != nil {
		doc["idle_expires_at"] = isoTime(*rt.IdleExpiresAt)
	}
	if rt.LastExchangedAt != nil {
		doc["last_exchanged_at"] = isoTime(*rt.LastExchangedAt)
	}
	return doc
}

// listUserRefreshTokens answers {"tokens": [...], "next": ...} with
// checkpoint paging (from/take), as Auth0 does.
func (a *API) listUserRefreshTokens(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	uid := r.PathValue("id")
	if _, err := a.store.GetUser(ctx, uid); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			WriteError(w, errNoUser())
			return
		}
		WriteError(w, internalError(err))
		return
	}
	cp, ok, err := parseCheckpoint(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	if !ok {
		cp.take = defaultPerPage
	}
	list, total, err := a.store.ListRefreshTokens(ctx, store.RefreshTokenFilter{UserID: uid}, cp.listOptions())
	if err != nil {
		WriteError(w, internalError(err))
		return
	}
	out := map[string]any{"tokens": []map[string]any{}}
	items := make([]map[string]any, len(list))
	for i, rt := range list {
		items[i] = refreshTokenJSON(rt)
	}
	out["tokens"] = items
	if cp.offset+len(list) < total {
		out["next"] = cp.next(len(list))
	}
	WriteJSON(w, http.StatusOK, out)
}

func (a *API) deleteUserRefreshTokens(w http.ResponseWriter, r *http.Request) {
	// Tokens go with their user (ON DELETE CASCADE): an unknown user has
	// none, and the caller is told so rather than that they are revoked.
	if _, err := a.store.GetUser(r.Context(), r.PathValue("id")); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			WriteError(w, errNoUser())
			return
		}
		WriteError(w, internalError(err))
		return
	}
	if _, err := a.store.RevokeUserRefreshTokens(r.Context(), r.PathValue("id")); err != nil {
		WriteError(w, internalError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// getRefreshToken shows a token only when its user's list would: not
// rotated, nor expired by its absolute or idle lifetime. The store holds
// such tokens a while longer (a rotated one for reuse detection, an
// expired one until the purge), but for the API they are gone.
func (a *API) getRefreshToken(w http.ResponseWriter, r *http.Request) {
	list, _, err := a.store.ListRefreshTokens(r.Context(), store.RefreshTokenFilter{ID: r.PathValue("id")}, store.ListOptions{})
	if err != nil {
		WriteError(w, internalError(err))
		return
	}
	if len(list) == 0 {
		WriteError(w, errNoRefreshToken())
		return
	}
	WriteJSON(w, http.StatusOK, refreshTokenJSON(list[0]))
}

// deleteRefreshToken revokes the token's whole rotation family, for any
// token the store still holds, listed or not: whoever names a rotated or
// expired token wants its session gone, and the family may still have a
// live successor (docs/management-api.md).
func (a *API) deleteRefreshToken(w http.ResponseWriter, r *http.Request) {
	rt, err := a.store.GetRefreshToken(r.Context(), r.PathValue("id"))
	if err == nil {
		err = a.store.RevokeRefreshTokenFamily(r.Context(), rt.FamilyID)
	}
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			WriteError(w, errNoRefreshToken())
			return
		}
		WriteError(w, internalError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
