package management

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse/internal/connection/azuread"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Application types Gatehouse accepts (reference §2.4). Native and SPA
// apps are public clients; the others are confidential.
const (
	appNative         = "native"
	appSPA            = "spa"
	appRegularWeb     = "regular_web"
	appNonInteractive = "non_interactive"
)

var appTypes = []string{appNative, appSPA, appRegularWeb, appNonInteractive}

// Token endpoint authentication methods (reference §1.3).
const (
	authNone   = "none"
	authPost   = "client_secret_post"
	authBasic  = "client_secret_basic"
	grantCC    = "client_credentials"
	grantPass  = "password"
	grantRealm = "http://auth0.com/oauth/grant-type/password-realm"
)

var authMethods = []string{authNone, authPost, authBasic}

// grantTypes are the grant_types values Auth0 accepts for new clients.
var grantTypes = []string{
	"authorization_code", "implicit", "refresh_token", grantCC, grantPass, grantRealm,
	"http://auth0.com/oauth/grant-type/mfa-oob", "http://auth0.com/oauth/grant-type/mfa-otp",
	"http://auth0.com/oauth/grant-type/mfa-recovery-code", "http://auth0.com/oauth/grant-type/passwordless/otp",
	"urn:openid:params:grant-type:ciba", "urn:ietf:params:oauth:grant-type:device_code",
	"urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token",
}

// clientFieldTypes are the client properties Gatehouse reads, with their
// JSON types. Unknown properties are refused, as Auth0 does.
var clientFieldTypes = map[string]string{
	"name":                                "string",
	"description":                         "string",
	"app_type":                            "string",
	"callbacks":                           "array",
	"allowed_logout_urls":                 "array",
	"web_origins":                         "array",
	"grant_types":                         "array",
	"token_endpoint_auth_method":          "string",
	"is_first_party":                      "boolean",
	"oidc_conformant":                     "boolean",
	"is_token_endpoint_ip_header_trusted": "boolean",
	"jwt_configuration":                   "object",
	"refresh_token":                       "object",
	"client_metadata":                     "object",
}

// clientExtraTypes are Auth0 client properties Gatehouse keeps and
// returns without acting on them (store.Client.Extra), so that exports
// from Auth0 import unchanged.
var clientExtraTypes = map[string]string{
	"logo_uri":                              "string",
	"allowed_origins":                       "array",
	"client_aliases":                        "array",
	"allowed_clients":                       "array",
	"initiate_login_uri":                    "string",
	"sso":                                   "boolean",
	"sso_disabled":                          "boolean",
	"cross_origin_authentication":           "boolean",
	"cross_origin_loc":                      "string",
	"custom_login_page_on":                  "boolean",
	"custom_login_page":                     "string",
	"custom_login_page_preview":             "string",
	"form_template":                         "string",
	"native_social_login":                   "object",
	"mobile":                                "object",
	"addons":                                "object",
	"organization_usage":                    "string",
	"organization_require_behavior":         "string",
	"require_pushed_authorization_requests": "boolean",
	"require_proof_of_possession":           "boolean",
}

// Server-filled defaults of a new client, as Auth0 answers POST /clients
// (reference §2.4).
var (
	defaultJWTConfiguration = map[string]any{"alg": "RS256", "lifetime_in_seconds": json.Number("36000"), "secret_encoded": false}
	defaultRefreshToken     = map[string]any{
		"rotation_type": "non-rotating", "expiration_type": "non-expiring", "leeway": json.Number("0"),
		"token_lifetime": json.Number("2592000"), "infinite_token_lifetime": true,
		"idle_token_lifetime": json.Number("1296000"), "infinite_idle_token_lifetime": true,
	}
	defaultClientExtra = map[string]any{"sso_disabled": false, "cross_origin_authentication": false, "custom_login_page_on": true}
)

func (a *API) clientRoutes(route routeFunc) {
	route("POST /api/v2/clients", "create:clients", a.createClient)
	route("GET /api/v2/clients", "read:clients", a.listClients)
	route("GET /api/v2/clients/{id}", "read:clients", a.getClient)
	route("PATCH /api/v2/clients/{id}", "update:clients", a.updateClient)
	route("DELETE /api/v2/clients/{id}", "delete:clients", a.deleteClient)
	route("POST /api/v2/clients/{id}/rotate-secret", "update:client_keys", a.rotateClientSecret)
}

func errNoClient() *Error { return NotFound("The client does not exist", "inexistent_client") }

// isPublic reports whether Auth0 registers an app type as a public client.
func isPublic(appType string) bool { return appType == appNative || appType == appSPA }

// defaultGrants are Auth0's grant_types for a new client of an app type:
// public clients cannot use client_credentials.
func defaultGrants(appType string) []string {
	g := []string{"authorization_code", "implicit", "refresh_token"}
	if !isPublic(appType) {
		g = append(g, grantCC)
	}
	return g
}

