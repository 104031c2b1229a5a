package management

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/attack"
	"github.com/gatehouse/gatehouse/internal/connection"
	"github.com/gatehouse/gatehouse/internal/connection/azuread"
	"github.com/gatehouse/gatehouse/internal/store"
)

// SecretMarker stands in for options.client_secret in every connection the
// API returns when a secret is stored: the secret itself is write-only. A
// PATCH whose options carry the marker (a GET sent back) keeps the stored
// secret, as does one whose options omit client_secret.
const SecretMarker = "[set]"

// connectionFieldTypes are the connection properties accepted on create.
var connectionFieldTypes = map[string]string{
	"name":                 "string",
	"strategy":             "string",
	"display_name":         "string",
	"options":              "object",
	"enabled_clients":      "array",
	"is_domain_connection": "boolean",
	"show_as_button":       "boolean",
	"realms":               "array",
	"metadata":             "object",
}

// Auth0's connection name rule (reference §2.2).
var connectionNameRE = regexp.MustCompile(`^[a-zA-Z0-9](-[a-zA-Z0-9]|[a-zA-Z0-9])*$`)

const (
	maxConnectionName = 128
	// maxEnabledClientsPatch is Auth0's limit of items per
	// PATCH /connections/{id}/clients.
	maxEnabledClientsPatch = 50
)

func (a *API) connectionRoutes(route routeFunc) {
	route("POST /api/v2/connections", "create:connections", a.createConnection)
	route("GET /api/v2/connections", "read:connections", a.listConnections)
	route("GET /api/v2/connections/{id}", "read:connections", a.getConnection)
	route("PATCH /api/v2/connections/{id}", "update:connections", a.updateConnection)
	route("DELETE /api/v2/connections/{id}", "delete:connections", a.deleteConnection)
	route("GET /api/v2/connections/{id}/clients", "read:connections", a.getConnectionClients)
	route("PATCH /api/v2/connections/{id}/clients", "update:connections", a.patchConnectionClients)
}

func errNoConnection() *Error {
	return NotFound("The connection does not exist", "inexistent_connection")
}

func connectionStoreError(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errNoConnection()
	case errors.Is(err, store.ErrConflict):
		return Conflict("A connection with the same name already exists", "connection_conflict")
	}
	return internalError(err)
}

// connectionInput is a checked create or update body.
type connectionInput struct {
	body    map[string]any
	options *azuread.Options
	// secret is the new client secret; keepSecret means leave the stored
	// one, removeSecret means drop it.
	secret       string
	keepSecret   bool
	removeSecret bool
	// narrowed: the update takes admission away from upstream users the
	// connection admitted, and ends its refresh tokens.
	narrowed bool
}

