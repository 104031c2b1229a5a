package azuread

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/connection"
)

// Values of identity_api.
const (
	IdentityAPIV2 = "microsoft-identity-platform-v2.0"
	IdentityAPIV1 = "azure-active-directory-v1.0"
)

// Values of waad_protocol.
const (
	ProtocolOIDC  = "openid-connect"
	ProtocolWSFed = "ws-federation"
)

// Values of should_trust_email_verified_connection.
const (
	TrustNever  = "never_set_emails_as_verified"
	TrustAlways = "always_set_emails_as_verified"
)

// Values of userid_attribute.
const (
	UserIDOID = "oid"
	UserIDSub = "sub"
)

// Defaults of the Gatehouse options authority_host and graph_host. The
// national clouds are https://login.microsoftonline.us with
// https://graph.microsoft.us (US Government) and
// https://login.chinacloudapi.cn with https://microsoftgraph.chinacloudapi.cn
// (China, operated by 21Vianet).
const (
	DefaultAuthorityHost = "https://login.microsoftonline.com"
	DefaultGraphHost     = "https://graph.microsoft.com"
)

// AzureADGraph is the retired Azure AD Graph API; the seed's App ID URI
// for group memberships points at it.
const AzureADGraph = "https://graph.windows.net"

// Options are the options of a "waad" (Microsoft Azure AD) connection, as
// Auth0's Management API names them (reference §2.3), plus the Gatehouse
// additions AuthorityHost, GraphHost and AllowedTenants (and the
// allow_any_tenant option, AllowAnyTenantOption).
//
// Life cycle: ParseOptions reads the options JSON and checks each
// property's type; Defaults fills what Auth0's server fills; Validate
// checks values. The Management API stores the result of MarshalJSON,
// which never contains the client secret, so a connection read from the
// store parses into Options with ClientSecret empty: the caller opens
// store.Connection.SecretEnc (additional data store.ConnectionSecretAAD)
// and sets ClientSecret itself.
//
// After Defaults, IdentityAPI, WaadProtocol, ShouldTrustEmailVerifiedConnection,
// AuthorityHost and GraphHost are never empty; AuthorityHost and GraphHost
// have no trailing slash.
type Options struct {
	// ClientID is the Azure app (client) ID of the Native app registration.
	ClientID string `json:"client_id"`
	// ClientSecret is write-only: read from a request, never marshalled.
	ClientSecret string `json:"-"`
	// TenantDomain is the primary domain, e.g. contoso.onmicrosoft.com.
	TenantDomain  string   `json:"tenant_domain"`
	Domain        string   `json:"domain"`
	DomainAliases []string `json:"domain_aliases"`
	// TenantID is the directory's GUID, when known.
	TenantID string `json:"tenantId"`
	// IdentityAPI is IdentityAPIV2 or IdentityAPIV1.
	IdentityAPI string `json:"identity_api"`
	// AppID is the App ID URI of the Web API, the v1 "resource" of the
	// password grant. Required with IdentityAPIV1 for password logins.
	AppID        string `json:"app_id"`
	AppDomain    string `json:"app_domain"`
	WaadProtocol string `json:"waad_protocol"`
	UseWsfed     bool   `json:"use_wsfed"`
	// UseCommonEndpoint accepts users of any directory (the "common"
	// authority); AllowedTenants narrows them.
	UseCommonEndpoint  bool `json:"useCommonEndpoint"`
	WaadCommonEndpoint bool `json:"waad_common_endpoint"`
	// UseridAttribute is "oid" or "sub"; empty means "oid".
	UseridAttribute string `json:"userid_attribute"`
	StrategyVersion int    `json:"strategy_version"`
	// APIEnableUsers is the dashboard's "Auth0 APIs" toggle.
	APIEnableUsers  bool `json:"api_enable_users"`
	BasicProfile    bool `json:"basic_profile"`
	ExtProfile      bool `json:"ext_profile"`
	ExtGroups       bool `json:"ext_groups"`
	ExtNestedGroups bool `json:"ext_nested_groups"`
	// MaxGroupsToRetrieve is a decimal number in a string, as in Auth0;
	// use GroupsLimit.
	MaxGroupsToRetrieve string   `json:"max_groups_to_retrieve"`
	Scope               []string `json:"scope"`
	// SetUserRootAttributes is one of connection.Sync*; use SyncMode.
	SetUserRootAttributes              string          `json:"set_user_root_attributes"`
	ShouldTrustEmailVerifiedConnection string          `json:"should_trust_email_verified_connection"`
	NonPersistentAttrs                 []string        `json:"non_persistent_attrs"`
	UpstreamParams                     json.RawMessage `json:"upstream_params"`
	IconURL                            string          `json:"icon_url"`
	Thumbprints                        []string        `json:"thumbprints"`
	CertRolloverNotification           string          `json:"cert_rollover_notification"`
	Granted                            bool            `json:"granted"`
	// AuthorityHost (Gatehouse) is the base URL of the Microsoft identity
	// platform: a national cloud or a local Entra emulator. http:// only
	// for loopback hosts; UpstreamHosts decides which hosts are allowed.
	AuthorityHost string `json:"authority_host"`
	// GraphHost (Gatehouse) is the base URL of Microsoft Graph, allowed
	// by UpstreamHosts likewise.
	GraphHost string `json:"graph_host"`
	// AllowedTenants (Gatehouse) are the tenant ids accepted when
	// UseCommonEndpoint is on. Empty is refused unless the
	// allow_any_tenant option is true: anyone can create an Entra tenant.
	AllowedTenants []string `json:"allowed_tenants"`
	// Ext holds the other ext_* flags Auth0 knows (ext_upn, ext_admin,
	// ext_access_token, ...): false means "do not store that attribute".
	// Use Keeps.
	Ext map[string]bool `json:"-"`
	// Extra holds options Gatehouse does not interpret, kept as given.
	Extra map[string]json.RawMessage `json:"-"`

	// given records which properties the document had, so that a false
	// or empty value the caller wrote survives a round trip.
	given map[string]bool
}

