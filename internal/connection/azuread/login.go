package azuread

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/connection"
	"github.com/gatehouse/gatehouse/internal/entra"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Strategy is the Auth0 strategy name of Microsoft Azure AD connections.
const Strategy = "waad"

// Opener opens the connection's sealed client secret.
type Opener interface {
	Open(ciphertext, aad []byte) ([]byte, error)
}

// Connector is the waad password connector. It is safe for concurrent use.
type Connector struct {
	entra   *entra.Client
	secrets Opener
	hosts   *UpstreamHosts
	logger  *slog.Logger
	// resolved caches each connection's parsed options and opened secret
	// by connection id: parsing, validating and unsealing them on every
	// login cost more than the rest of the broker's non-crypto work.
	resolved sync.Map // string → *resolvedConn
}

// resolvedConn is a connection's settings and what they were built from;
// a changed connection no longer matches and is resolved again.
type resolvedConn struct {
	name, strategy     string
	options, secretEnc []byte
	s                  *settings
}

func (r *resolvedConn) matches(c *store.Connection) bool {
	return r.name == c.Name && r.strategy == c.Strategy && bytes.Equal(r.options, c.Options) && bytes.Equal(r.secretEnc, c.SecretEnc)
}

// resolve returns the connection's settings, from the cache when the
// connection is unchanged.
func (c *Connector) resolve(conn *store.Connection) (*settings, error) {
	if v, ok := c.resolved.Load(conn.ID); ok && v.(*resolvedConn).matches(conn) {
		return v.(*resolvedConn).s, nil
	}
	s, err := c.settings(conn)
	if err != nil {
		c.resolved.Delete(conn.ID)
		return nil, err
	}
	c.resolved.Store(conn.ID, &resolvedConn{
		name: conn.Name, strategy: conn.Strategy,
		options: bytes.Clone(conn.Options), secretEnc: bytes.Clone(conn.SecretEnc), s: s,
	})
	return s, nil
}

var (
	_ connection.PasswordConnector = (*Connector)(nil)
	_ connection.RootSyncer        = (*Connector)(nil)
)

// SyncMode is the connection's set_user_root_attributes, from the cache
// Login uses; an unusable connection says nothing (Login will refuse it).
func (c *Connector) SyncMode(conn *store.Connection) string {
	s, err := c.resolve(conn)
	if err != nil {
		return ""
	}
	return s.syncMode
}

// NewConnector returns a Connector calling Entra through c, at the hosts
// that hosts allows (nil: Microsoft's only).
func NewConnector(c *entra.Client, secrets Opener, hosts *UpstreamHosts, logger *slog.Logger) *Connector {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Connector{entra: c, secrets: secrets, hosts: hosts, logger: logger}
}

// graphUnavailable explains why extended attributes and groups were not
// loaded with a token meant for another API (the seed's App ID URI case).
func graphUnavailable(aud string) string {
	return "upstream token audience is " + aud + ", not Microsoft Graph: extended attributes and groups were not loaded"
}

// LegacyGraphWarning is shown when a connection uses the retired Azure AD
// Graph as its v1 App ID URI, as the Auth0 guide suggested before 2025.
const LegacyGraphWarning = "app_id https://graph.windows.net is the Azure AD Graph, which Microsoft retired in 2025; " +
	"Gatehouse asks Entra for a Microsoft Graph token instead and loads extended attributes and groups from there (the native app needs the delegated " +
	"Microsoft Graph permissions User.Read and Directory.Read.All, admin-consented)"

// ROPCWarning is Microsoft's own warning about the password grant.
const ROPCWarning = "Microsoft recommends you do not use the ROPC (password) flow: it is incompatible with multifactor " +
	"authentication, and fails for accounts that require MFA, use passwordless methods, are personal Microsoft accounts, " +
	"or are federated without password hash sync"

