package azuread

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse/internal/connection"
	"github.com/gatehouse/gatehouse/internal/entra"
	"github.com/gatehouse/gatehouse/internal/store"
)

// AllowAnyTenantOption (a Gatehouse option) lets a common-endpoint
// connection without allowed_tenants accept users of every Entra tenant.
// It must be explicit: without it such a connection refuses to log anyone
// in, because any organisation in the world can create an Entra tenant and
// its users would all pass.
const AllowAnyTenantOption = "allow_any_tenant"

// settings is what one login needs, resolved from the connection's options.
type settings struct {
	opts               *Options
	endpoint           entra.Endpoint
	clientID           string
	clientSecret       string
	resource           string
	scopes             []string
	allowedTenants     []string
	allowAnyTenant     bool
	graphHost          string
	useridAttribute    string
	trustEmailVerified bool
	syncMode           string
	extProfile         bool
	extGroups          bool
	nestedGroups       bool
	maxGroups          int
	keepAccessToken    bool
	keepRefreshToken   bool
	legacyGraph        bool
}

// settings parses and checks the connection's options and opens its secret.
func (c *Connector) settings(conn *store.Connection) (*settings, error) {
	if conn.Strategy != Strategy {
		return nil, connection.ConfigError("azuread: connection %s has strategy %q", conn.Name, conn.Strategy)
	}
	o, err := ParseOptions(conn.Options)
	if err != nil {
		return nil, &connection.Error{Kind: connection.KindMisconfigured, Err: err}
	}
	o.Defaults()
	if err := o.Validate(); err != nil {
		return nil, &connection.Error{Kind: connection.KindMisconfigured, Err: err}
	}
	// The Management API refuses such hosts; this catches a database
	// edited directly and a GATEHOUSE_UPSTREAM_HOSTS narrowed since.
	if err := c.hosts.Check(o); err != nil {
		return nil, &connection.Error{Kind: connection.KindMisconfigured, Err: err,
			Hint: "set options.authority_host and options.graph_host to Microsoft's hosts, or have the operator allow the host in " + UpstreamHostsSetting}
	}
	// Check accepts a host in any spelling of its origin (upper case, the
	// default port); Entra knows Graph's resource, and writes its links,
	// in the canonical one. Check refused whatever BaseURL cannot read.
	authority, _ := BaseURL(o.AuthorityHost)
	graphHost, _ := BaseURL(o.GraphHost)
	if err := o.CheckPasswordGrant(); err != nil {
		return nil, &connection.Error{Kind: connection.KindMisconfigured, Err: err,
			Hint: "set options.app_id to the Application ID URI of the Web API, or use identity_api " + IdentityAPIV2}
	}
	s := &settings{
		opts: o,
		endpoint: entra.Endpoint{
			Authority: authority,
			Tenant:    firstNonEmpty(o.TenantID, o.TenantDomain),
			Common:    o.UseCommonEndpoint,
			Version:   entra.V2,
		},
		clientID:           o.ClientID,
		allowedTenants:     o.AllowedTenants,
		graphHost:          graphHost,
		useridAttribute:    o.UserIDAttribute(),
		trustEmailVerified: o.ShouldTrustEmailVerifiedConnection == TrustAlways,
		syncMode:           o.SyncMode(),
		extProfile:         o.ExtProfile,
		extGroups:          o.ExtGroups || o.ExtNestedGroups,
		nestedGroups:       o.ExtNestedGroups,
		maxGroups:          o.GroupsLimit(),
		keepAccessToken:    o.Ext["ext_access_token"],
		keepRefreshToken:   o.Ext["ext_refresh_token"],
		legacyGraph:        strings.EqualFold(strings.TrimRight(o.AppID, "/"), AzureADGraph),
	}
	if raw, ok := o.Extra[AllowAnyTenantOption]; ok {
		if err := json.Unmarshal(raw, &s.allowAnyTenant); err != nil {
			return nil, connection.ConfigError("azuread: options.%s must be a boolean", AllowAnyTenantOption)
		}
	}
	if o.UseCommonEndpoint && len(o.AllowedTenants) == 0 && !s.allowAnyTenant {
		return nil, &connection.Error{Kind: connection.KindMisconfigured,
			Err:  fmt.Errorf("azuread: connection %s uses the common endpoint without allowed_tenants", conn.Name),
			Hint: "set options.allowed_tenants to the tenant ids whose users may sign in, or set options." + AllowAnyTenantOption + " to true to accept users of every Entra tenant in the world"}
	}
	if o.IdentityAPI == IdentityAPIV1 {
		s.endpoint.Version = entra.V1
		s.resource = o.AppID
		if s.legacyGraph {
			// The retired Azure AD Graph issues no usable token any more;
			// ask for Microsoft Graph itself, which the seed's native app
			// is already consented for.
			s.resource = s.graphResource()
		}
	} else {
		s.scopes = v2Scopes(o, s)
	}
	if len(conn.SecretEnc) > 0 {
		secret, err := c.secrets.Open(conn.SecretEnc, store.ConnectionSecretAAD(conn.ID))
		if err != nil {
			return nil, connection.ConfigError("azuread: open the client secret of connection %s: %w", conn.Name, err)
		}
		s.clientSecret = string(secret)
	}
	return s, nil
}

// v2Scopes asks for the resource the connection names: Graph permissions
// when the profile needs Graph, or the App ID URI's .default otherwise.
// Entra issues an access token for one resource per request.
func v2Scopes(o *Options, s *settings) []string {
	if s.wantGraph() || o.AppID == "" {
		graph := s.graphResource()
		scopes := []string{graph + "/User.Read"}
		if s.extGroups {
			scopes = append(scopes, graph+"/Directory.Read.All")
		}
		for _, sc := range o.Scope {
			if sc != "" {
				scopes = append(scopes, qualify(graph, sc))
			}
		}
		return scopes
	}
	return []string{strings.TrimRight(o.AppID, "/") + "/.default"}
}

// qualify prefixes a bare Graph permission (User.Read) with the Graph
// resource, which is what Entra expects for another cloud's Graph.
func qualify(graph, scope string) string {
	if strings.Contains(scope, "://") || strings.Contains(scope, "/") {
		return scope
	}
	switch scope {
	case "openid", "profile", "email", "offline_access":
		return scope
	}
	return graph + "/" + scope
}

func (s *settings) wantGraph() bool { return s.extProfile || s.extGroups }

// graphResource is the Microsoft Graph resource URI. The graph_host of a
// national cloud is its resource; a local emulator's host is not a
// resource Entra knows, so the global one stands in.
func (s *settings) graphResource() string {
	h := strings.TrimRight(s.graphHost, "/")
	if strings.HasPrefix(h, "https://") {
		return h
	}
	return entra.GlobalGraph
}

// ext reports whether the attribute behind ext_<attr> is kept.
func (s *settings) ext(attr string) bool { return s.opts.Keeps("ext_" + attr) }