func (a *API) createClient(w http.ResponseWriter, r *http.Request) {
	body, err := decodeObject(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	if _, ok := body["name"]; !ok {
		WriteError(w, BadBody("Payload validation error: 'Missing required property: name'."))
		return
	}
	now := a.now().UTC()
	c := &store.Client{ClientID: randomAlnum(32), IsFirstParty: true, CreatedAt: now, UpdatedAt: now}
	creds, err := a.inlineCredentials(r.Context(), c.ClientID, body)
	if err != nil {
		WriteError(w, err)
		return
	}
	extra := map[string]any{}
	for k, v := range defaultClientExtra {
		extra[k] = v
	}
	jwtConf, refresh := cloneMap(defaultJWTConfiguration), cloneMap(defaultRefreshToken)
	if err := applyClient(c, body, extra, jwtConf, refresh); err != nil {
		WriteError(w, err)
		return
	}
	if _, ok := body["grant_types"]; !ok {
		c.GrantTypes = defaultGrants(c.AppType)
	}
	if _, ok := body["token_endpoint_auth_method"]; !ok {
		c.TokenEndpointAuthMethod = authPost
		if isPublic(c.AppType) {
			c.TokenEndpointAuthMethod = authNone
		}
	}
	if creds != nil {
		if _, ok := body["token_endpoint_auth_method"]; ok {
			WriteError(w, BadBody("Payload validation error: 'client_authentication_methods and token_endpoint_auth_method are mutually exclusive'."))
			return
		}
		if alg, _ := jwtConf["alg"].(string); alg != "RS256" {
			WriteError(w, BadBody("Payload validation error: 'private_key_jwt needs jwt_configuration.alg RS256' on property jwt_configuration.alg."))
			return
		}
		c.TokenEndpointAuthMethod, c.PrivateKeyJWTCredentials = "", []string{}
		for _, cr := range creds {
			c.PrivateKeyJWTCredentials = append(c.PrivateKeyJWTCredentials, cr.ID)
		}
	}
	if err := checkClient(c, sentOrigins(body)); err != nil {
		WriteError(w, err)
		return
	}
	if err := encodeClientDocs(c, extra, jwtConf, refresh); err != nil {
		WriteError(w, err)
		return
	}
	// Auth0 gives every app a secret, public ones included: they may later
	// become confidential by changing token_endpoint_auth_method.
	secret := newClientSecret()
	if c.SecretEnc, err = a.secrets.Seal([]byte(secret), store.ClientSecretAAD(c.ClientID)); err != nil {
		WriteError(w, internalError(fmt.Errorf("seal client secret: %w", err)))
		return
	}
	if err := a.store.CreateClient(r.Context(), c); err != nil {
		WriteError(w, internalError(err))
		return
	}
	for _, cr := range creds {
		if err := a.store.CreateClientCredential(r.Context(), cr); err != nil {
			// A client that names a credential it lacks could never sign
			// in: it goes, and the request fails whole.
			if derr := a.store.DeleteClient(context.WithoutCancel(r.Context()), c.ClientID); derr != nil {
				err = errors.Join(err, derr)
			}
			WriteError(w, internalError(err))
			return
		}
	}
	WriteJSON(w, http.StatusCreated, clientJSON(c, secret))
}

// inlineCredentials reads the credentials a POST /clients defines in
// client_authentication_methods, as Auth0 accepts them there: nil when
// the property is absent. Creating them needs create:client_credentials.
func (a *API) inlineCredentials(ctx context.Context, clientID string, body map[string]any) ([]*store.ClientCredential, error) {
	v, ok := body["client_authentication_methods"]
	delete(body, "client_authentication_methods")
	if !ok || v == nil {
		return nil, nil
	}
	if !PrincipalFrom(ctx).Has("create:client_credentials") {
		return nil, &Error{Status: http.StatusForbidden, Message: "Insufficient scope, expected any of: create:client_credentials", ErrorCode: "insufficient_scope"}
	}
	const prop = "client_authentication_methods"
	obj, _ := v.(map[string]any)
	pk, ok := obj["private_key_jwt"].(map[string]any)
	list, listOK := pk["credentials"].([]any)
	if len(obj) != 1 || !ok || len(pk) != 1 || !listOK {
		return nil, BadBody("Payload validation error: 'Expected {\"private_key_jwt\": {\"credentials\": [...]}}' on property " + prop + ".")
	}
	creds := make([]*store.ClientCredential, 0, len(list))
	for i, item := range list {
		m, ok := item.(map[string]any)
		at := fmt.Sprintf("%s.private_key_jwt.credentials[%d]", prop, i)
		if !ok {
			return nil, propertyError(at, "object", item)
		}
		cr, err := a.newCredential(clientID, m, at+".")
		if err != nil {
			return nil, err
		}
		creds = append(creds, cr)
	}
	return creds, nil
}

// listClients pages by offset (page, per_page, include_totals) or by
// checkpoint (from, take), as Auth0's GET /api/v2/clients does: the
// Management API OpenAPI schema (github.com/auth0/docs-v2
// main/docs/oas/management/v2/management-api-oas.json, operation
// get_clients) lists both sets of parameters and answers an array,
// ListClientsOffsetPaginatedResponseContent {start, limit, total, clients}
// or ListClientsPaginatedResponseContent {clients, next}; the API
// reference (https://auth0.com/docs/api/management/v2, "Pagination")
// takes /api/v2/clients as its example of both and keeps offset paging to
// about 1,000 items.
func (a *API) listClients(w http.ResponseWriter, r *http.Request) {
	appType := r.URL.Query().Get("app_type")
	firstParty := r.URL.Query().Get("is_first_party")
	if firstParty != "" && firstParty != "true" && firstParty != "false" {
		WriteError(w, BadQuery("Query validation error: 'Expected type boolean but found type string' on property is_first_party."))
		return
	}
	// Gatehouse has no global client (Auth0's "All Applications"), so
	// is_global=true selects nothing; q filters on organizations' client
	// grants, which Gatehouse does not have: refused rather than ignored,
	// which would answer every client as if it matched.
	global, err := queryBool(r, "is_global")
	if err != nil {
		WriteError(w, err)
		return
	}
	if r.URL.Query().Get("q") != "" {
		WriteError(w, BadQuery("Query validation error: 'Gatehouse has no organizations: q is not supported' on property q."))
		return
	}
	var keep func(*store.Client) bool
	if appType != "" || firstParty != "" || global {
		keep = func(c *store.Client) bool {
			return !global && (appType == "" || slices.Contains(strings.Split(appType, ","), c.AppType)) &&
				(firstParty == "" || (firstParty == "true") == c.IsFirstParty)
		}
	}
	cp, checkpointed, err := parseCheckpoint(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	var (
		p     paging
		cs    []*store.Client
		total int
	)
	switch {
	case checkpointed:
		cs, total, err = a.clientsAt(r.Context(), cp, keep)
	default:
		if p, err = parsePagingBesideCheckpoint(r); err != nil {
			WriteError(w, err)
			return
		}
		if keep == nil {
			cs, total, err = a.store.ListClients(r.Context(), p.listOptions())
			break
		}
		var matched []*store.Client
		matched, err = a.matchingClients(r.Context(), keep)
		start := min(p.page*p.perPage, len(matched))
		cs, total = matched[start:min(start+p.perPage, len(matched))], len(matched)
	}
	if err != nil {
		WriteError(w, internalError(err))
		return
	}
	items, err := a.clientItems(cs, r)
	if err != nil {
		WriteError(w, err)
		return
	}
	if checkpointed {
		writeCheckpoint(w, cp, "clients", items, len(cs), total)
		return
	}
	writePage(w, p, "clients", items, total)
}

// clientsAt is the checkpoint page of the clients that keep selects (all
// when nil), and how many there are.
func (a *API) clientsAt(ctx context.Context, cp checkpoint, keep func(*store.Client) bool) ([]*store.Client, int, error) {
	if keep == nil {
		return a.store.ListClients(ctx, cp.listOptions())
	}
	matched, err := a.matchingClients(ctx, keep)
	if err != nil {
		return nil, 0, err
	}
	start := min(cp.offset, len(matched))
	return matched[start : start+min(cp.take, len(matched)-start)], len(matched), nil
}

// clientItems renders a page of clients, with their secrets when the
// caller may read client keys.
func (a *API) clientItems(cs []*store.Client, r *http.Request) ([]map[string]any, error) {
	withKeys := PrincipalFrom(r.Context()).Has("read:client_keys")
	items := make([]map[string]any, 0, len(cs))
	for _, c := range cs {
		obj, err := a.clientView(c, withKeys)
		if err != nil {
			return nil, err
		}
		items = append(items, filterFields(obj, r))
	}
	return items, nil
}

// matchingClients returns the clients that keep selects, in creation
// order. The store does not index app_type, and tenants have few
// applications, so the filter runs here over the whole listing.
func (a *API) matchingClients(ctx context.Context, keep func(*store.Client) bool) ([]*store.Client, error) {
	var matched []*store.Client
	for page := 0; ; page++ {
		cs, total, err := a.store.ListClients(ctx, store.ListOptions{Page: page, PerPage: maxPerPage})
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if keep(c) {
				matched = append(matched, c)
			}
		}
		if len(cs) == 0 || (page+1)*maxPerPage >= total {
			return matched, nil
		}
	}
}

func (a *API) getClient(w http.ResponseWriter, r *http.Request) {
	c, err := a.store.GetClient(r.Context(), r.PathValue("id"))
	if err != nil {
		WriteError(w, clientStoreError(err))
		return
	}
	obj, err := a.clientView(c, PrincipalFrom(r.Context()).Has("read:client_keys"))
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, filterFields(obj, r))
}

