package entra

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Well-known first-party resources. Their appIds are fixed across all tenants
// (reference §5.1, §5.2), so the emulator provides them without the directory
// file having to declare them.
const (
	GraphAppID        = "00000003-0000-0000-c000-000000000000"
	GraphResource     = "https://graph.microsoft.com"
	AADGraphAppID     = "00000002-0000-0000-c000-000000000000"
	AADGraphResource  = "https://graph.windows.net"
	cloudInstanceName = "microsoftonline.com"
)

// UserState is the emulator-only sign-in condition of a user; each state
// makes a password sign-in fail the way Entra fails it (see docs/entra-emulator.md).
type UserState string

// User states understood by the emulator.
const (
	StateActive                  UserState = ""
	StateLocked                  UserState = "locked"                   // AADSTS50053
	StatePasswordExpired         UserState = "passwordExpired"          // AADSTS50055
	StateMFARequired             UserState = "mfaRequired"              // AADSTS50076
	StateMFARegistrationRequired UserState = "mfaRegistrationRequired"  // AADSTS50079
	StateConditionalAccess       UserState = "conditionalAccessBlocked" // AADSTS53003
	StateFederated               UserState = "federated"                // AADSTS70002+50126 (no cloud password validation)
	StatePasswordless            UserState = "passwordless"             // AADSTS50056 (no password at all)
)

// LegacyGraphMode selects how the Azure AD Graph endpoints answer.
type LegacyGraphMode string

// Legacy Graph modes.
const (
	LegacyGraphRetired LegacyGraphMode = "retired"
	LegacyGraphServed  LegacyGraphMode = "served"
)

// Directory is the parsed directory file. Object property names follow
// Microsoft Graph; fields marked emulator-only have no Graph counterpart.
type Directory struct {
	// LegacyGraph is emulator-only: "retired" (default, Entra's behaviour
	// since 2025) or "served".
	LegacyGraph LegacyGraphMode `yaml:"legacyGraph"`
	// Faults is emulator-only: injected faults keyed by endpoint name.
	Faults  map[string]Fault `yaml:"faults"`
	Tenants []*Tenant        `yaml:"tenants"`
}

// Tenant is one Entra tenant and everything registered in it.
type Tenant struct {
	ID                     string            `yaml:"id"`
	DisplayName            string            `yaml:"displayName"`
	Domains                []Domain          `yaml:"domains"`
	Users                  []*User           `yaml:"users"`
	Groups                 []*Group          `yaml:"groups"`
	DirectoryRoles         []*DirectoryRole  `yaml:"directoryRoles"`
	AdministrativeUnits    []*AdminUnit      `yaml:"administrativeUnits"`
	Applications           []*Application    `yaml:"applications"`
	OAuth2PermissionGrants []PermissionGrant `yaml:"oauth2PermissionGrants"`
	// AllowCloudPasswordValidation is emulator-only shorthand for a Home
	// Realm Discovery policy with AllowCloudPasswordValidation=true: password
	// grants then work for federated users whose password hash is synced
	// (reference §1.1).
	AllowCloudPasswordValidation bool `yaml:"allowCloudPasswordValidation"`

	usersByUPN  map[string]*User
	usersByID   map[string]*User
	groupsByID  map[string]*Group
	appsByID    map[string]*Application
	appsByURI   map[string]*Application
	memberOf    map[string][]*Group // direct memberships of a user or group id
	rolesOf     map[string][]*DirectoryRole
	unitsOf     map[string][]*AdminUnit
	transitive  map[string][]*Group // transitive memberships of a user id
	defaultName string
}

// Domain is a Graph domain. AuthenticationType "Federated" marks it as
// federated to AD FS; the federation URIs feed user realm discovery.
type Domain struct {
	ID                  string `yaml:"id"`
	IsVerified          bool   `yaml:"isVerified"`
	IsDefault           bool   `yaml:"isDefault"`
	AuthenticationType  string `yaml:"authenticationType"`
	FederationBrandName string `yaml:"federationBrandName"`
	PassiveSignInURI    string `yaml:"passiveSignInUri"`
	ActiveSignInURI     string `yaml:"activeSignInUri"`
	MetadataExchangeURI string `yaml:"metadataExchangeUri"`
}

func (d Domain) federated() bool { return strings.EqualFold(d.AuthenticationType, "Federated") }

