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
	"unicode"
	"unicode/utf8"

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
		"enforce_policies":       false,
		"token_dialect":          defaultTokenDialect,
	}
}

// defaultTokenDialect is Auth0's default access token profile, the only
// one Gatehouse issues. Its other dialects (ResourceServerTokenDialectSchemaEnum
// in Auth0's Management API schema) add RBAC permissions or follow RFC 9068.
const defaultTokenDialect = "access_token"

var tokenDialects = []string{"access_token", "access_token_authz", "rfc9068_profile", "rfc9068_profile_authz"}

// Auth0's limits on an API (schema CreateResourceServerRequestContent):
// lengths in characters, as JSON Schema counts them.
const (
	maxAPIIdentifier       = 600
	maxAPIName             = 200
	maxAPIScopeValue       = 280
	maxAPIScopeDescription = 500
)

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
			rs.Identifier, err = stringIn(k, v, 1, maxAPIIdentifier)
		case "name":
			rs.Name, err = stringIn(k, v, 0, maxAPIName)
			if err == nil && (rs.Name == "" || strings.ContainsAny(rs.Name, "<>")) {
				err = BadBody("Payload validation error: 'String does not match pattern ^[^<>]+$' on property name.")
			}
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
			if i < 0 {
				return BadBody(fmt.Sprintf("Payload validation error: 'Value %d is less than minimum 0' on property %s.", i, k))
			}
			if i > maxAPITokenLifetime {
				return BadBody(fmt.Sprintf("Payload validation error: 'Value %d is greater than maximum %d' on property %s.", i, maxAPITokenLifetime, k))
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
		case "enforce_policies":
			// Auth0's deploy tools and Terraform send both properties on
			// every write; their defaults are what Gatehouse does, and
			// anything else is refused rather than silently not done.
			b, ok := v.(bool)
			if !ok {
				return propertyError(k, "boolean", v)
			}
			if b {
				return BadBody("Payload validation error: 'Gatehouse has no role-based access control: enforce_policies must be false' on property enforce_policies.")
			}
		case "token_dialect":
			d, ok := v.(string)
			if !ok {
				return propertyError(k, "string", v)
			}
			if !slices.Contains(tokenDialects, d) {
				return enumError(k, d, tokenDialects)
			}
			if d != defaultTokenDialect {
				return BadBody(fmt.Sprintf("Payload validation error: 'Gatehouse issues the %s dialect only, got %q' on property token_dialect.", defaultTokenDialect, d))
			}
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
	return checkWebLifetime(rs, body, creating)
}

// defaultTokenLifetimeForWeb is Auth0's default token_lifetime_for_web.
const defaultTokenLifetimeForWeb = 7200

// checkWebLifetime applies Auth0's rule that token_lifetime_for_web
// "Cannot be greater than the token_lifetime value" (description of the
// property in Auth0's own Terraform provider, auth0/terraform-provider-auth0,
// resource auth0_resource_server). Auth0 publishes no error text for it;
// the wording is Gatehouse's. A new API that does not name
// token_lifetime_for_web gets the default lowered to its token_lifetime,
// rather than a 400 about a property the request did not send. A write
// that names neither lifetime is not checked, so an API stored before the
// rule can still be renamed.
func checkWebLifetime(rs *store.ResourceServer, body map[string]any, creating bool) error {
	_, web := body["token_lifetime_for_web"]
	_, life := body["token_lifetime"]
	if creating && !web {
		rs.TokenLifetimeForWeb = min(defaultTokenLifetimeForWeb, rs.TokenLifetime)
	}
	if !web && !life || rs.TokenLifetimeForWeb <= rs.TokenLifetime {
		return nil
	}
	msg := fmt.Sprintf("token_lifetime_for_web (%d) cannot be greater than token_lifetime (%d)", rs.TokenLifetimeForWeb, rs.TokenLifetime)
	prop := "token_lifetime_for_web"
	if !web {
		msg += "; send a lower token_lifetime_for_web with it"
		prop = "token_lifetime"
	}
	return BadBody(fmt.Sprintf("Payload validation error: '%s' on property %s.", msg, prop))
}

// stringIn reads the string property prop of minLen to maxLen characters,
// with Auth0's (JSON Schema's) wording for each failure.
func stringIn(prop string, v any, minLen, maxLen int) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", propertyError(prop, "string", v)
	}
	n := utf8.RuneCountInString(s)
	if n < minLen {
		return "", BadBody(fmt.Sprintf("Payload validation error: 'String is too short (%d chars), minimum %d' on property %s.", n, minLen, prop))
	}
	if n > maxLen {
		return "", BadBody(fmt.Sprintf("Payload validation error: 'String is too long (%d chars), maximum %d' on property %s.", n, maxLen, prop))
	}
	return s, nil
}

