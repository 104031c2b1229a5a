package management

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"

	"github.com/gatehouse/gatehouse/internal/store"
)

func (a *API) clientGrantRoutes(route routeFunc) {
	route("POST /api/v2/client-grants", "create:client_grants", a.createClientGrant)
	route("GET /api/v2/client-grants", "read:client_grants", a.listClientGrants)
	route("GET /api/v2/client-grants/{id}", "read:client_grants", a.getClientGrant)
	route("PATCH /api/v2/client-grants/{id}", "update:client_grants", a.updateClientGrant)
	route("DELETE /api/v2/client-grants/{id}", "delete:client_grants", a.deleteClientGrant)
}

func errNoClientGrant() *Error {
	return NotFound("The client grant does not exist", "inexistent_client_grant")
}

func clientGrantJSON(g *store.ClientGrant) map[string]any {
	return map[string]any{"id": g.ID, "client_id": g.ClientID, "audience": g.Audience, "scope": nonNil(g.Scope)}
}

// maxGrantScope is Auth0's limit on one scope of a grant (schema
// CreateClientGrantRequestContent).
const maxGrantScope = 280

// grantScopes reads scope and checks each against what the API defines,
// so that a typo fails here rather than silently at the token endpoint.
func (a *API) grantScopes(r *http.Request, v any, audience string) ([]string, error) {
	scopes, err := stringArray("scope", v)
	if err != nil {
		return nil, err
	}
	for i, s := range scopes {
		if _, err := stringIn(fmt.Sprintf("scope[%d]", i), s, 1, maxGrantScope); err != nil {
			return nil, err
		}
	}
	var defined []string
	if audience == a.issuer+"api/v2/" {
		defined = Scopes
	} else {
		rs, err := a.store.GetResourceServerByIdentifier(r.Context(), audience)
		if errors.Is(err, store.ErrNotFound) {
			return nil, NotFound("No resource server found by specified identifier", "inexistent_resource_server")
		}
		if err != nil {
			return nil, internalError(err)
		}
		for _, s := range rs.Scopes {
			defined = append(defined, s.Value)
		}
	}
	for _, s := range scopes {
		if !slices.Contains(defined, s) {
			return nil, BadBody(fmt.Sprintf("Payload validation error: 'The scope %q is not defined by the resource server %s' on property scope.", s, audience))
		}
	}
	return scopes, nil
}

func (a *API) createClientGrant(w http.ResponseWriter, r *http.Request) {
	body, err := decodeObject(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	var unknown []string
	for k := range body {
		if k != "client_id" && k != "audience" && k != "scope" {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		WriteError(w, additionalProperties(unknown))
		return
	}
	g := &store.ClientGrant{ID: "cgr_" + randomAlnum(16)}
	for _, k := range []string{"client_id", "audience"} {
		if _, present := body[k]; !present {
			WriteError(w, BadBody("Payload validation error: 'Missing required property: "+k+"'."))
			return
		}
		s, err := stringIn(k, body[k], 1, math.MaxInt)
		if err != nil {
			WriteError(w, err)
			return
		}
		if k == "client_id" {
			g.ClientID = s
		} else {
			g.Audience = s
		}
	}
	if _, ok := body["scope"]; !ok {
		WriteError(w, BadBody("Payload validation error: 'Missing required property: scope'."))
		return
	}
	if g.Scope, err = a.grantScopes(r, body["scope"], g.Audience); err != nil {
		WriteError(w, err)
		return
	}
	now := a.now().UTC()
	g.CreatedAt, g.UpdatedAt = now, now
	switch err := a.store.CreateClientGrant(r.Context(), g); {
	case errors.Is(err, store.ErrConflict):
		WriteError(w, Conflict("A client grant for this client and audience already exists", "conflict"))
		return
	case errors.Is(err, store.ErrNotFound):
		WriteError(w, errNoClient())
		return
	case err != nil:
		WriteError(w, internalError(err))
		return
	}
	WriteJSON(w, http.StatusCreated, clientGrantJSON(g))
}

// listClientGrants pages by offset, or by checkpoint (from, take) as
// Auth0 also does: node-auth0 v5 and later list grants that way only.
func (a *API) listClientGrants(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.ClientGrantFilter{ClientID: q.Get("client_id"), Audience: q.Get("audience")}
	cp, checkpointed, err := parseCheckpoint(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	if checkpointed {
		list, total, err := a.store.ListClientGrants(r.Context(), f, cp.listOptions())
		if err != nil {
			WriteError(w, internalError(err))
			return
		}
		writeCheckpoint(w, cp, "client_grants", clientGrantItems(list), len(list), total)
		return
	}
	p, err := parsePagingBesideCheckpoint(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	list, total, err := a.store.ListClientGrants(r.Context(), f, p.listOptions())
	if err != nil {
		WriteError(w, internalError(err))
		return
	}
	writePage(w, p, "client_grants", clientGrantItems(list), total)
}

func clientGrantItems(list []*store.ClientGrant) []map[string]any {
	items := make([]map[string]any, len(list))
	for i, g := range list {
		items[i] = clientGrantJSON(g)
	}
	return items
}

func (a *API) getClientGrant(w http.ResponseWriter, r *http.Request) {
	g, err := a.store.GetClientGrant(r.Context(), r.PathValue("id"))
	if err != nil {
		WriteError(w, clientGrantStoreError(err))
		return
	}
	WriteJSON(w, http.StatusOK, clientGrantJSON(g))
}

func (a *API) updateClientGrant(w http.ResponseWriter, r *http.Request) {
	body, err := decodeObject(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	g, err := a.store.GetClientGrant(r.Context(), r.PathValue("id"))
	if err != nil {
		WriteError(w, clientGrantStoreError(err))
		return
	}
	// Auth0's schema (UpdateClientGrantRequestContent) has minProperties 1.
	if len(body) == 0 {
		WriteError(w, BadBody("Payload validation error: 'Too few properties defined (0), minimum 1'."))
		return
	}
	var unknown []string
	for k := range body {
		if k != "scope" {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		WriteError(w, additionalProperties(unknown))
		return
	}
	if g.Scope, err = a.grantScopes(r, body["scope"], g.Audience); err != nil {
		WriteError(w, err)
		return
	}
	if err := a.store.UpdateClientGrant(r.Context(), g); err != nil {
		WriteError(w, clientGrantStoreError(err))
		return
	}
	WriteJSON(w, http.StatusOK, clientGrantJSON(g))
}

func (a *API) deleteClientGrant(w http.ResponseWriter, r *http.Request) {
	if err := a.store.DeleteClientGrant(r.Context(), r.PathValue("id")); err != nil {
		WriteError(w, clientGrantStoreError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func clientGrantStoreError(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return errNoClientGrant()
	}
	return internalError(err)
}