// User is a Graph user plus the emulator-only Password and State.
type User struct {
	ID                string   `yaml:"id"`
	UserPrincipalName string   `yaml:"userPrincipalName"`
	Mail              string   `yaml:"mail"`
	DisplayName       string   `yaml:"displayName"`
	GivenName         string   `yaml:"givenName"`
	Surname           string   `yaml:"surname"`
	JobTitle          string   `yaml:"jobTitle"`
	Department        string   `yaml:"department"`
	MobilePhone       string   `yaml:"mobilePhone"`
	OfficeLocation    string   `yaml:"officeLocation"`
	PreferredLanguage string   `yaml:"preferredLanguage"`
	BusinessPhones    []string `yaml:"businessPhones"`
	// AccountEnabled defaults to true when omitted.
	AccountEnabled *bool     `yaml:"accountEnabled"`
	Password       string    `yaml:"password"`
	State          UserState `yaml:"state"`
}

// Enabled reports the effective accountEnabled.
func (u *User) Enabled() bool { return u.AccountEnabled == nil || *u.AccountEnabled }

// Group is a Graph group. Members lists user ids, user principal names or
// group ids; a group id makes the group nested.
type Group struct {
	ID              string   `yaml:"id"`
	DisplayName     string   `yaml:"displayName"`
	Description     string   `yaml:"description"`
	Mail            string   `yaml:"mail"`
	MailNickname    string   `yaml:"mailNickname"`
	SecurityEnabled bool     `yaml:"securityEnabled"`
	MailEnabled     bool     `yaml:"mailEnabled"`
	GroupTypes      []string `yaml:"groupTypes"`
	Members         []string `yaml:"members"`
}

// DirectoryRole is an activated directory role (Graph directoryRole), e.g.
// Global Reader. Members lists user ids, user principal names or ids of
// role-assignable groups. Graph lists roles in a user's memberOf next to
// groups (user-list-memberof.md, reference §5.1).
type DirectoryRole struct {
	ID             string   `yaml:"id"`
	DisplayName    string   `yaml:"displayName"`
	Description    string   `yaml:"description"`
	RoleTemplateID string   `yaml:"roleTemplateId"`
	Members        []string `yaml:"members"`
}

// AdminUnit is a Graph administrativeUnit; Members lists user ids, user
// principal names or group ids. Graph lists it in a user's memberOf too.
type AdminUnit struct {
	ID          string   `yaml:"id"`
	DisplayName string   `yaml:"displayName"`
	Description string   `yaml:"description"`
	Members     []string `yaml:"members"`
}

// Application is a Graph application registration.
type Application struct {
	ID                     string                   `yaml:"id"`
	AppID                  string                   `yaml:"appId"`
	DisplayName            string                   `yaml:"displayName"`
	SignInAudience         string                   `yaml:"signInAudience"`
	IsFallbackPublicClient bool                     `yaml:"isFallbackPublicClient"`
	GroupMembershipClaims  string                   `yaml:"groupMembershipClaims"`
	IdentifierURIs         []string                 `yaml:"identifierUris"`
	PasswordCredentials    []PasswordCredential     `yaml:"passwordCredentials"`
	Web                    RedirectConfig           `yaml:"web"`
	PublicClient           RedirectConfig           `yaml:"publicClient"`
	API                    APIConfig                `yaml:"api"`
	RequiredResourceAccess []RequiredResourceAccess `yaml:"requiredResourceAccess"`
}

// PasswordCredential is a client secret. SecretText is what the client
// sends; Graph only returns it once, the emulator keeps it.
type PasswordCredential struct {
	KeyID         string    `yaml:"keyId"`
	DisplayName   string    `yaml:"displayName"`
	SecretText    string    `yaml:"secretText"`
	StartDateTime time.Time `yaml:"startDateTime"`
	EndDateTime   time.Time `yaml:"endDateTime"`
}

// RedirectConfig holds the redirect URIs of one platform.
type RedirectConfig struct {
	RedirectURIs []string `yaml:"redirectUris"`
}

// APIConfig is the "Expose an API" part of a registration.
type APIConfig struct {
	// RequestedAccessTokenVersion 2 makes access tokens for this API v2.0
	// tokens whichever endpoint issued them (reference §2.2).
	RequestedAccessTokenVersion int               `yaml:"requestedAccessTokenVersion"`
	OAuth2PermissionScopes      []PermissionScope `yaml:"oauth2PermissionScopes"`
}

// PermissionScope is a delegated permission an API exposes.
type PermissionScope struct {
	ID                      string `yaml:"id"`
	Value                   string `yaml:"value"`
	Type                    string `yaml:"type"`
	AdminConsentDisplayName string `yaml:"adminConsentDisplayName"`
	IsEnabled               *bool  `yaml:"isEnabled"`
}