// extFlags are the ext_* flags of reference §2.3 other than the three
// Options has fields for.
var extFlags = []string{
	"ext_access_token", "ext_account_enabled", "ext_admin", "ext_agreed_terms", "ext_assigned_licenses",
	"ext_assigned_plans", "ext_azure_id", "ext_city", "ext_country", "ext_department", "ext_dir_sync_enabled",
	"ext_email", "ext_expires_in", "ext_family_name", "ext_fax", "ext_given_name", "ext_group_ids",
	"ext_is_suspended", "ext_job_title", "ext_last_sync", "ext_mobile", "ext_name", "ext_nickname", "ext_oid",
	"ext_phone", "ext_physical_delivery_office_name", "ext_postal_code", "ext_preferred_language",
	"ext_provisioned_plans", "ext_provisioning_errors", "ext_proxy_addresses", "ext_puid", "ext_refresh_token",
	"ext_roles", "ext_state", "ext_street", "ext_telephoneNumber", "ext_tenantid", "ext_upn",
	"ext_usage_location", "ext_user_id",
}

// OptionError is an option with a bad type or value. Property is the JSON
// key inside options; Reason never contains the client secret.
type OptionError struct {
	Property string
	Reason   string
}

func (e *OptionError) Error() string {
	return "azuread: options." + e.Property + ": " + e.Reason
}

func optErr(prop, format string, args ...any) *OptionError {
	return &OptionError{Property: prop, Reason: fmt.Sprintf(format, args...)}
}

// field is one JSON property of Options bound to its struct field.
type field struct {
	key   string
	index int
}

var fields = func() []field {
	t := reflect.TypeFor[Options]()
	var fs []field
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("json")
		if tag == "" || tag == "-" {
			continue
		}
		fs = append(fs, field{key: tag, index: i})
	}
	return fs
}()

func fieldFor(key string) (field, bool) {
	for _, f := range fields {
		if f.key == key {
			return f, true
		}
	}
	return field{}, false
}