func (a *API) createConnection(w http.ResponseWriter, r *http.Request) {
	body, err := decodeObject(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	for _, req := range []string{"name", "strategy"} {
		if _, ok := body[req]; !ok {
			WriteError(w, BadBody("Payload validation error: 'Missing required property: "+req+"'."))
			return
		}
	}
	in, err := checkConnectionBody(body, nil)
	if err == nil {
		err = a.checkHosts(in.options)
	}
	if err != nil {
		WriteError(w, err)
		return
	}
	if in.secret == SecretMarker {
		WriteError(w, BadBody("Payload validation error: 'client_secret is the write-only marker "+SecretMarker+", not a secret' on property options.client_secret."))
		return
	}
	now := a.now().UTC()
	c := &store.Connection{
		ID:             "con_" + randomAlnum(16),
		Name:           body["name"].(string),
		Strategy:       body["strategy"].(string),
		EnabledClients: []string{},
		CreatedAt:      now,
		UpdatedAt:      now,
	}
	c.DisplayName = c.Name
	c.Realms = []string{c.Name}
	if err := applyConnection(c, in); err != nil {
		WriteError(w, err)
		return
	}
	ctx := r.Context()
	if err := a.checkEnabledClients(a.clientLookup(ctx), in.options, c.EnabledClients, "enabled_clients"); err != nil {
		WriteError(w, err)
		return
	}
	// The store lists enabled clients sorted; answer the same way.
	slices.Sort(c.EnabledClients)
	if in.secret != "" {
		if c.SecretEnc, err = a.secrets.Seal([]byte(in.secret), store.ConnectionSecretAAD(c.ID)); err != nil {
			WriteError(w, internalError(fmt.Errorf("seal connection secret: %w", err)))
			return
		}
	}
	if err := a.store.CreateConnection(ctx, c); err != nil {
		WriteError(w, a.enabledClientsRace(ctx, "", err))
		return
	}
	a.warn(ctx, w, c, in.options)
	WriteJSON(w, http.StatusCreated, connectionJSON(c))
}

// enabledClientsRace maps a store error of a write that names clients.
// ErrNotFound means that the connection (id, when not empty) or one of the
// clients was deleted since they were checked; a second read tells which.
func (a *API) enabledClientsRace(ctx context.Context, id string, err error) error {
	if !errors.Is(err, store.ErrNotFound) {
		return connectionStoreError(err)
	}
	if id != "" {
		if _, gerr := a.store.GetConnection(ctx, id); errors.Is(gerr, store.ErrNotFound) {
			return errNoConnection()
		}
	}
	return BadBody("Payload validation error: 'One of the clients does not exist' on property enabled_clients.")
}

// warn logs the options' warnings and repeats them in Warning headers, so
// that an administrator sees them without Auth0's body changing.
func (a *API) warn(ctx context.Context, w http.ResponseWriter, c *store.Connection, o *azuread.Options) {
	for _, msg := range o.Warnings() {
		a.logger.WarnContext(ctx, "connection option", "connection", c.Name, "warning", msg)
		w.Header().Add("Warning", "299 gatehouse "+strconv.Quote(msg))
	}
}

func (a *API) listConnections(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f store.ConnectionFilter
	for _, s := range q["strategy"] {
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				f.Strategies = append(f.Strategies, part)
			}
		}
	}
	f.Name = q.Get("name")
	cp, checkpointed, err := parseCheckpoint(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	if checkpointed {
		cs, total, err := a.store.ListConnections(r.Context(), f, cp.listOptions())
		if err != nil {
			WriteError(w, internalError(err))
			return
		}
		writeCheckpoint(w, cp, "connections", connectionItems(cs, r), len(cs), total)
		return
	}
	p, err := parsePagingBesideCheckpoint(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	cs, total, err := a.store.ListConnections(r.Context(), f, p.listOptions())
	if err != nil {
		WriteError(w, internalError(err))
		return
	}
	writePage(w, p, "connections", connectionItems(cs, r), total)
}

func connectionItems(cs []*store.Connection, r *http.Request) []map[string]any {
	items := make([]map[string]any, 0, len(cs))
	for _, c := range cs {
		items = append(items, filterFields(connectionJSON(c), r))
	}
	return items
}

func (a *API) getConnection(w http.ResponseWriter, r *http.Request) {
	c, err := a.store.GetConnection(r.Context(), r.PathValue("id"))
	if err != nil {
		WriteError(w, connectionStoreError(err))
		return
	}
	WriteJSON(w, http.StatusOK, filterFields(connectionJSON(c), r))
}

func (a *API) updateConnection(w http.ResponseWriter, r *http.Request) {
	body, err := decodeObject(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	ctx := r.Context()
	var in *connectionInput
	// The body is applied to the connection as stored when it is written:
	// a change read before another administrator's, and written after it,
	// would undo it (a new client secret, a narrowed allowed_tenants).
	c, err := a.store.PatchConnection(ctx, r.PathValue("id"), func(c *store.Connection, client store.ClientLookup) (perr error) {
		in, perr = a.patchConnection(c, client, body)
		return perr
	})
	if apiErr := (*Error)(nil); errors.As(err, &apiErr) {
		WriteError(w, apiErr)
		return
	}
	if err != nil {
		WriteError(w, a.enabledClientsRace(ctx, r.PathValue("id"), err))
		return
	}
	if in.narrowed {
		a.logger.InfoContext(ctx, "connection admits fewer upstream users: the refresh tokens issued through it before are refused",
			"connection", c.Name, "tenant_generation", c.TenantGeneration)
	}
	a.warn(ctx, w, c, in.options)
	WriteJSON(w, http.StatusOK, connectionJSON(c))
}

// patchConnection applies a checked PATCH body to the stored connection c,
// leaving c.EnabledClients nil when the body does not replace them.
func (a *API) patchConnection(c *store.Connection, client store.ClientLookup, body map[string]any) (*connectionInput, error) {
	in, err := checkConnectionBody(body, c)
	if err == nil && in.options != nil {
		err = a.checkHosts(in.options)
	}
	if err != nil {
		return nil, err
	}
	if in.options != nil && in.keepSecret && len(c.SecretEnc) > 0 {
		if err := checkSecretHosts(c, in.options); err != nil {
			return nil, err
		}
	}
	if in.options == nil {
		if in.options, err = storedOptions(c); err != nil {
			return nil, err
		}
	}
	before := *c
	// Auth0 resets display_name to the name when a PATCH omits it.
	c.DisplayName = c.Name
	enabled := c.EnabledClients
	c.EnabledClients = nil
	if err := applyConnection(c, in); err != nil {
		return nil, err
	}
	if c.EnabledClients != nil {
		enabled = c.EnabledClients
	}
	if err := a.checkEnabledClients(client, in.options, enabled, "enabled_clients"); err != nil {
		return nil, err
	}
	switch narrowed, err := a.tenantsNarrowed(&before, c); {
	case err != nil:
		return nil, internalError(err)
	case narrowed:
		c.TenantGeneration++
		in.narrowed = true
	}
	switch {
	case in.removeSecret:
		c.SecretEnc = nil
	case in.keepSecret:
	default:
		if c.SecretEnc, err = a.secrets.Seal([]byte(in.secret), store.ConnectionSecretAAD(c.ID)); err != nil {
			return nil, internalError(fmt.Errorf("seal connection secret: %w", err))
		}
	}
	return in, nil
}

// tenantsNarrowed asks the connection's connector whether the change from
// before to after takes admission away from upstream users it admitted:
// their refresh tokens must then end (connection.TenantNarrower). A
// strategy whose connector cannot tell counts every change of options.
func (a *API) tenantsNarrowed(before, after *store.Connection) (bool, error) {
	connector, _ := a.connectors.Password(after.Strategy)
	if n, ok := connector.(connection.TenantNarrower); ok {
		return n.TenantsNarrowed(before, after)
	}
	return !bytes.Equal(before.Options, after.Options), nil
}

// checkHosts refuses options whose authority_host or graph_host the
// operator has not allowed: those hosts receive the client secret, every
// user's password and the users' upstream tokens, and whoever may write
// connections must not be able to pick them.
func (a *API) checkHosts(o *azuread.Options) error {
	if err := a.hosts.Check(o); err != nil {
		return optionsError(err)
	}
	return nil
}

// checkSecretHosts refuses new options that move the hosts Gatehouse
// sends the connection's credentials to while keeping the stored secret:
// authority_host receives the client secret and every user's password,
// graph_host the users' upstream access tokens. Whoever may change options
// without knowing the secret must not be able to have Gatehouse deliver
// it, and the passwords, to a host of their choosing; sending the secret
// again proves that knowledge. The tenant is only a path segment on the
// same host, so changing it needs nothing more.
func checkSecretHosts(c *store.Connection, o *azuread.Options) error {
	cur, err := storedOptions(c)
	if err != nil {
		return err
	}
	// Connections stored before authority_host and graph_host existed
	// use the defaults.
	cur.Defaults()
	for _, h := range []struct{ prop, from, to string }{
		{"authority_host", cur.AuthorityHost, o.AuthorityHost},
		{"graph_host", cur.GraphHost, o.GraphHost},
	} {
		if h.from != h.to {
			return BadBody(fmt.Sprintf("Payload validation error: 'options.%s changed: the stored client secret is never sent to a new host; send options.client_secret again in the same request (or \"\" to remove it)' on property options.client_secret.", h.prop))
		}
	}
	return nil
}

// storedOptions parses a stored connection's options.
func storedOptions(c *store.Connection) (*azuread.Options, error) {
	o, err := azuread.ParseOptions(c.Options)
	if err != nil {
		return nil, internalError(fmt.Errorf("connection %s: %w", c.ID, err))
	}
	return o, nil
}

func (a *API) deleteConnection(w http.ResponseWriter, r *http.Request) {
	err := a.store.DeleteConnection(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		// Auth0 answers a repeated delete without an error.
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err != nil {
		WriteError(w, internalError(err))
		return
	}
	WriteJSON(w, http.StatusAccepted, map[string]string{"deleted_at": a.now().UTC().Format("2006-01-02T15:04:05.000Z")})
}

func (a *API) getConnectionClients(w http.ResponseWriter, r *http.Request) {
	c, err := a.store.GetConnection(r.Context(), r.PathValue("id"))
	if err != nil {
		WriteError(w, connectionStoreError(err))
		return
	}
	cp, _, err := parseCheckpoint(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	if cp.take == 0 {
		cp.take = defaultPerPage
	}
	ids := c.EnabledClients[min(cp.offset, len(c.EnabledClients)):]
	ids = ids[:min(cp.take, len(ids))]
	clients := make([]map[string]string, 0, len(ids))
	for _, id := range ids {
		clients = append(clients, map[string]string{"client_id": id})
	}
	body := map[string]any{"clients": clients}
	if cp.offset+len(ids) < len(c.EnabledClients) {
		body["next"] = cp.next(len(ids))
	}
	WriteJSON(w, http.StatusOK, body)
}

func (a *API) patchConnectionClients(w http.ResponseWriter, r *http.Request) {
	raw, err := readJSONBody(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	var items []any
	if err := decodeJSON(raw, &items); err != nil {
		WriteError(w, BadBody("Payload validation error: 'Expected type array' on property body."))
		return
	}
	if len(items) > maxEnabledClientsPatch {
		WriteError(w, BadBody(fmt.Sprintf("Payload validation error: 'Array is too long (%d), maximum %d'.", len(items), maxEnabledClientsPatch)))
		return
	}
	status := make(map[string]bool, len(items))
	var enable []string
	for i, it := range items {
		prop := fmt.Sprintf("[%d]", i)
		m, ok := it.(map[string]any)
		if !ok {
			WriteError(w, propertyError(prop, "object", it))
			return
		}
		for k := range m {
			if k != "client_id" && k != "status" {
				WriteError(w, additionalPropertiesOn(prop, []string{k}))
				return
			}
		}
		id, ok := m["client_id"].(string)
		if !ok {
			WriteError(w, propertyError(prop+".client_id", "string", m["client_id"]))
			return
		}
		on, ok := m["status"].(bool)
		if !ok {
			WriteError(w, propertyError(prop+".status", "boolean", m["status"]))
			return
		}
		status[id] = on
		if on {
			enable = append(enable, id)
		}
	}
	ctx := r.Context()
	c, err := a.store.GetConnection(ctx, r.PathValue("id"))
	if err != nil {
		WriteError(w, connectionStoreError(err))
		return
	}
	o, err := storedOptions(c)
	if err != nil {
		WriteError(w, err)
		return
	}
	if err := a.checkEnabledClients(a.clientLookup(ctx), o, enable, "client_id"); err != nil {
		WriteError(w, err)
		return
	}
	for id, on := range status {
		if on {
			continue
		}
		// Disabling an unknown client is refused too, as the store does.
		if _, err := a.store.GetClient(ctx, id); err != nil {
			WriteError(w, a.unknownClient(err, "client_id", id))
			return
		}
	}
	if err := a.store.SetConnectionClients(ctx, c.ID, status); err != nil {
		WriteError(w, a.enabledClientsRace(ctx, c.ID, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) unknownClient(err error, prop, id string) error {
	if errors.Is(err, store.ErrNotFound) {
		return BadBody(fmt.Sprintf("Payload validation error: 'The client %q does not exist' on property %s.", id, prop))
	}
	return internalError(err)
}

// clientLookup reads clients from the store.
func (a *API) clientLookup(ctx context.Context) store.ClientLookup {
	return func(id string) (*store.Client, error) { return a.store.GetClient(ctx, id) }
}

// checkEnabledClients checks that every client exists and, when one allows
// a password grant, that the options can serve it.
func (a *API) checkEnabledClients(client store.ClientLookup, o *azuread.Options, ids []string, prop string) error {
	for i, id := range ids {
		c, err := client(id)
		if err != nil {
			p := prop
			if prop == "enabled_clients" {
				p = fmt.Sprintf("%s[%d]", prop, i)
			}
			return a.unknownClient(err, p, id)
		}
		if allowsPassword(c) {
			if err := o.CheckPasswordGrant(); err != nil {
				return optionsError(err)
			}
		}
	}
	return nil
}

// checkConnectionBody checks a create body (cur nil) or an update body
// against the stored connection cur.
func checkConnectionBody(body map[string]any, cur *store.Connection) (*connectionInput, error) {
	var unknown []string
	for k := range body {
		if connectionFieldTypes[k] == "" {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, additionalProperties(unknown)
	}
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if want := connectionFieldTypes[k]; jsonType(body[k]) != want {
			return nil, propertyError(k, want, body[k])
		}
	}
	in := &connectionInput{body: body, keepSecret: cur != nil}
	name, _ := body["name"].(string)
	strategy, _ := body["strategy"].(string)
	if cur == nil {
		switch {
		case len(name) > maxConnectionName:
			return nil, BadBody(fmt.Sprintf("Payload validation error: 'String is too long (%d chars), maximum %d' on property name.", len(name), maxConnectionName))
		case !connectionNameRE.MatchString(name):
			return nil, BadBody("Payload validation error: 'String does not match pattern ^[a-zA-Z0-9](-[a-zA-Z0-9]|[a-zA-Z0-9])*$' on property name (The name of the connection. Must start and end with an alphanumeric character and can only contain alphanumeric characters and '-'. Max length 128).")
		case strategy != azuread.Strategy:
			return nil, BadBody(fmt.Sprintf("Payload validation error: 'Strategy %q is not supported by Gatehouse (supported: %s)' on property strategy.", strategy, azuread.Strategy))
		}
	} else {
		// Auth0 refuses name and strategy in a PATCH; sending back the
		// unchanged values of a GET is let through.
		if _, ok := body["name"]; ok && name != cur.Name {
			return nil, BadBody("Payload validation error: 'The name of a connection cannot be changed' on property name.")
		}
		if _, ok := body["strategy"]; ok && strategy != cur.Strategy {
			return nil, BadBody("Payload validation error: 'The strategy of a connection cannot be changed' on property strategy.")
		}
	}
	if s, ok := body["display_name"].(string); ok && len([]rune(s)) > maxConnectionName {
		return nil, BadBody(fmt.Sprintf("Payload validation error: 'String is too long, maximum %d' on property display_name.", maxConnectionName))
	}
	if v, ok := body["options"]; ok || cur == nil {
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, internalError(err)
		}
		o, err := azuread.ParseOptions(raw)
		if err != nil {
			return nil, optionsError(err)
		}
		o.Defaults()
		if err := o.Validate(); err != nil {
			return nil, optionsError(err)
		}
		if err := checkTenantAllowList(o); err != nil {
			return nil, err
		}
		if err := checkLockoutPolicy(o); err != nil {
			return nil, err
		}
		in.options = o
		switch {
		case !ok || o.ClientSecret == "" && !hasKey(v, "client_secret"):
			// Omitted: a create has no secret, an update keeps it.
		case o.ClientSecret == SecretMarker && cur != nil:
		case o.ClientSecret == "":
			in.keepSecret, in.removeSecret = false, cur != nil
		default:
			in.keepSecret, in.secret = false, o.ClientSecret
		}
		// The secret lives in SecretEnc only.
		o.ClientSecret = ""
	}
	return in, nil
}

// checkTenantAllowList refuses at save time what the waad connector
// refuses at login: the common endpoint admits users of every Entra
// tenant in the world, so Gatehouse wants allowed_tenants, or
// allow_any_tenant true to say that is meant.
func checkTenantAllowList(o *azuread.Options) error {
	var anyTenant bool
	if raw, ok := o.Extra[azuread.AllowAnyTenantOption]; ok {
		if err := json.Unmarshal(raw, &anyTenant); err != nil {
			return BadBody(fmt.Sprintf("Payload validation error: 'Expected type boolean' on property options.%s.", azuread.AllowAnyTenantOption))
		}
	}
	if o.UseCommonEndpoint && len(o.AllowedTenants) == 0 && !anyTenant {
		return BadBody(fmt.Sprintf("Payload validation error: 'Required when useCommonEndpoint is true: the tenant ids whose users may sign in (or set options.%s to true to accept every tenant)' on property options.allowed_tenants.", azuread.AllowAnyTenantOption))
	}
	return nil
}

// checkLockoutPolicy refuses lockout options (Gatehouse's, kept in
// Extra) that the login path could not use: it would fall back to the
// defaults without a word.
func checkLockoutPolicy(o *azuread.Options) error {
	err := attack.CheckUpstreamPolicy(o.Extra)
	var oe *attack.OptionError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &oe):
		return BadBody(fmt.Sprintf("Payload validation error: '%s' on property options.%s.", oe.Reason, oe.Option))
	}
	return internalError(err)
}

func hasKey(v any, k string) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	val, ok := m[k]
	return ok && val != nil
}

// applyConnection writes the checked body into c.
func applyConnection(c *store.Connection, in *connectionInput) error {
	b := in.body
	if v, ok := b["display_name"].(string); ok {
		c.DisplayName = v
	}
	if v, ok := b["is_domain_connection"].(bool); ok {
		c.IsDomainConnection = v
	}
	if v, ok := b["show_as_button"].(bool); ok {
		c.ShowAsButton = v
	}
	if v, ok := b["realms"]; ok {
		realms, err := stringArray("realms", v)
		if err != nil {
			return err
		}
		for i, r := range realms {
			if strings.TrimSpace(r) == "" {
				return BadBody(fmt.Sprintf("Payload validation error: 'String is too short (0 chars), minimum 1' on property realms[%d].", i))
			}
		}
		c.Realms = realms
	}
	if v, ok := b["metadata"].(map[string]any); ok {
		md, err := connectionMetadata(v)
		if err != nil {
			return err
		}
		c.Metadata = md
	}
	if v, ok := b["enabled_clients"]; ok {
		ids, err := stringArray("enabled_clients", v)
		if err != nil {
			return err
		}
		// Duplicates go, the order stays until checkEnabledClients has named
		// any unknown client by its index in the body.
		seen := map[string]bool{}
		c.EnabledClients = slices.DeleteFunc(ids, func(id string) bool {
			dup := seen[id]
			seen[id] = true
			return dup
		})
	}
	if in.options != nil {
		raw, err := json.Marshal(in.options)
		if err != nil {
			return internalError(err)
		}
		c.Options = raw
	}
	return nil
}

// connectionMetadata applies Auth0's limits: at most 10 string properties
// of at most 255 characters.
func connectionMetadata(m map[string]any) (map[string]string, error) {
	if len(m) > 10 {
		return nil, BadBody("Payload validation error: 'Too many properties (maximum 10)' on property metadata.")
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		s, ok := v.(string)
		if !ok {
			return nil, propertyError("metadata."+k, "string", v)
		}
		if len(s) > 255 {
			return nil, BadBody(fmt.Sprintf("Payload validation error: 'String is too long (maximum 255 characters)' on property metadata.%s.", k))
		}
		out[k] = s
	}
	return out, nil
}

// optionsError words an options problem as Auth0's payload validation
// error on the options property at fault.
func optionsError(err error) error {
	var oe *azuread.OptionError
	if !errors.As(err, &oe) {
		return internalError(err)
	}
	prop := "options"
	if oe.Property != "" {
		prop += "." + oe.Property
	}
	return BadBody(fmt.Sprintf("Payload validation error: '%s' on property %s.", oe.Reason, prop))
}

// connectionJSON is the Auth0 connection object. The stored options never
// hold the client secret; SecretMarker says one is set.
func connectionJSON(c *store.Connection) map[string]any {
	opts := map[string]json.RawMessage{}
	if len(c.Options) > 0 {
		_ = json.Unmarshal(c.Options, &opts)
	}
	if len(c.SecretEnc) > 0 {
		opts["client_secret"] = json.RawMessage(strconv.Quote(SecretMarker))
	}
	obj := map[string]any{
		"id":                   c.ID,
		"name":                 c.Name,
		"display_name":         c.DisplayName,
		"strategy":             c.Strategy,
		"options":              opts,
		"is_domain_connection": c.IsDomainConnection,
		"show_as_button":       c.ShowAsButton,
		"realms":               nonNil(c.Realms),
		"enabled_clients":      nonNil(c.EnabledClients),
	}
	if len(c.Metadata) > 0 {
		obj["metadata"] = c.Metadata
	}
	return obj
}