// RequiredResourceAccess is a permission the app is configured to request.
type RequiredResourceAccess struct {
	ResourceAppID  string           `yaml:"resourceAppId"`
	ResourceAccess []ResourceAccess `yaml:"resourceAccess"`
}

// ResourceAccess is one entry of RequiredResourceAccess.
type ResourceAccess struct {
	ID   string `yaml:"id"`
	Type string `yaml:"type"`
}

// PermissionGrant is a Graph oauth2PermissionGrant (delegated consent).
// Unlike Graph, ClientID and ResourceID name applications by appId (or, for
// the resource, an identifier URI): the emulator has no separate service
// principal objects.
type PermissionGrant struct {
	ClientID    string `yaml:"clientId"`
	ConsentType string `yaml:"consentType"` // AllPrincipals or Principal
	PrincipalID string `yaml:"principalId"` // user id or UPN when ConsentType is Principal
	ResourceID  string `yaml:"resourceId"`
	Scope       string `yaml:"scope"`
}

// LoadDirectory reads and validates a directory file.
func LoadDirectory(path string) (*Directory, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read directory: %w", err)
	}
	d, err := ParseDirectory(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// ParseDirectory parses and validates a directory document and builds the
// lookup indexes the server needs, so requests never scan lists.
func ParseDirectory(b []byte) (*Directory, error) {
	var d Directory
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("parse directory: %w", err)
	}
	if err := d.index(); err != nil {
		return nil, err
	}
	return &d, nil
}

func (d *Directory) index() error {
	switch d.LegacyGraph {
	case "":
		d.LegacyGraph = LegacyGraphRetired
	case LegacyGraphRetired, LegacyGraphServed:
	default:
		return fmt.Errorf("legacyGraph: %q is neither %q nor %q", d.LegacyGraph, LegacyGraphServed, LegacyGraphRetired)
	}
	for name := range d.Faults {
		if !knownEndpoint(name) {
			return fmt.Errorf("faults: unknown endpoint %q", name)
		}
	}
	if len(d.Tenants) == 0 {
		return errors.New("directory has no tenants")
	}
	seen := map[string]bool{}
	for i, t := range d.Tenants {
		if !isGUID(t.ID) {
			return fmt.Errorf("tenants[%d]: id %q is not a GUID", i, t.ID)
		}
		for _, dom := range t.Domains {
			k := strings.ToLower(dom.ID)
			if seen[k] {
				return fmt.Errorf("tenants[%d]: domain %q is declared twice", i, dom.ID)
			}
			seen[k] = true
		}
		if err := t.index(); err != nil {
			return fmt.Errorf("tenant %s: %w", t.ID, err)
		}
	}
	return nil
}