func (a *API) updateClient(w http.ResponseWriter, r *http.Request) {
	body, err := decodeObject(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	ctx := r.Context()
	secret, hasSecret := body["client_secret"]
	delete(body, "client_secret")
	methods, hasMethods := body["client_authentication_methods"]
	delete(body, "client_authentication_methods")
	var c *store.Client
	err = retryConflicts(func() (err error) {
		c, err = a.patchClient(ctx, r.PathValue("id"), body, secret, hasSecret, methods, hasMethods)
		return err
	})
	if err != nil {
		WriteError(w, err)
		return
	}
	obj, err := a.clientView(c, PrincipalFrom(ctx).Has("read:client_keys"))
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, obj)
}

// patchClient reads the client, applies a PATCH's properties (body without
// client_secret and client_authentication_methods, given apart) and
// writes it.
func (a *API) patchClient(ctx context.Context, id string, body map[string]any, secret any, hasSecret bool, methods any, hasMethods bool) (*store.Client, error) {
	c, err := a.store.GetClient(ctx, id)
	if err != nil {
		return nil, clientStoreError(err)
	}
	if hasSecret {
		if !PrincipalFrom(ctx).Has("update:client_keys") {
			return nil, &Error{Status: http.StatusForbidden, Message: "Insufficient scope, expected any of: update:client_keys", ErrorCode: "insufficient_scope"}
		}
		s, ok := secret.(string)
		if !ok {
			return nil, propertyError("client_secret", "string", secret)
		}
		if len(s) < 32 {
			return nil, BadBody("Payload validation error: 'String is too short (minimum 32 characters)' on property client_secret.")
		}
	}
	extra, jwtConf, refresh, err := clientDocs(c)
	if err != nil {
		return nil, err
	}
	if err := applyClient(c, body, extra, jwtConf, refresh); err != nil {
		return nil, err
	}
	_, hasAuthMethod := body["token_endpoint_auth_method"]
	if err := a.applyAuthenticationMethods(ctx, c, methods, hasMethods, hasAuthMethod, jwtConf); err != nil {
		return nil, err
	}
	if err := checkClient(c, sentOrigins(body)); err != nil {
		return nil, err
	}
	if err := a.checkClientConnections(ctx, c); err != nil {
		return nil, err
	}
	if err := encodeClientDocs(c, extra, jwtConf, refresh); err != nil {
		return nil, err
	}
	// The secret read above goes back only when the request sets one: a
	// rotation since must not be undone.
	c.SecretEnc = nil
	if hasSecret {
		if c.SecretEnc, err = a.secrets.Seal([]byte(secret.(string)), store.ClientSecretAAD(c.ClientID)); err != nil {
			return nil, internalError(fmt.Errorf("seal client secret: %w", err))
		}
	}
	if err := a.store.UpdateClient(ctx, c); err != nil {
		return nil, clientStoreError(err)
	}
	return c, nil
}