// Login signs the user in at Entra with the password grant, validates the
// id_token and builds the waad profile. The password is used for one
// upstream POST and not kept.
func (c *Connector) Login(ctx context.Context, conn *store.Connection, username, password, ip string) (*connection.Identity, error) {
	tr := connection.TraceFrom(ctx)
	s, err := c.resolve(conn)
	if err != nil {
		tr.Record("configuration", time.Now(), err, nil)
		return nil, err
	}
	if s.legacyGraph {
		tr.Warn(LegacyGraphWarning)
	}

	start := time.Now()
	meta, err := c.entra.Metadata(ctx, s.endpoint)
	tr.Record("metadata", start, err, func() string { return metadataDetail(meta) })
	if err != nil {
		return nil, upstreamError(err)
	}

	req := entra.PasswordRequest{
		Endpoint:     s.endpoint,
		ClientID:     s.clientID,
		ClientSecret: s.clientSecret,
		Username:     username,
		Password:     password,
		Resource:     s.resource,
		Scopes:       s.scopes,
	}
	start = time.Now()
	tok, err := c.entra.PasswordToken(ctx, req)
	// The request value is the only copy of the password this package
	// made; clear it before anything else can hold on to it.
	req.Password = ""
	tr.Record("token", start, err, func() string { return tokenDetail(tok, s) })
	if err != nil {
		err = upstreamError(err)
		var ce *connection.Error
		if errors.As(err, &ce) && ce.Kind == connection.KindInvalidCredentials {
			c.addRealm(ctx, s, username, ce)
		}
		return nil, err
	}

	start = time.Now()
	// On the common endpoint the tenant is checked here rather than by
	// ValidateIDToken, so that a user of a foreign organisation gets their
	// own answer instead of "invalid token". Every other check stays there.
	claims, err := c.entra.ValidateIDToken(ctx, tok.IDToken, entra.ValidateOptions{
		Endpoint:          s.endpoint,
		ClientID:          s.clientID,
		AllowAnyTenant:    s.endpoint.Common,
		FromTokenEndpoint: true,
	})
	// allow_any_tenant stands in for an allow-list; it never widens one.
	if err == nil && s.endpoint.Common && (len(s.allowedTenants) > 0 || !s.allowAnyTenant) &&
		!slices.ContainsFunc(s.allowedTenants, func(t string) bool { return strings.EqualFold(t, claims.TenantID) }) {
		err = &connection.Error{Kind: connection.KindTenantNotAllowed, Err: fmt.Errorf("azuread: tenant %s is not in allowed_tenants", claims.TenantID),
			Hint: "add the tenant id to options.allowed_tenants if its users may sign in"}
	}
	tr.Record("id_token", start, err, func() string { return claimsDetail(claims) })
	if err != nil {
		return nil, upstreamError(err)
	}

	id := s.identity(claims)
	if s.wantGraph() {
		c.loadGraph(ctx, s, tok, id)
	}
	if _, ok := id.Profile["groups"]; !ok {
		id.Unset = append(id.Unset, "groups")
	}
	if s.keepAccessToken || s.keepRefreshToken {
		t := &connection.IdPTokens{}
		if s.keepAccessToken {
			t.AccessToken = tok.AccessToken
			t.ExpiresIn = int64(tok.ExpiresIn / time.Second)
		}
		if s.keepRefreshToken {
			t.RefreshToken = tok.RefreshToken
		}
		id.IdPTokens = t
	}
	return id, nil
}

// FederatedHint replaces AADSTS50126's hint for a user of a federated
// domain: Entra answers it alike whether it checked the password (HRD
// policy on) or could not (reference §1.1, §1.4).
const FederatedHint = "user realm discovery says the user's domain is federated: Entra checks a federated user's password only with " +
	"password hash sync and a Home Realm Discovery policy with AllowCloudPasswordValidation=true for the app; with both, the password was wrong; " +
	"without them, password sign-in cannot work for this user, who must use interactive sign-in"

// addRealm looks up the user realm of a refused login's domain, since
// Entra cannot tell a federated user whose password it may not check from
// a wrong password (AADSTS50126 either way). Every refusal of the class is
// looked up, unknown users (50034) included: the caller's answer then
// depends on the domain, which realm discovery tells anyone, and not on
// whether the account exists. A failed lookup leaves ce as it was. The
// lookup takes the user name only, never the password.
func (c *Connector) addRealm(ctx context.Context, s *settings, username string, ce *connection.Error) {
	start := time.Now()
	typ, err := c.entra.UserRealm(ctx, s.endpoint, username)
	connection.TraceFrom(ctx).Record("user realm", start, err, func() string { return "account type " + string(typ) })
	if err != nil {
		c.logger.DebugContext(ctx, "user realm lookup failed", "error", err)
		return
	}
	ce.Realm = string(typ)
	if ce.Realm != connection.RealmFederated {
		return
	}
	if ce.Code == "AADSTS50126" {
		ce.Hint = FederatedHint
	} else {
		ce.Hint += "; user realm discovery says the user's domain is federated"
	}
}

// graphBudget bounds all the Graph calls of one login together. Each call
// has the upstream timeout (30 s by default) of its own, so a hung Graph
// would hold a login for /me and then memberOf past the server's 60 s
// write timeout: the user, who authenticated, would get no answer.
var graphBudget = 10 * time.Second