func (t *Tenant) index() error {
	t.usersByUPN = map[string]*User{}
	t.usersByID = map[string]*User{}
	t.groupsByID = map[string]*Group{}
	t.appsByID = map[string]*Application{}
	t.appsByURI = map[string]*Application{}
	t.memberOf = map[string][]*Group{}
	t.transitive = map[string][]*Group{}
	for _, dom := range t.Domains {
		if dom.IsDefault || t.defaultName == "" {
			t.defaultName = dom.ID
		}
	}
	for i, u := range t.Users {
		if !isGUID(u.ID) || u.UserPrincipalName == "" {
			return fmt.Errorf("users[%d]: id must be a GUID and userPrincipalName set", i)
		}
		switch u.State {
		case StateActive, StateLocked, StatePasswordExpired, StateMFARequired, StateMFARegistrationRequired,
			StateConditionalAccess, StateFederated, StatePasswordless:
		default:
			return fmt.Errorf("user %s: unknown state %q", u.UserPrincipalName, u.State)
		}
		if _, ok := t.domain(domainOf(u.UserPrincipalName)); !ok {
			return fmt.Errorf("user %s: domain is not one of the tenant's domains", u.UserPrincipalName)
		}
		t.usersByUPN[strings.ToLower(u.UserPrincipalName)] = u
		t.usersByID[strings.ToLower(u.ID)] = u
	}
	for i, g := range t.Groups {
		if !isGUID(g.ID) {
			return fmt.Errorf("groups[%d]: id %q is not a GUID", i, g.ID)
		}
		t.groupsByID[strings.ToLower(g.ID)] = g
	}
	for _, g := range t.Groups {
		for _, m := range g.Members {
			id, ok := t.memberID(m)
			if !ok {
				return fmt.Errorf("group %s: member %q is neither a user nor a group of the tenant", g.DisplayName, m)
			}
			t.memberOf[id] = append(t.memberOf[id], g)
		}
	}
	for id := range t.usersByID {
		t.transitive[id] = t.closure(id)
	}
	var err error
	if t.rolesOf, err = membersIndex(t, "directoryRoles", "directory role", t.DirectoryRoles,
		func(r *DirectoryRole) (string, string, []string) { return r.ID, r.DisplayName, r.Members }); err != nil {
		return err
	}
	if t.unitsOf, err = membersIndex(t, "administrativeUnits", "administrative unit", t.AdministrativeUnits,
		func(a *AdminUnit) (string, string, []string) { return a.ID, a.DisplayName, a.Members }); err != nil {
		return err
	}
	for i, a := range t.Applications {
		if !isGUID(a.AppID) {
			return fmt.Errorf("applications[%d]: appId %q is not a GUID", i, a.AppID)
		}
		t.appsByID[strings.ToLower(a.AppID)] = a
		for _, u := range a.IdentifierURIs {
			t.appsByURI[strings.ToLower(strings.TrimSuffix(u, "/"))] = a
		}
	}
	for i, g := range t.OAuth2PermissionGrants {
		if t.appsByID[strings.ToLower(g.ClientID)] == nil {
			return fmt.Errorf("oauth2PermissionGrants[%d]: clientId %q is not an application of the tenant", i, g.ClientID)
		}
		if _, ok := t.resource(g.ResourceID); !ok {
			return fmt.Errorf("oauth2PermissionGrants[%d]: resourceId %q is not a known resource", i, g.ResourceID)
		}
		switch g.ConsentType {
		case "AllPrincipals":
		case "Principal":
			if t.user(g.PrincipalID) == nil && t.usersByID[strings.ToLower(g.PrincipalID)] == nil {
				return fmt.Errorf("oauth2PermissionGrants[%d]: principalId %q is not a user", i, g.PrincipalID)
			}
		default:
			return fmt.Errorf("oauth2PermissionGrants[%d]: consentType must be AllPrincipals or Principal", i)
		}
	}
	return nil
}

// closure walks nested groups breadth-first; the seen set makes membership
// cycles (which Entra forbids but a hand-written file may contain) harmless.
func (t *Tenant) closure(id string) []*Group {
	var out []*Group
	seen := map[*Group]bool{}
	queue := []string{id}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, g := range t.memberOf[cur] {
			if seen[g] {
				continue
			}
			seen[g] = true
			out = append(out, g)
			queue = append(queue, strings.ToLower(g.ID))
		}
	}
	return out
}

func (t *Tenant) memberID(m string) (string, bool) {
	k := strings.ToLower(m)
	if u := t.usersByUPN[k]; u != nil {
		return strings.ToLower(u.ID), true
	}
	if t.usersByID[k] != nil || t.groupsByID[k] != nil {
		return k, true
	}
	return "", false
}

func (t *Tenant) domain(name string) (Domain, bool) {
	for _, d := range t.Domains {
		if strings.EqualFold(d.ID, name) {
			return d, true
		}
	}
	return Domain{}, false
}

func (t *Tenant) user(upn string) *User { return t.usersByUPN[strings.ToLower(upn)] }

func (t *Tenant) app(appID string) *Application { return t.appsByID[strings.ToLower(appID)] }

// federated reports whether Entra would hand the user's password check to
// an on-premises IdP: either the user or the user's domain is federated.
func (t *Tenant) federated(u *User) bool {
	if u.State == StateFederated {
		return true
	}
	d, _ := t.domain(domainOf(u.UserPrincipalName))
	return d.federated()
}

// directMemberOf returns the groups a user or group is a direct member of.
func (t *Tenant) directMemberOf(id string) []*Group { return t.memberOf[strings.ToLower(id)] }

// transitiveMemberOf returns every group a user is in, nesting included.
func (t *Tenant) transitiveMemberOf(id string) []*Group { return t.transitive[strings.ToLower(id)] }