// ParseOptions reads a waad options object. It checks the JSON type of
// every known property and keeps unknown ones in Extra. A null value counts
// as absent. An empty or null document gives empty Options.
func ParseOptions(raw json.RawMessage) (*Options, error) {
	o := &Options{given: map[string]bool{}}
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return o, nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, &OptionError{Reason: "Expected type object"}
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	v := reflect.ValueOf(o).Elem()
	for _, k := range keys {
		val := bytes.TrimSpace(doc[k])
		isNull := bytes.Equal(val, []byte("null"))
		switch {
		case k == "client_secret":
			if isNull {
				continue
			}
			var s string
			if err := json.Unmarshal(val, &s); err != nil {
				return nil, typeErr(k, "string", val)
			}
			o.ClientSecret = s
		case k == "upstream_params":
			// Auth0 allows an explicit null here.
			if !isNull && val[0] != '{' {
				return nil, typeErr(k, "object", val)
			}
			o.UpstreamParams = slices.Clone(val)
			o.given[k] = true
		case slices.Contains(extFlags, k):
			if isNull {
				continue
			}
			var b bool
			if err := json.Unmarshal(val, &b); err != nil {
				return nil, typeErr(k, "boolean", val)
			}
			if o.Ext == nil {
				o.Ext = map[string]bool{}
			}
			o.Ext[k] = b
		default:
			f, ok := fieldFor(k)
			if !ok {
				if o.Extra == nil {
					o.Extra = map[string]json.RawMessage{}
				}
				o.Extra[k] = slices.Clone(val)
				continue
			}
			if isNull {
				continue
			}
			if err := decodeStrict(k, val, v.Field(f.index)); err != nil {
				return nil, err
			}
			o.given[k] = true
		}
	}
	return o, nil
}

// decodeStrict decodes val into dst only if its JSON type is exactly the
// field's: a string field takes a string, an int field a whole number.
func decodeStrict(key string, val json.RawMessage, dst reflect.Value) error {
	switch dst.Kind() {
	case reflect.String:
		var s string
		if err := json.Unmarshal(val, &s); err != nil {
			return typeErr(key, "string", val)
		}
		dst.SetString(s)
	case reflect.Bool:
		var b bool
		if err := json.Unmarshal(val, &b); err != nil {
			return typeErr(key, "boolean", val)
		}
		dst.SetBool(b)
	case reflect.Int:
		n, err := strconv.Atoi(string(val))
		if err != nil {
			if jsonTypeOf(val) == "number" {
				return optErr(key, "Expected type integer but found type number")
			}
			return typeErr(key, "integer", val)
		}
		dst.SetInt(int64(n))
	case reflect.Slice:
		var items []json.RawMessage
		if err := json.Unmarshal(val, &items); err != nil {
			return typeErr(key, "array", val)
		}
		out := make([]string, 0, len(items))
		for i, it := range items {
			var s string
			if err := json.Unmarshal(it, &s); err != nil {
				return typeErr(fmt.Sprintf("%s[%d]", key, i), "string", it)
			}
			out = append(out, s)
		}
		dst.Set(reflect.ValueOf(out))
	}
	return nil
}

func typeErr(key, want string, val json.RawMessage) *OptionError {
	return optErr(key, "Expected type %s but found type %s", want, jsonTypeOf(val))
}

func jsonTypeOf(val json.RawMessage) string {
	val = bytes.TrimSpace(val)
	if len(val) == 0 {
		return "unknown"
	}
	switch val[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// MarshalJSON writes the options document: every property the parsed
// document had or that has a non-zero value, the ext_* flags, and Extra.
// ClientSecret is never written. Keys come out sorted.
func (o *Options) MarshalJSON() ([]byte, error) {
	out := make(map[string]any, len(fields)+len(o.Ext)+len(o.Extra))
	for k, v := range o.Extra {
		out[k] = v
	}
	for k, v := range o.Ext {
		out[k] = v
	}
	v := reflect.ValueOf(o).Elem()
	for _, f := range fields {
		fv := v.Field(f.index)
		if !o.given[f.key] && fv.IsZero() {
			continue
		}
		if raw, ok := fv.Interface().(json.RawMessage); ok && raw == nil {
			out[f.key] = nil
			continue
		}
		out[f.key] = fv.Interface()
	}
	return json.Marshal(out)
}

// Defaults fills what Auth0's server fills in a new waad connection
// (identity_api, waad_protocol, use_wsfed, useCommonEndpoint,
// waad_common_endpoint, should_trust_email_verified_connection), and
// Gatehouse's authority_host and graph_host.
func (o *Options) Defaults() {
	if o.given == nil {
		o.given = map[string]bool{}
	}
	if o.IdentityAPI == "" {
		o.IdentityAPI = IdentityAPIV2
	}
	if o.WaadProtocol == "" {
		o.WaadProtocol = ProtocolOIDC
	}
	if o.ShouldTrustEmailVerifiedConnection == "" {
		o.ShouldTrustEmailVerifiedConnection = TrustNever
	}
	// Auth0 echoes the common-endpoint flag under both names.
	o.WaadCommonEndpoint = o.UseCommonEndpoint
	for _, k := range []string{"use_wsfed", "useCommonEndpoint", "waad_common_endpoint"} {
		o.given[k] = true
	}
	if o.AuthorityHost == "" {
		o.AuthorityHost = DefaultAuthorityHost
	}
	if o.GraphHost == "" {
		o.GraphHost = DefaultGraphHost
	}
	o.AuthorityHost = strings.TrimRight(o.AuthorityHost, "/")
	o.GraphHost = strings.TrimRight(o.GraphHost, "/")
}

var (
	guidRE  = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	labelRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)
)

// isDomain reports whether s is a DNS name of at least two labels.
func isDomain(s string) bool {
	if len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if !labelRE.MatchString(l) {
			return false
		}
	}
	// A top-level label is never all digits; this refuses IP addresses.
	_, err := strconv.Atoi(labels[len(labels)-1])
	return err != nil
}

