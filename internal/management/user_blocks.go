package management

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/attack"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/store"
)

func (a *API) userBlockRoutes(route routeFunc) {
	route("GET /api/v2/user-blocks", "read:users", a.getUserBlocksByIdentifier)
	route("DELETE /api/v2/user-blocks", "update:users", a.deleteUserBlocksByIdentifier)
	route("GET /api/v2/user-blocks/{id}", "read:users", a.getUserBlocks)
	route("DELETE /api/v2/user-blocks/{id}", "update:users", a.deleteUserBlocks)
}

// blockedFor is Auth0's user-blocks response.
type blockedFor struct {
	BlockedFor []attack.Block `json:"blocked_for"`
}

func identifierParam(r *http.Request) (string, error) {
	id := r.URL.Query().Get("identifier")
	if id == "" {
		return "", BadQuery("Query validation error: 'Missing required property: identifier' on property identifier.")
	}
	if len(id) > 512 {
		return "", BadQuery("Query validation error: 'String is too long (max 512)' on property identifier.")
	}
	return id, nil
}

func (a *API) getUserBlocksByIdentifier(w http.ResponseWriter, r *http.Request) {
	id, err := identifierParam(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	a.writeBlocks(w, r, "", id)
}

func (a *API) deleteUserBlocksByIdentifier(w http.ResponseWriter, r *http.Request) {
	id, err := identifierParam(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	if err := a.attack.Unblock(r.Context(), "", []string{id}); err != nil {
		WriteError(w, internalError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) getUserBlocks(w http.ResponseWriter, r *http.Request) {
	conn, ids, err := a.userIdentifiers(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	a.writeBlocks(w, r, conn, ids...)
}

func (a *API) deleteUserBlocks(w http.ResponseWriter, r *http.Request) {
	conn, ids, err := a.userIdentifiers(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	if err := a.attack.Unblock(r.Context(), conn, ids); err != nil {
		WriteError(w, internalError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// writeBlocks lists the identifiers' blocks on connection, or on every
// connection when it is "".
func (a *API) writeBlocks(w http.ResponseWriter, r *http.Request, connection string, identifiers ...string) {
	respect := r.URL.Query().Get("consider_brute_force_enablement") == "true"
	out := blockedFor{BlockedFor: []attack.Block{}}
	seen := map[string]bool{}
	for _, id := range identifiers {
		n := attack.Normalize(id)
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		blocks, err := a.attack.Blocks(r.Context(), id, respect, a.connectionOptions)
		if err != nil {
			WriteError(w, internalError(err))
			return
		}
		for _, b := range blocks {
			if connection == "" || b.Connection == connection {
				out.BlockedFor = append(out.BlockedFor, b)
			}
		}
	}
	WriteJSON(w, http.StatusOK, out)
}

// loginNamesRead bounds how many of the user's successful password logins
// userIdentifiers reads the typed names of.
const loginNamesRead = 100

// userIdentifiers are the user's connection and the names the user signs
// in with there: email, username and upn, and the names typed in the
// user's last loginNamesRead successful password logins. Counters are
// keyed on the typed name, which the profile need not hold: an Entra user
// may type a UPN that differs from the email, and the profile has upn
// only with the connection's ext_upn. Names typed only in logins older
// than the log retention are not found. The same names on another
// connection belong to another user, whose blocks this user's routes
// neither list nor lift.
func (a *API) userIdentifiers(r *http.Request) (string, []string, error) {
	u, err := a.store.GetUser(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		return "", nil, errNoUser()
	}
	if err != nil {
		return "", nil, internalError(err)
	}
	ids := []string{u.Email}
	var prof struct {
		Username string `json:"username"`
		UPN      string `json:"upn"`
		Email    string `json:"email"`
	}
	if len(u.Profile) > 0 && json.Unmarshal(u.Profile, &prof) == nil {
		ids = append(ids, prof.Username, prof.UPN, prof.Email)
	}
	typed, err := a.store.LogUserNames(r.Context(), u.UserID, audit.SuccessExchangePassword, loginNamesRead)
	if err != nil {
		return "", nil, internalError(err)
	}
	return u.Connection, append(ids, typed...), nil
}

// connectionOptions finds a connection's options for its lockout policy;
// a deleted connection has the defaults.
func (a *API) connectionOptions(ctx context.Context, name string) ([]byte, error) {
	c, err := a.store.GetConnectionByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return c.Options, nil
}