// checkClientConnections refuses a grant change that would let a client
// use the password grant on an enabled connection that cannot serve it.
func (a *API) checkClientConnections(ctx context.Context, c *store.Client) error {
	if !allowsPassword(c) {
		return nil
	}
	for page := 0; ; page++ {
		cs, total, err := a.store.ListConnections(ctx, store.ConnectionFilter{Strategies: []string{azuread.Strategy}}, store.ListOptions{Page: page, PerPage: maxPerPage})
		if err != nil {
			return internalError(err)
		}
		for _, conn := range cs {
			if !slices.Contains(conn.EnabledClients, c.ClientID) {
				continue
			}
			o, err := azuread.ParseOptions(conn.Options)
			if err != nil {
				return internalError(fmt.Errorf("connection %s: %w", conn.ID, err))
			}
			if err := o.CheckPasswordGrant(); err != nil {
				return BadBody(fmt.Sprintf("Payload validation error: 'The password grant cannot be used with connection %s: options.app_id is required with identity_api %s' on property grant_types.", conn.Name, azuread.IdentityAPIV1))
			}
		}
		if len(cs) == 0 || (page+1)*maxPerPage >= total {
			return nil
		}
	}
}

func allowsPassword(c *store.Client) bool {
	return slices.Contains(c.GrantTypes, grantPass) || slices.Contains(c.GrantTypes, grantRealm)
}