// Validate checks the values of the options; the first problem found is
// returned as an *OptionError naming the property.
func (o *Options) Validate() error {
	if strings.TrimSpace(o.ClientID) == "" {
		return optErr("client_id", "Missing required property: client_id")
	}
	if o.TenantDomain == "" {
		return optErr("tenant_domain", "Missing required property: tenant_domain")
	}
	if !isDomain(o.TenantDomain) {
		return optErr("tenant_domain", "%q is not a domain name (e.g. contoso.onmicrosoft.com)", o.TenantDomain)
	}
	if o.Domain != "" && !isDomain(o.Domain) {
		return optErr("domain", "%q is not a domain name", o.Domain)
	}
	for i, d := range o.DomainAliases {
		if !isDomain(d) {
			return optErr(fmt.Sprintf("domain_aliases[%d]", i), "%q is not a domain name", d)
		}
	}
	if o.TenantID != "" && !guidRE.MatchString(o.TenantID) {
		return optErr("tenantId", "%q is not a tenant id (a GUID)", o.TenantID)
	}
	if err := oneOf("identity_api", o.IdentityAPI, IdentityAPIV2, IdentityAPIV1); err != nil {
		return err
	}
	if o.AppID != "" {
		u, err := url.Parse(o.AppID)
		if err != nil {
			return optErr("app_id", "not an absolute URI (an Application ID URI such as api://<guid> or https://contoso.onmicrosoft.com/api)")
		}
		if u.Scheme == "" || (u.Host == "" && u.Opaque == "" && u.Path == "") {
			return optErr("app_id", "%q is not an absolute URI (an Application ID URI such as api://<guid> or https://contoso.onmicrosoft.com/api)", shownURL(u))
		}
	}
	if err := oneOf("waad_protocol", o.WaadProtocol, ProtocolOIDC, ProtocolWSFed); err != nil {
		return err
	}
	if o.WaadProtocol == ProtocolWSFed && o.IdentityAPI != IdentityAPIV1 {
		return optErr("waad_protocol", "ws-federation requires identity_api %s", IdentityAPIV1)
	}
	if err := oneOf("userid_attribute", o.UseridAttribute, UserIDOID, UserIDSub); err != nil {
		return err
	}
	if err := oneOf("should_trust_email_verified_connection", o.ShouldTrustEmailVerifiedConnection, TrustNever, TrustAlways); err != nil {
		return err
	}
	if err := oneOf("set_user_root_attributes", o.SetUserRootAttributes, connection.SyncOnEachLogin, connection.SyncOnFirstLogin, connection.SyncNeverOnLogin); err != nil {
		return err
	}
	if o.UseCommonEndpoint {
		if o.UseridAttribute == UserIDOID {
			return optErr("userid_attribute", "must be sub when useCommonEndpoint is true")
		}
		if o.ShouldTrustEmailVerifiedConnection != TrustNever {
			return optErr("should_trust_email_verified_connection", "must be %s when useCommonEndpoint is true", TrustNever)
		}
	}
	if o.MaxGroupsToRetrieve != "" {
		if n, err := strconv.Atoi(o.MaxGroupsToRetrieve); err != nil || n < 1 || strings.TrimSpace(o.MaxGroupsToRetrieve) != o.MaxGroupsToRetrieve {
			return optErr("max_groups_to_retrieve", "must be a positive whole number in a string, e.g. \"250\"")
		}
	}
	if o.IconURL != "" {
		u, err := url.Parse(o.IconURL)
		if err != nil {
			return optErr("icon_url", "not an absolute http(s) URL")
		}
		if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return optErr("icon_url", "%q is not an absolute http(s) URL", shownURL(u))
		}
	}
	if err := checkBaseURL("authority_host", o.AuthorityHost); err != nil {
		return err
	}
	if err := checkBaseURL("graph_host", o.GraphHost); err != nil {
		return err
	}
	if len(o.AllowedTenants) > 0 && !o.UseCommonEndpoint {
		return optErr("allowed_tenants", "applies only when useCommonEndpoint is true")
	}
	for i, t := range o.AllowedTenants {
		if !guidRE.MatchString(t) {
			return optErr(fmt.Sprintf("allowed_tenants[%d]", i), "%q is not a tenant id (a GUID)", t)
		}
	}
	return nil
}