// loadGraph adds extended attributes and groups from Microsoft Graph when
// the upstream token can call it; otherwise it records why not. Graph
// failures never fail the login: the user authenticated.
func (c *Connector) loadGraph(ctx context.Context, s *settings, tok *entra.TokenResponse, id *connection.Identity) {
	tr := connection.TraceFrom(ctx)
	ctx, cancel := context.WithTimeout(ctx, graphBudget)
	defer cancel()
	note := func(msg string) { id.Notes = append(id.Notes, msg) }
	aud, err := entra.AccessTokenAudience(tok.AccessToken)
	if err != nil {
		note("upstream access token is not a JWT (" + err.Error() + "): extended attributes and groups were not loaded")
		return
	}
	if !entra.IsGraphAudience(aud) {
		note(graphUnavailable(aud))
		return
	}
	graphToken := tok.AccessToken
	if s.extProfile {
		start := time.Now()
		me, err := c.entra.Me(ctx, s.graphHost, graphToken, graphSelect)
		tr.Record("graph /me", start, err, nil)
		if err != nil {
			note("Microsoft Graph /me failed (" + graphErrorCode(err) + "): extended attributes were not loaded")
		} else {
			s.mapGraphUser(me, id.Profile)
		}
	}
	if s.extGroups {
		start := time.Now()
		groups, err := c.entra.MemberOf(ctx, s.graphHost, graphToken, s.nestedGroups, s.maxGroups)
		rel := "memberOf"
		if s.nestedGroups {
			rel = "transitiveMemberOf"
		}
		tr.Record("graph /me/"+rel, start, err, func() string { return fmt.Sprintf("%d groups", len(groups)) })
		if err != nil {
			note("Microsoft Graph /me/" + rel + " failed (" + graphErrorCode(err) + "): groups were not loaded")
			return
		}
		// A token that may not read groups (User.Read alone) gets each
		// group with its id and a null displayName: Graph's "limited
		// information returned for inaccessible member objects"
		// (permissions-overview.md). An empty name is no group name.
		names := make([]string, 0, len(groups))
		for _, g := range groups {
			if g.DisplayName != "" {
				names = append(names, g.DisplayName)
			}
		}
		if nameless := len(groups) - len(names); nameless > 0 {
			note(fmt.Sprintf("Microsoft Graph /me/%s returned %d groups without their names because the upstream token may not read groups: "+
				"grant the app the delegated Microsoft Graph permission Directory.Read.All (GroupMember.Read.All is enough for the v1 API) with admin consent", rel, nameless))
		}
		if len(names) > 0 || len(groups) == 0 {
			id.Profile["groups"] = names
		}
	}
}

func graphErrorCode(err error) string {
	var ge *entra.GraphError
	if errors.As(err, &ge) {
		return fmt.Sprintf("HTTP %d %s", ge.StatusCode, ge.Code)
	}
	return err.Error()
}

func metadataDetail(m *entra.Metadata) string {
	if m == nil {
		return ""
	}
	return fmt.Sprintf("issuer %s, %d signing keys", m.Issuer, len(m.KeyIDs))
}

func tokenDetail(t *entra.TokenResponse, s *settings) string {
	if t == nil {
		return endpointString(s.endpoint)
	}
	aud, _ := entra.AccessTokenAudience(t.AccessToken)
	return fmt.Sprintf("%s: access token for %s, id_token %t, refresh token %t", endpointString(s.endpoint), aud, t.IDToken != "", t.RefreshToken != "")
}

func claimsDetail(c *entra.IDTokenClaims) string {
	if c == nil {
		return ""
	}
	return fmt.Sprintf("iss %s, tid %s, oid %s, ver %s", c.Issuer, c.TenantID, c.ObjectID, c.Version)
}

// upstreamError turns an entra failure into the connection error the token
// endpoint answers. Microsoft's description is dropped: it can contain the
// username.
func upstreamError(err error) error {
	var ce *connection.Error
	if errors.As(err, &ce) {
		return ce
	}
	var ee *entra.Error
	if errors.As(err, &ee) {
		ce := &connection.Error{
			Kind:          kindOf(ee.Class),
			TraceID:       ee.TraceID,
			CorrelationID: ee.CorrelationID,
			Hint:          ee.Hint(),
			RetryAfter:    ee.RetryAfter,
			Err:           ee,
		}
		if ee.AADSTS != 0 {
			ce.Code = fmt.Sprintf("AADSTS%d", ee.AADSTS)
		}
		return ce
	}
	if errors.Is(err, entra.ErrInvalidIDToken) {
		return &connection.Error{Kind: connection.KindInvalidUpstreamToken, Err: err,
			Hint: "Entra's id_token did not validate; check the tenant, the client id and the allowed tenants of the connection"}
	}
	return &connection.Error{Kind: connection.KindMisconfigured, Err: err}
}

func kindOf(c entra.Class) connection.Kind {
	switch c {
	case entra.ClassInvalidCredentials:
		return connection.KindInvalidCredentials
	case entra.ClassMFARequired:
		return connection.KindMFARequired
	case entra.ClassConditionalAccess:
		return connection.KindPolicyBlocked
	case entra.ClassPasswordExpired:
		return connection.KindPasswordExpired
	case entra.ClassAccountDisabled:
		return connection.KindAccountDisabled
	case entra.ClassLocked:
		return connection.KindAccountLocked
	case entra.ClassPasswordless:
		return connection.KindPasswordless
	case entra.ClassThrottled, entra.ClassUnavailable:
		return connection.KindUnavailable
	case entra.ClassUserNotAllowed:
		return connection.KindUserNotAllowed
	default: // consent, app configuration, unknown
		return connection.KindMisconfigured
	}
}

// nickname is Auth0's default: the local part of the email or UPN.
func nickname(s string) string {
	local, _, _ := strings.Cut(s, "@")
	return local
}
