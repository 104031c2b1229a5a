package management

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/store"
)

func (a *API) resourceServerRoutes(route routeFunc) {
	route("POST /api/v2/resource-servers", "create:resource_servers", a.createResourceServer)
	route("GET /api/v2/resource-servers", "read:resource_servers", a.listResourceServers)
	route("GET /api/v2/resource-servers/{id}", "read:resource_servers", a.getResourceServer)
	route("PATCH /api/v2/resource-servers/{id}", "update:resource_servers", a.updateResourceServer)
	route("DELETE /api/v2/resource-servers/{id}", "delete:resource_servers", a.deleteResourceServer)
}

func errNoResourceServer() *Error {
	return NotFound("The resource server does not exist", "inexistent_resource_server")
}

// maxAPITokenLifetime is Auth0's bound on token_lifetime (30 days).
const maxAPITokenLifetime = 2592000

func resourceServerJSON(rs *store.ResourceServer) map[string]any {
	scopes := rs.Scopes
	if scopes == nil {
		scopes = []store.ResourceServerScope{}
	}
	return map[string]any{
		"id":                   rs.ID,
		"name":                 rs.Name,
		"identifier":           rs.Identifier,
		"is_system":            false,
		"scopes":               scopes,
		"signing_alg":          rs.SigningAlg,
		"allow_offline_access": rs.AllowOfflineAccess,
		"skip_consent_for_verifiable_first_party_clients": rs.SkipConsentForVerifiableFirstPartyClients,
		"token_lifetime":         rs.TokenLifetime,
		"token_lifetime_for_web": rs.TokenLifetimeForWeb,
	}
}

// applyResourceServer sets the fields of body on rs; identifier only when
// creating.
func applyResourceServer(rs *store.ResourceServer, body map[string]any, creating bool) error {
	var unknown []string
	for k, v := range body {
		var err error
		switch k {
		case "identifier":
			if !creating {
				unknown = append(unknown, k)
				continue
			}
			s, ok := v.(string)
			if !ok || s == "" || len(s) > 600 {
				return propertyOrLength(k, v, ok)
			}
			rs.Identifier = s
		case "name":
			s, ok := v.(string)
			if !ok || s == "" || len(s) > 200 || strings.ContainsAny(s, "<>") {
				return propertyOrLength(k, v, ok)
			}
			rs.Name = s
		case "signing_alg":
			s, ok := v.(string)
			if !ok {
				return propertyError(k, "string", v)
			}
			if s != "RS256" {
				return BadBody(fmt.Sprintf("Payload validation error: 'Gatehouse signs with RS256 only, got %q' on property signing_alg.", s))
			}
			rs.SigningAlg = s
		case "token_lifetime", "token_lifetime_for_web":
			n, ok := v.(json.Number)
			i, err := n.Int64()
			if !ok || err != nil {
				return propertyError(k, "integer", v)
			}
			if i < 0 || i > maxAPITokenLifetime {
				return BadBody(fmt.Sprintf("Payload validation error: 'Value %d is out of range [0, %d]' on property %s.", i, maxAPITokenLifetime, k))
			}
			if k == "token_lifetime" {
				rs.TokenLifetime = int(i)
			} else {
				rs.TokenLifetimeForWeb = int(i)
			}
		case "allow_offline_access", "skip_consent_for_verifiable_first_party_clients":
			b, ok := v.(bool)
			if !ok {
				return propertyError(k, "boolean", v)
			}
			if k == "allow_offline_access" {
				rs.AllowOfflineAccess = b
			} else {
				rs.SkipConsentForVerifiableFirstPartyClients = b
			}
		case "scopes":
			rs.Scopes, err = parseScopes(v)
		default:
			unknown = append(unknown, k)
		}
		if err != nil {
			return err
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return additionalProperties(unknown)
	}
	return nil
}

func propertyOrLength(prop string, v any, isString bool) *Error {
	if !isString {
		return propertyError(prop, "string", v)
	}
	return BadBody(fmt.Sprintf("Payload validation error: 'Invalid value' on property %s.", prop))
}

func parseScopes(v any) ([]store.ResourceServerScope, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, propertyError("scopes", "array", v)
	}
	out := []store.ResourceServerScope{}
	for i, item := range arr {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, propertyError(fmt.Sprintf("scopes[%d]", i), "object", item)
		}
		value, ok := m["value"].(string)
		if !ok || value == "" || strings.ContainsAny(value, " \t\n") {
			return nil, BadBody(fmt.Sprintf("Payload validation error: 'Missing or invalid required property: value' on property scopes[%d].", i))
		}
		desc, ok := m["description"].(string)
		if _, given := m["description"]; given && !ok {
			return nil, propertyError(fmt.Sprintf("scopes[%d].description", i), "string", m["description"])
		}
		if slices.ContainsFunc(out, func(s store.ResourceServerScope) bool { return s.Value == value }) {
			return nil, BadBody(fmt.Sprintf("Payload validation error: 'Duplicate scope value %q' on property scopes.", value))
		}
		out = append(out, store.ResourceServerScope{Value: value, Description: desc})
	}
	return out, nil
}