// CheckPasswordGrant reports whether the options can serve the password
// grant: the v1 endpoint needs a resource, the App ID URI. The Management
// API calls it when a client that allows a password grant is enabled.
func (o *Options) CheckPasswordGrant() error {
	if o.IdentityAPI == IdentityAPIV1 && o.AppID == "" {
		return optErr("app_id", "Required when identity_api is %s and an enabled client allows the password grant", IdentityAPIV1)
	}
	return nil
}

// Warnings are problems that do not stop the connection from being saved
// but that an administrator should hear about: the Management API returns
// them in Warning headers and `gatehouse try` shows them.
func (o *Options) Warnings() []string {
	var w []string
	legacy := o.legacyGraph()
	if legacy {
		w = append(w, "options."+LegacyGraphWarning)
	}
	graphToken := legacy || o.AppID == "" || strings.HasPrefix(o.AppID, "https://graph.microsoft.") || strings.HasPrefix(o.AppID, "https://microsoftgraph.")
	if o.IdentityAPI == IdentityAPIV1 && (o.ExtProfile || o.ExtGroups || o.ExtNestedGroups) && !graphToken {
		w = append(w, "options.identity_api is "+IdentityAPIV1+" and options.app_id is not Microsoft Graph: the upstream token is for "+
			o.AppID+", so extended attributes and groups will not be loaded")
	}
	return w
}

func (o *Options) legacyGraph() bool {
	return strings.EqualFold(strings.TrimRight(o.AppID, "/"), AzureADGraph)
}

func oneOf(prop, v string, allowed ...string) error {
	if v == "" || slices.Contains(allowed, v) {
		return nil
	}
	return optErr(prop, "%q is not one of %s", v, strings.Join(allowed, ", "))
}

// checkBaseURL accepts an absolute https URL without query, fragment or
// credentials; http only for loopback hosts (a local emulator).
func checkBaseURL(prop, s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return optErr(prop, "not an absolute URL")
	}
	if u.Host == "" || u.Opaque != "" {
		return optErr(prop, "%q is not an absolute URL", shownURL(u))
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(s, "?") || strings.Contains(s, "#") {
		return optErr(prop, "%q must not have credentials, a query or a fragment", shownURL(u))
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return optErr(prop, "%q: http:// is allowed only for loopback hosts; use https://", shownURL(u))
		}
	default:
		return optErr(prop, "%q must be an https:// URL", shownURL(u))
	}
	return nil
}

func isLoopback(h string) bool {
	if h == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}

// Keeps reports whether the attribute behind an ext_* flag (e.g.
// "ext_upn") is stored: true unless the flag is set to false.
func (o *Options) Keeps(flag string) bool {
	v, ok := o.Ext[flag]
	return !ok || v
}

// SyncMode is set_user_root_attributes, on_each_login when unset.
func (o *Options) SyncMode() string {
	if o.SetUserRootAttributes == "" {
		return connection.SyncOnEachLogin
	}
	return o.SetUserRootAttributes
}

// GroupsLimit is max_groups_to_retrieve, or 0 when unset (no cap).
func (o *Options) GroupsLimit() int {
	n, _ := strconv.Atoi(o.MaxGroupsToRetrieve)
	return n
}

// UserIDAttribute is userid_attribute; when unset, "sub" with the common
// endpoint (which requires it) and "oid" otherwise.
func (o *Options) UserIDAttribute() string {
	switch {
	case o.UseridAttribute != "":
		return o.UseridAttribute
	case o.UseCommonEndpoint:
		return UserIDSub
	}
	return UserIDOID
}

// AuthorityTenant is the tenant segment of the authority URL: "common"
// with the common endpoint, else the tenant id when known, else the
// tenant domain.
func (o *Options) AuthorityTenant() string {
	switch {
	case o.UseCommonEndpoint:
		return "common"
	case o.TenantID != "":
		return o.TenantID
	}
	return o.TenantDomain
}