// parseScopes reads an API's scopes: objects of value and description
// only, as at Auth0 (schema ResourceServerScope).
func parseScopes(v any) ([]store.ResourceServerScope, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, propertyError("scopes", "array", v)
	}
	out := []store.ResourceServerScope{}
	for i, item := range arr {
		at := fmt.Sprintf("scopes[%d]", i)
		m, ok := item.(map[string]any)
		if !ok {
			return nil, propertyError(at, "object", item)
		}
		var unknown []string
		for k := range m {
			if k != "value" && k != "description" {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			slices.Sort(unknown)
			return nil, additionalPropertiesOn(at, unknown)
		}
		if _, given := m["value"]; !given {
			return nil, BadBody("Payload validation error: 'Missing required property: value' on property " + at + ".")
		}
		value, err := stringIn(at+".value", m["value"], 1, maxAPIScopeValue)
		if err != nil {
			return nil, err
		}
		// The token endpoint splits a requested scope on any white space
		// (strings.Fields): a value holding some could never be asked
		// for, and would read as several scopes in a token's scope claim.
		if strings.IndexFunc(value, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			return nil, BadBody("Payload validation error: 'Scope values cannot contain white space or control characters' on property " + at + ".value.")
		}
		var desc string
		if d, given := m["description"]; given {
			if desc, err = stringIn(at+".description", d, 0, maxAPIScopeDescription); err != nil {
				return nil, err
			}
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
	rs := &store.ResourceServer{ID: randomHexID(12), SigningAlg: "RS256", TokenLifetime: 86400, TokenLifetimeForWeb: defaultTokenLifetimeForWeb, CreatedAt: now, UpdatedAt: now}
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
	var (
		list  []*store.ResourceServer
		total int
	)
	if ids, ok := r.URL.Query()["identifiers"]; ok {
		list, total, err = a.resourceServersByIdentifier(r, ids, p)
	} else {
		list, total, err = a.store.ListResourceServers(r.Context(), p.listOptions())
		if err != nil {
			err = internalError(err)
		}
	}
	if err != nil {
		WriteError(w, err)
		return
	}
	items := make([]map[string]any, len(list))
	for i, rs := range list {
		items[i] = filterFields(resourceServerJSON(rs), r)
	}
	writePage(w, p, "resource_servers", items, total)
}

// maxIdentifiersFilter is Auth0's limit on the identifiers filter of
// GET /api/v2/resource-servers.
const maxIdentifiersFilter = 10

// resourceServersByIdentifier is the page p of the APIs that ids name
// (Auth0's identifiers filter, repeated in the query string), in creation
// order (APIs created in the same millisecond in the order ids names
// them), and their number; identifiers that name no API are left out.
func (a *API) resourceServersByIdentifier(r *http.Request, ids []string, p paging) ([]*store.ResourceServer, int, error) {
	if len(ids) > maxIdentifiersFilter {
		return nil, 0, BadQuery(fmt.Sprintf("Query validation error: 'Array is too long (%d), maximum %d' on property identifiers.", len(ids), maxIdentifiersFilter))
	}
	var found []*store.ResourceServer
	for i, id := range ids {
		if id == "" {
			return nil, 0, BadQuery(fmt.Sprintf("Query validation error: 'String is too short (0 chars), minimum 1' on property identifiers[%d].", i))
		}
		if slices.Contains(ids[:i], id) {
			continue
		}
		rs, err := a.store.GetResourceServerByIdentifier(r.Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, 0, internalError(err)
		}
		found = append(found, rs)
	}
	slices.SortStableFunc(found, func(x, y *store.ResourceServer) int { return x.CreatedAt.Compare(y.CreatedAt) })
	start := min(p.page*p.perPage, len(found))
	return found[start:min(start+p.perPage, len(found))], len(found), nil
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
	var rs *store.ResourceServer
	err = retryConflicts(func() (err error) {
		if rs, err = a.findResourceServer(r); err != nil {
			return err
		}
		if err := applyResourceServer(rs, body, false); err != nil {
			return err
		}
		return a.store.UpdateResourceServer(r.Context(), rs)
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		WriteError(w, errNoResourceServer())
	case errors.Is(err, store.ErrConflict):
		WriteError(w, errBusy("resource server", err))
	case err != nil:
		WriteError(w, err)
	default:
		WriteJSON(w, http.StatusOK, resourceServerJSON(rs))
	}
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