func (a *API) createResourceServer(w http.ResponseWriter, r *http.Request) {
	body, err := decodeObject(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	if _, ok := body["identifier"]; !ok {
		WriteError(w, BadBody("Payload validation error: 'Missing required property: identifier'."))
		return
	}
	now := a.now().UTC()
	rs := &store.ResourceServer{ID: randomHexID(12), SigningAlg: "RS256", TokenLifetime: 86400, TokenLifetimeForWeb: 7200, CreatedAt: now, UpdatedAt: now}
	if err := applyResourceServer(rs, body, true); err != nil {
		WriteError(w, err)
		return
	}
	if rs.Name == "" {
		rs.Name = rs.Identifier
	}
	errExists := Conflict("A resource server with the same identifier already exists", "conflict")
	if rs.Identifier == a.issuer+"api/v2/" {
		WriteError(w, errExists)
		return
	}
	if err := a.store.CreateResourceServer(r.Context(), rs); err != nil {
		if errors.Is(err, store.ErrConflict) {
			WriteError(w, errExists)
			return
		}
		WriteError(w, internalError(err))
		return
	}
	WriteJSON(w, http.StatusCreated, resourceServerJSON(rs))
}

func (a *API) listResourceServers(w http.ResponseWriter, r *http.Request) {
	p, err := parsePaging(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	list, total, err := a.store.ListResourceServers(r.Context(), p.listOptions())
	if err != nil {
		WriteError(w, internalError(err))
		return
	}
	items := make([]map[string]any, len(list))
	for i, rs := range list {
		items[i] = filterFields(resourceServerJSON(rs), r)
	}
	writePage(w, p, "resource_servers", items, total)
}

// findResourceServer accepts the id or, as Auth0 does, the identifier.
func (a *API) findResourceServer(r *http.Request) (*store.ResourceServer, error) {
	id := r.PathValue("id")
	rs, err := a.store.GetResourceServer(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		rs, err = a.store.GetResourceServerByIdentifier(r.Context(), id)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoResourceServer()
	}
	if err != nil {
		return nil, internalError(err)
	}
	return rs, nil
}

func (a *API) getResourceServer(w http.ResponseWriter, r *http.Request) {
	rs, err := a.findResourceServer(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, filterFields(resourceServerJSON(rs), r))
}

func (a *API) updateResourceServer(w http.ResponseWriter, r *http.Request) {
	body, err := decodeObject(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	rs, err := a.findResourceServer(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	if err := applyResourceServer(rs, body, false); err != nil {
		WriteError(w, err)
		return
	}
	if err := a.store.UpdateResourceServer(r.Context(), rs); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			WriteError(w, errNoResourceServer())
			return
		}
		WriteError(w, internalError(err))
		return
	}
	WriteJSON(w, http.StatusOK, resourceServerJSON(rs))
}

func (a *API) deleteResourceServer(w http.ResponseWriter, r *http.Request) {
	rs, err := a.findResourceServer(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	// The store deletes the API's client grants with it.
	if err := a.store.DeleteResourceServer(r.Context(), rs.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		WriteError(w, internalError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// randomHexID is an id like Auth0's resource server ids: n random bytes
// in hex.
func randomHexID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