// rolesOfUser returns the directory roles a user holds: directly, and with
// transitive also through the (role-assignable) groups the user is in.
func (t *Tenant) rolesOfUser(id string, transitive bool) []*DirectoryRole {
	id = strings.ToLower(id)
	out := append([]*DirectoryRole(nil), t.rolesOf[id]...)
	if !transitive {
		return out
	}
	seen := map[*DirectoryRole]bool{}
	for _, r := range out {
		seen[r] = true
	}
	for _, g := range t.transitive[id] {
		for _, r := range t.rolesOf[strings.ToLower(g.ID)] {
			if !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	return out
}

// unitsOfUser returns the administrative units a user is a direct member of.
func (t *Tenant) unitsOfUser(id string) []*AdminUnit { return t.unitsOf[strings.ToLower(id)] }

// Resource is something a token can be issued for: a first-party API or an
// application of the tenant that exposes scopes.
type resource struct {
	appID   string
	uri     string // primary identifier URI
	scopes  map[string]bool
	version int // access token version
	app     *Application
}

var (
	graphResource = &resource{appID: GraphAppID, uri: GraphResource, version: 1, scopes: set(
		"User.Read", "User.ReadBasic.All", "User.Read.All", "Directory.Read.All", "Directory.AccessAsUser.All",
		"GroupMember.Read.All", "Group.Read.All", "openid", "profile", "email", "offline_access")}
	aadGraphResource = &resource{appID: AADGraphAppID, uri: AADGraphResource, version: 1, scopes: set(
		"User.Read", "User.ReadBasic.All", "User.Read.All", "Directory.Read.All", "Directory.AccessAsUser.All", "Group.Read.All")}
)

// resource resolves an appId or identifier URI; trailing slashes are
// ignored as Entra does for https://graph.microsoft.com/.
func (t *Tenant) resource(id string) (*resource, bool) {
	k := strings.ToLower(strings.TrimSuffix(id, "/"))
	switch k {
	case GraphAppID, GraphResource:
		return graphResource, true
	case AADGraphAppID, AADGraphResource:
		return aadGraphResource, true
	}
	a := t.appsByID[k]
	if a == nil {
		a = t.appsByURI[k]
	}
	if a == nil {
		return nil, false
	}
	r := &resource{appID: a.AppID, version: 1, scopes: map[string]bool{}, app: a}
	if len(a.IdentifierURIs) > 0 {
		r.uri = a.IdentifierURIs[0]
	}
	if a.API.RequestedAccessTokenVersion == 2 {
		r.version = 2
	}
	for _, s := range a.API.OAuth2PermissionScopes {
		if s.IsEnabled == nil || *s.IsEnabled {
			r.scopes[s.Value] = true
		}
	}
	return r, true
}

// canonical returns the scope as the resource spells it: Entra matches
// scope names case-insensitively (v2-oauth-ropc.md's sample requests
// "user.read").
func (r *resource) canonical(scope string) (string, bool) {
	if r.scopes[scope] {
		return scope, true
	}
	for sc := range r.scopes {
		if strings.EqualFold(sc, scope) {
			return sc, true
		}
	}
	return "", false
}

// consented returns the scopes the user (or an admin for everyone) granted
// the client on the resource.
func (t *Tenant) consented(client *Application, r *resource, u *User) map[string]bool {
	out := map[string]bool{}
	for _, g := range t.OAuth2PermissionGrants {
		if !strings.EqualFold(g.ClientID, client.AppID) {
			continue
		}
		gr, _ := t.resource(g.ResourceID)
		if gr == nil || gr.appID != r.appID {
			continue
		}
		if g.ConsentType == "Principal" {
			if u == nil || !(strings.EqualFold(g.PrincipalID, u.ID) || strings.EqualFold(g.PrincipalID, u.UserPrincipalName)) {
				continue
			}
		}
		for _, s := range strings.Fields(g.Scope) {
			if c, ok := r.canonical(s); ok {
				s = c
			}
			out[s] = true
		}
	}
	return out
}

func set(v ...string) map[string]bool {
	m := make(map[string]bool, len(v))
	for _, s := range v {
		m[s] = true
	}
	return m
}

func domainOf(upn string) string {
	if i := strings.LastIndexByte(upn, '@'); i >= 0 {
		return upn[i+1:]
	}
	return ""
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}

// membersIndex maps each member (a user or group of t) to the objects of
// list that name it; field and kind word the errors.
func membersIndex[T any](t *Tenant, field, kind string, list []T, parts func(T) (id, name string, members []string)) (map[string][]T, error) {
	index := map[string][]T{}
	for i, o := range list {
		id, name, members := parts(o)
		if !isGUID(id) {
			return nil, fmt.Errorf("%s[%d]: id %q is not a GUID", field, i, id)
		}
		for _, m := range members {
			mid, ok := t.memberID(m)
			if !ok {
				return nil, fmt.Errorf("%s %s: member %q is neither a user nor a group of the tenant", kind, name, m)
			}
			index[mid] = append(index[mid], o)
		}
	}
	return index, nil
}