func (a *API) deleteClient(w http.ResponseWriter, r *http.Request) {
	// The store drops the client's connection enablements with it.
	if err := a.store.DeleteClient(r.Context(), r.PathValue("id")); err != nil {
		WriteError(w, clientStoreError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) rotateClientSecret(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, err := a.store.GetClient(ctx, r.PathValue("id"))
	if err != nil {
		WriteError(w, clientStoreError(err))
		return
	}
	secret := newClientSecret()
	if c.SecretEnc, err = a.secrets.Seal([]byte(secret), store.ClientSecretAAD(c.ClientID)); err != nil {
		WriteError(w, internalError(fmt.Errorf("seal client secret: %w", err)))
		return
	}
	// The secret alone: writing back the whole client read above would
	// undo a PATCH made since, such as a switch to private_key_jwt.
	if err := a.store.SetClientSecret(ctx, c.ClientID, c.SecretEnc); err != nil {
		WriteError(w, clientStoreError(err))
		return
	}
	WriteJSON(w, http.StatusOK, clientJSON(c, secret))
}

func clientStoreError(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errNoClient()
	case errors.Is(err, store.ErrConflict):
		return errBusy("client", err)
	}
	return internalError(err)
}

// clientView is a client's JSON, with its secret when withSecret.
func (a *API) clientView(c *store.Client, withSecret bool) (map[string]any, error) {
	secret := ""
	if withSecret && len(c.SecretEnc) > 0 {
		b, err := a.secrets.Open(c.SecretEnc, store.ClientSecretAAD(c.ClientID))
		if err != nil {
			return nil, internalError(fmt.Errorf("open secret of client %s: %w", c.ClientID, err))
		}
		secret = string(b)
	}
	return clientJSON(c, secret), nil
}

// clientJSON is the Auth0 client object; secret is included when not empty.
func clientJSON(c *store.Client, secret string) map[string]any {
	obj := map[string]any{}
	if len(c.Extra) > 0 {
		_ = json.Unmarshal(c.Extra, &obj)
	}
	obj["client_id"] = c.ClientID
	obj["name"] = c.Name
	if c.Description != "" {
		obj["description"] = c.Description
	}
	if c.AppType != "" {
		obj["app_type"] = c.AppType
	}
	obj["callbacks"] = nonNil(c.Callbacks)
	obj["allowed_logout_urls"] = nonNil(c.AllowedLogoutURLs)
	obj["web_origins"] = nonNil(c.WebOrigins)
	obj["grant_types"] = nonNil(c.GrantTypes)
	if c.PrivateKeyJWTCredentials != nil {
		creds := make([]map[string]string, len(c.PrivateKeyJWTCredentials))
		for i, id := range c.PrivateKeyJWTCredentials {
			creds[i] = map[string]string{"id": id}
		}
		obj["client_authentication_methods"] = map[string]any{"private_key_jwt": map[string]any{"credentials": creds}}
	} else {
		obj["token_endpoint_auth_method"] = c.TokenEndpointAuthMethod
	}
	obj["is_first_party"] = c.IsFirstParty
	obj["oidc_conformant"] = c.OIDCConformant
	obj["is_token_endpoint_ip_header_trusted"] = c.IsTokenEndpointIPHeaderTrusted
	if len(c.JWTConfiguration) > 0 {
		obj["jwt_configuration"] = c.JWTConfiguration
	}
	if len(c.RefreshToken) > 0 {
		obj["refresh_token"] = c.RefreshToken
	}
	if len(c.ClientMetadata) > 0 {
		obj["client_metadata"] = c.ClientMetadata
	}
	if secret != "" {
		obj["client_secret"] = secret
	}
	return obj
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// clientDocs decodes a stored client's JSON sub-documents for a merge.
func clientDocs(c *store.Client) (extra, jwtConf, refresh map[string]any, err error) {
	extra, jwtConf, refresh = map[string]any{}, map[string]any{}, map[string]any{}
	for _, d := range []struct {
		raw json.RawMessage
		dst *map[string]any
	}{{c.Extra, &extra}, {c.JWTConfiguration, &jwtConf}, {c.RefreshToken, &refresh}} {
		if len(d.raw) == 0 {
			continue
		}
		if err := json.Unmarshal(d.raw, d.dst); err != nil {
			return nil, nil, nil, internalError(fmt.Errorf("client %s: %w", c.ClientID, err))
		}
	}
	return extra, jwtConf, refresh, nil
}

func encodeClientDocs(c *store.Client, extra, jwtConf, refresh map[string]any) error {
	var err error
	if c.Extra, err = json.Marshal(extra); err != nil {
		return internalError(err)
	}
	if c.JWTConfiguration, err = json.Marshal(jwtConf); err != nil {
		return internalError(err)
	}
	if c.RefreshToken, err = json.Marshal(refresh); err != nil {
		return internalError(err)
	}
	return nil
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

var clientNameRE = regexp.MustCompile(`^[^<>]+$`)

// applyClient checks the properties of body and writes them into c and
// the sub-documents; jwt_configuration and refresh_token are merged key
// by key, every other property replaces the stored value.
func applyClient(c *store.Client, body map[string]any, extra, jwtConf, refresh map[string]any) error {
	var unknown []string
	for k := range body {
		if clientFieldTypes[k] == "" && clientExtraTypes[k] == "" {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return additionalProperties(unknown)
	}
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := body[k]
		want := clientFieldTypes[k]
		if want == "" {
			want = clientExtraTypes[k]
		}
		if jsonType(v) != want {
			return propertyError(k, want, v)
		}
		if _, kept := clientExtraTypes[k]; kept {
			if k == "allowed_origins" {
				if _, err := stringArray(k, v); err != nil {
					return err
				}
			}
			extra[k] = v
			continue
		}
		if err := applyClientField(c, k, v, jwtConf, refresh); err != nil {
			return err
		}
	}
	return nil
}

func applyClientField(c *store.Client, k string, v any, jwtConf, refresh map[string]any) error {
	var err error
	switch k {
	case "name":
		s := v.(string)
		if !clientNameRE.MatchString(s) {
			return BadBody("Payload validation error: 'String does not match pattern ^[^<>]+$' on property name (The name of the client).")
		}
		c.Name = s
	case "description":
		s := v.(string)
		if len([]rune(s)) > 140 {
			return BadBody("Payload validation error: 'String is too long (maximum 140 characters)' on property description.")
		}
		c.Description = s
	case "app_type":
		s := v.(string)
		if !slices.Contains(appTypes, s) {
			return enumError(k, s, appTypes)
		}
		c.AppType = s
	case "callbacks":
		c.Callbacks, err = stringArray(k, v)
	case "allowed_logout_urls":
		c.AllowedLogoutURLs, err = stringArray(k, v)
	case "web_origins":
		c.WebOrigins, err = stringArray(k, v)
	case "grant_types":
		if c.GrantTypes, err = stringArray(k, v); err != nil {
			return err
		}
		for i, g := range c.GrantTypes {
			if !slices.Contains(grantTypes, g) {
				return enumError(fmt.Sprintf("grant_types[%d]", i), g, grantTypes)
			}
		}
		c.GrantTypes = slices.Compact(c.GrantTypes)
	case "token_endpoint_auth_method":
		s := v.(string)
		if !slices.Contains(authMethods, s) {
			return enumError(k, s, authMethods)
		}
		c.TokenEndpointAuthMethod = s
	case "is_first_party":
		c.IsFirstParty = v.(bool)
	case "oidc_conformant":
		c.OIDCConformant = v.(bool)
	case "is_token_endpoint_ip_header_trusted":
		c.IsTokenEndpointIPHeaderTrusted = v.(bool)
	case "jwt_configuration":
		return mergeObject(k, v.(map[string]any), jwtConf, jwtConfigurationTypes)
	case "refresh_token":
		return mergeObject(k, v.(map[string]any), refresh, refreshTokenTypes)
	case "client_metadata":
		c.ClientMetadata, err = clientMetadata(v.(map[string]any))
	}
	return err
}

var jwtConfigurationTypes = map[string]string{
	"lifetime_in_seconds": "integer", "secret_encoded": "boolean", "scopes": "object", "alg": "string",
}

var refreshTokenTypes = map[string]string{
	"rotation_type": "string", "expiration_type": "string", "leeway": "integer", "token_lifetime": "integer",
	"infinite_token_lifetime": "boolean", "idle_token_lifetime": "integer", "infinite_idle_token_lifetime": "boolean",
	"policies": "array",
}

// mergeObject checks the properties of a nested object and merges them
// into dst.
func mergeObject(prop string, src, dst map[string]any, types map[string]string) error {
	var unknown []string
	for k := range src {
		if types[k] == "" {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return additionalPropertiesOn(prop, unknown)
	}
	keys := make([]string, 0, len(src))
	for k := range src {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, path := src[k], prop+"."+k
		want := types[k]
		got := jsonType(v)
		if want == "integer" {
			n, ok := v.(json.Number)
			if _, err := n.Int64(); !ok || err != nil {
				return propertyError(path, "integer", v)
			}
		} else if got != want {
			return propertyError(path, want, v)
		}
		if err := checkNested(path, v); err != nil {
			return err
		}
		dst[k] = v
	}
	return nil
}

// checkNested applies the value rules of jwt_configuration and
// refresh_token properties.
func checkNested(path string, v any) error {
	intIn := func(lo, hi int64) error {
		n, _ := v.(json.Number).Int64()
		if n < lo || n > hi {
			return BadBody(fmt.Sprintf("Payload validation error: 'Value %d is out of range [%d, %d]' on property %s.", n, lo, hi, path))
		}
		return nil
	}
	switch path {
	case "jwt_configuration.alg":
		// Gatehouse signs with RS256 only (the tenant's signing keys).
		if s := v.(string); s != "RS256" {
			return BadBody(fmt.Sprintf("Payload validation error: 'Gatehouse signs tokens with RS256 only, not %q' on property %s.", s, path))
		}
	case "jwt_configuration.lifetime_in_seconds":
		return intIn(1, 2592000)
	case "refresh_token.rotation_type":
		if s := v.(string); s != "rotating" && s != "non-rotating" {
			return enumError(path, s, []string{"rotating", "non-rotating"})
		}
	case "refresh_token.expiration_type":
		if s := v.(string); s != "expiring" && s != "non-expiring" {
			return enumError(path, s, []string{"expiring", "non-expiring"})
		}
	case "refresh_token.leeway":
		return intIn(0, 60)
	case "refresh_token.token_lifetime", "refresh_token.idle_token_lifetime":
		return intIn(1, 31557600*10)
	}
	return nil
}

// clientMetadata applies Auth0's limits: at most 10 string properties,
// names and values of at most 255 characters.
func clientMetadata(m map[string]any) (map[string]string, error) {
	if len(m) > 10 {
		return nil, BadBody("Payload validation error: 'Too many properties (maximum 10)' on property client_metadata.")
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		s, ok := v.(string)
		if !ok {
			return nil, propertyError("client_metadata."+k, "string", v)
		}
		if len(k) > 255 || len(s) > 255 {
			return nil, BadBody(fmt.Sprintf("Payload validation error: 'String is too long (maximum 255 characters)' on property client_metadata.%s.", k))
		}
		out[k] = s
	}
	return out, nil
}

// stringArray reads an array of strings; any other value, null
// included, is Auth0's payload validation error on prop.
func stringArray(prop string, v any) ([]string, error) {
	items, ok := v.([]any)
	if !ok {
		return nil, propertyError(prop, "array", v)
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		s, ok := it.(string)
		if !ok {
			return nil, propertyError(fmt.Sprintf("%s[%d]", prop, i), "string", it)
		}
		out = append(out, s)
	}
	return out, nil
}

func enumError(prop, got string, allowed []string) *Error {
	return BadBody(fmt.Sprintf("Payload validation error: 'No enum match for: %q (expected one of %s)' on property %s.", got, strings.Join(allowed, ", "), prop))
}

// sentOrigins is the allowed_origins a write sends, nil when it sends
// none; applyClient has checked that it is an array of strings.
func sentOrigins(body map[string]any) []string {
	v, ok := body["allowed_origins"]
	if !ok {
		return nil
	}
	origins, _ := stringArray("allowed_origins", v)
	return origins
}

// checkClient applies the rules that involve more than one property.
// allowed_origins is kept in Extra and checked only as a write sends it
// (origins): a value stored before it was checked, such as a URL with
// credentials, still loads and is answered as stored, and does not block
// writes to other properties; a write that sends a list checks it whole.
func checkClient(c *store.Client, origins []string) error {
	if strings.TrimSpace(c.Name) == "" {
		return BadBody("Payload validation error: 'String is too short (0 chars), minimum 1' on property name (The name of the client).")
	}
	if c.TokenEndpointAuthMethod == authNone && slices.Contains(c.GrantTypes, grantCC) {
		return BadBody("Payload validation error: 'Public clients (token_endpoint_auth_method none) cannot use the client_credentials grant' on property grant_types.")
	}
	native := c.AppType == appNative
	for _, list := range []struct {
		prop   string
		urls   []string
		origin bool
	}{
		{"callbacks", c.Callbacks, false}, {"allowed_logout_urls", c.AllowedLogoutURLs, false},
		{"web_origins", c.WebOrigins, true}, {"allowed_origins", origins, true},
	} {
		for i, u := range list.urls {
			if reason := checkAppURL(u, native, list.origin); reason != "" {
				return BadBody(fmt.Sprintf("Payload validation error: '%s' on property %s[%d].", reason, list.prop, i))
			}
		}
	}
	return nil
}

var (
	schemeRE       = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*$`)
	wildcardHostRE = regexp.MustCompile(`^[a-zA-Z0-9-]*\*[a-zA-Z0-9-]*$`)
	// forbiddenSchemes run code or read local files in a browser.
	forbiddenSchemes = []string{"javascript", "data", "vbscript", "file", "blob", "about"}
)

// checkAppURL returns why u cannot be a callback, logout URL, web origin
// or allowed origin, or "" when it can. Native apps may use custom schemes
// (com.example.app://callback). Wildcards follow Auth0's rules: http(s)
// only, one "*", in the leftmost label of a host of three labels or more.
func checkAppURL(s string, native, origin bool) string {
	u, err := url.Parse(s)
	if err != nil {
		return "not an absolute URL"
	}
	// What is refused is echoed without its user info: a URL pasted with
	// a password, or a token as its user name, must not come back in the
	// answer, a terminal or a log. Nor its fragment, where a browser's
	// address bar holds an implicit grant's tokens (#access_token=), nor
	// a path or opaque part with an "@": user info typed without the "//"
	// (https:/u:pw@host, https:u:pw@host) is parsed as one of them.
	bare := *u
	bare.User, bare.Fragment, bare.RawFragment = nil, "", ""
	shown := bare.String()
	if strings.Contains(u.Opaque, "@") || strings.Contains(u.Path, "@") {
		shown = (&url.URL{Scheme: u.Scheme, Host: u.Host}).String() + "…"
	}
	if strings.Contains(s, "#") {
		return fmt.Sprintf("URL %q must not contain a fragment (#)", shown)
	}
	if u.Scheme == "" || !schemeRE.MatchString(u.Scheme) {
		return fmt.Sprintf("%q is not an absolute URL", shown)
	}
	scheme := strings.ToLower(u.Scheme)
	web := scheme == "http" || scheme == "https"
	switch {
	case slices.Contains(forbiddenSchemes, scheme):
		return fmt.Sprintf("URL scheme %q is not allowed", scheme)
	case !web && !native:
		return fmt.Sprintf("URL %q: custom URL schemes are allowed only for native applications", shown)
	case web && u.Host == "":
		return fmt.Sprintf("URL %q has no host", shown)
	case !web && u.Host == "" && u.Path == "":
		return fmt.Sprintf("URL %q has nothing after the scheme", shown)
	case u.User != nil:
		return fmt.Sprintf("URL %q must not contain credentials", shown)
	}
	if origin && (strings.Trim(u.Path, "/") != "" || u.RawQuery != "") {
		return fmt.Sprintf("Origin %q must not have a path or a query", shown)
	}
	switch n := strings.Count(s, "*"); {
	case n == 0:
		return ""
	case n > 1:
		return fmt.Sprintf("URL %q must not contain more than one wildcard", shown)
	case !web:
		return fmt.Sprintf("URL %q: wildcards are allowed only with http and https", shown)
	}
	labels := strings.Split(u.Hostname(), ".")
	if !strings.Contains(labels[0], "*") {
		return fmt.Sprintf("URL %q: the wildcard must be in the subdomain furthest from the root domain", shown)
	}
	if len(labels) < 3 {
		return fmt.Sprintf("URL %q: the wildcard must be in a subdomain, not in the domain itself", shown)
	}
	if !wildcardHostRE.MatchString(labels[0]) {
		return fmt.Sprintf("URL %q: the wildcard label may hold only hostname characters", shown)
	}
	return ""
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomAlnum returns n uniformly random letters and digits, the alphabet
// of Auth0's client and connection ids.
func randomAlnum(n int) string {
	b := make([]byte, n)
	for i := range b {
		// 248 is the largest multiple of 62 below 256: rejecting larger
		// bytes keeps the distribution uniform.
		for {
			var c [1]byte
			_, _ = rand.Read(c[:])
			if c[0] < 248 {
				b[i] = alnum[int(c[0])%len(alnum)]
				break
			}
		}
	}
	return string(b)
}

// newClientSecret returns 48 random bytes as 64 base64url characters, the
// length and alphabet of Auth0's client secrets.
func newClientSecret() string {
	b := make([]byte, 48)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// applyAuthenticationMethods applies a PATCH's client_authentication_methods,
// which Auth0 keeps mutually exclusive with token_endpoint_auth_method:
// naming private_key_jwt credentials replaces the secret, null goes back
// to the token_endpoint_auth_method given with it. Changing them needs
// update:client_credentials, as at Auth0.
func (a *API) applyAuthenticationMethods(ctx context.Context, c *store.Client, v any, hasMethods, hasAuthMethod bool, jwtConf map[string]any) error {
	if !hasMethods {
		if hasAuthMethod && c.PrivateKeyJWTCredentials != nil {
			return BadBody("Payload validation error: 'client_authentication_methods and token_endpoint_auth_method are mutually exclusive; set client_authentication_methods to null to use token_endpoint_auth_method'.")
		}
		return nil
	}
	if !PrincipalFrom(ctx).Has("update:client_credentials") {
		return &Error{Status: http.StatusForbidden, Message: "Insufficient scope, expected any of: update:client_credentials", ErrorCode: "insufficient_scope"}
	}
	if v == nil {
		if c.PrivateKeyJWTCredentials != nil && !hasAuthMethod {
			return BadBody("Payload validation error: 'Set token_endpoint_auth_method when removing client_authentication_methods' on property token_endpoint_auth_method.")
		}
		c.PrivateKeyJWTCredentials = nil
		return nil
	}
	if hasAuthMethod {
		return BadBody("Payload validation error: 'client_authentication_methods and token_endpoint_auth_method are mutually exclusive'.")
	}
	const prop = "client_authentication_methods"
	obj, ok := v.(map[string]any)
	if !ok {
		return propertyError(prop, "object", v)
	}
	pk, ok := obj["private_key_jwt"].(map[string]any)
	if len(obj) != 1 || !ok {
		return BadBody("Payload validation error: 'Gatehouse supports the private_key_jwt method only, as {\"private_key_jwt\": {\"credentials\": [{\"id\": …}]}}' on property " + prop + ".")
	}
	list, ok := pk["credentials"].([]any)
	if len(pk) != 1 || !ok {
		return propertyError(prop+".private_key_jwt.credentials", "array", pk["credentials"])
	}
	if alg, _ := jwtConf["alg"].(string); alg != "RS256" {
		return BadBody("Payload validation error: 'private_key_jwt needs jwt_configuration.alg RS256' on property jwt_configuration.alg.")
	}
	ids := []string{}
	for i, item := range list {
		m, _ := item.(map[string]any)
		id, ok := m["id"].(string)
		at := fmt.Sprintf("%s.private_key_jwt.credentials[%d]", prop, i)
		if len(m) != 1 || !ok {
			return BadBody("Payload validation error: 'Expected an object with the id of a credential' on property " + at + ".")
		}
		switch _, err := a.store.GetClientCredential(ctx, c.ClientID, id); {
		case errors.Is(err, store.ErrNotFound):
			return BadBody(fmt.Sprintf("Payload validation error: 'The client has no credential %s' on property %s.", id, at))
		case err != nil:
			return internalError(err)
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	c.PrivateKeyJWTCredentials, c.TokenEndpointAuthMethod = ids, ""
	return nil
}
