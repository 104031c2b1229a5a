package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/attack"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/connection"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/tokens"
)

const (
	grantPassword      = "password"
	grantPasswordRealm = "http://auth0.com/oauth/grant-type/password-realm"
)

// Lifetimes Auth0 uses by default: jwt_configuration.lifetime_in_seconds
// for id_tokens, a day for access tokens.
const (
	defaultIDTokenLifetime = 36000 * time.Second
	accessTokenLifetime    = 86400 * time.Second
)

// maxUsernameBytes is far above any directory's usernames (an Entra UPN
// has at most 113 characters) and below what PostgreSQL can index:
// attack protection counts failures under the username. It is the bound
// of the Management API's user-blocks, so a counted username can be
// unblocked.
const maxUsernameBytes = 512

// ConnectionGetter finds connections and their enablement.
type ConnectionGetter interface {
	GetConnectionByName(ctx context.Context, name string) (*store.Connection, error)
	ConnectionEnabledForClient(ctx context.Context, connectionID, clientID string) (bool, error)
}

// UserStore reads users and stores their logins.
type UserStore interface {
	GetUser(ctx context.Context, userID string) (*store.User, error)
	RecordLogin(ctx context.Context, u *store.User, rootAttributes bool, e *store.LogEvent, settlement *store.LoginClear) error
}

// Sealer seals data with the tenant's master key.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(ciphertext, aad []byte) ([]byte, error)
}

// loginAttempt is what the log event of one password grant says.
type loginAttempt struct {
	t      *tokenRequest
	client *store.Client
	conn   *store.Connection
	ip     string
	user   string
	scope  string
}

// passwordGrant serves both password grants. Checks run in Auth0's order,
// after client authentication and the client's grant_types: parameters,
// connection exists, supports passwords and is enabled for the client;
// only then Entra.
func (p *Provider) passwordGrant(ctx context.Context, t *tokenRequest, c *store.Client) (*tokenResponse, error) {
	grant := t.get("grant_type")
	a := &loginAttempt{t: t, client: c, ip: p.clientIP(t, c), scope: t.get("scope")}
	username, err := t.require("username")
	if err != nil {
		return nil, err
	}
	if len(username) > maxUsernameBytes {
		return nil, errInvalidRequest(fmt.Sprintf("Parameter username must be at most %d bytes.", maxUsernameBytes))
	}
	a.user = username
	if _, err := t.require("password"); err != nil {
		return nil, err
	}
	realm := t.get("realm")
	if grant == grantPasswordRealm && realm == "" {
		return nil, errMissing("realm")
	}
	if realm == "" {
		_, dir, err := p.tenantSettings(ctx)
		if err != nil {
			return nil, err
		}
		if dir == "" {
			return nil, p.refuse(ctx, a, audit.FailedLogin, &Error{Status: http.StatusInternalServerError, Code: "server_error",
				Description: "Authorization server not configured with default connection."}, nil)
		}
		realm = dir
	}
	api, err := p.userAPI(ctx, t)
	if err != nil {
		return nil, p.refuse(ctx, a, audit.FailedExchangePassword, err, nil)
	}
	conn, connector, err := p.passwordConnection(ctx, realm, c.ClientID)
	// Set before the error check: a connection found but refused (not
	// enabled for the client, no password login) is named in the event,
	// so that the admin knows which one to fix.
	a.conn = conn
	if err != nil {
		return nil, p.refuse(ctx, a, audit.FailedLogin, err, nil)
	}
	scopes := userScopes(a.scope, c, api)
	// A replica whose signing key was revoked while it could not load the
	// next one (tokens.ErrNoSigningKey) cannot finish a login that needs a
	// signature: it says so before the password goes to Entra.
	if (api != nil || slices.Contains(scopes, "openid")) && p.keys.KID() == "" {
		return nil, p.refuse(ctx, a, audit.FailedExchangePassword, errServer(tokens.ErrNoSigningKey), nil)
	}

	password := t.params.Get("password")
	// fosite's rule: credentials must not be passed around once checked.
	// The parsed form is the request's only copy; drop it before the
	// upstream call so nothing later (logging, errors) can reach it.
	t.params.Del("password")
	ticket, err := p.admit(ctx, a, conn, connector)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	// The call outlives a client that gives up (the Entra client's own
	// timeout bounds it): once the password is sent Entra counts a
	// failure whether anyone waits or not, so the attempt is settled by
	// Entra's answer, not given back because the caller left.
	id, err := connector.Login(context.WithoutCancel(ctx), conn, username, password, a.ip)
	password = ""
	if p.metrics != nil {
		result := "ok"
		if err != nil {
			result = connection.AsError(err).Kind.String()
		}
		p.metrics.ObserveUpstream(conn.Strategy, result, time.Since(start))
	}
	if err != nil {
		p.settle(ctx, ticket, err)
		return nil, p.loginFailed(ctx, a, err)
	}
	// A success is settled in the login's first user write, one store
	// write fewer per login; a way out before that write, or that write's
	// failure, settles it on its own.
	settlement := ticket.Success()
	defer func() {
		if settlement != nil {
			p.settle(ctx, ticket, nil)
		}
	}()
	// After the deferred settlement: Entra accepted the password, so a
	// login refused here is settled as a success, never as a failure.
	// The client, its API and its connection are read again, in the
	// first checks' order, and the login grants what they allow now.
	if c, err = p.recheckClient(ctx, t, c.ClientID, grant); err != nil {
		return nil, p.refuse(ctx, a, audit.FailedExchangePassword, err, nil)
	}
	if api != nil {
		// The API of the identifier the login named: one made again
		// under it meanwhile grants its own scopes.
		if api, err = p.lookupAPI(ctx, api.Identifier); err != nil {
			return nil, p.refuse(ctx, a, audit.FailedExchangePassword, err, nil)
		}
	}
	if typ, err := p.recheckConnection(ctx, conn, c.ClientID); err != nil {
		return nil, p.refuse(ctx, a, typ, err, nil)
	}
	scopes = userScopes(a.scope, c, api)
	l, stored, err := p.storeLogin(ctx, a, conn, id, ticket.Users(), &settlement)
	if err != nil {
		return nil, err
	}
	ug := userGrant{client: c, user: l.user, requested: a.scope, scopes: scopes,
		api: api, gty: grantPassword, ip: a.ip, ua: userAgent(t.r), tenantGeneration: conn.TenantGeneration}
	resp, err := p.issueUserTokens(ctx, ug)
	if err != nil && !stored && l.readBefore && errors.Is(err, store.ErrNotFound) {
		// The user read before Entra answered was deleted since, so its
		// refresh token had no user to refer to: this is a first login,
		// read after Entra and stored before its tokens.
		if l, stored, err = p.storeLogin(ctx, a, conn, id, nil, &settlement); err != nil {
			return nil, err
		}
		ug.user = l.user
		resp, err = p.issueUserTokens(ctx, ug)
	}
	user := l.user
	if err != nil {
		if !stored {
			if err := p.users.RecordLogin(context.WithoutCancel(ctx), user, l.root, nil, settlement); err == nil || errors.Is(err, store.ErrUpstreamTenantMismatch) {
				settlement = nil
			} else {
				p.logger.ErrorContext(ctx, "updating the user failed", "error", err)
			}
		}
		return nil, p.refuse(ctx, a, audit.FailedExchangePassword, err, nil)
	}
	details := map[string]any{}
	if len(id.Notes) > 0 {
		details["notes"] = id.Notes
	}
	if stored {
		p.record(ctx, a, audit.SuccessExchangePassword, user.UserID, details)
		return resp, nil
	}
	if err := p.recordLogin(ctx, a, l, details, settlement); err != nil {
		p.dropRefreshToken(ctx, resp.RefreshToken)
		if errors.Is(err, store.ErrUpstreamTenantMismatch) {
			settlement = nil
			return nil, p.refuseTenantMismatch(ctx, a, id, "")
		}
		return nil, p.refuse(ctx, a, audit.FailedExchangePassword, errServer(err), nil)
	}
	settlement = nil
	if user.Blocked {
		// Blocked since it was read: the tokens made are never handed out.
		p.dropRefreshToken(ctx, resp.RefreshToken)
		return nil, p.refuse(ctx, a, audit.FailedLogin, errUserBlocked(), map[string]any{"user_id": user.UserID})
	}
	return resp, nil
}

// storeLogin makes the login of the user Entra named (syncUser, with read
// from before Entra) and stores it at once when it is the user's first,
// since tokens may refer to the user, or the user's stored block says so;
// a returning user is stored after its tokens are made, with the success
// event, in one store write. Either way the store's answer says whether
// the user is blocked: an administrator may have blocked or unblocked it
// since it was read. A store write settles the login (*settlement is then
// nil). The error is the login's answer.
func (p *Provider) storeLogin(ctx context.Context, a *loginAttempt, conn *store.Connection, id *connection.Identity, read []*store.User,
	settlement **store.LoginClear) (l *login, stored bool, err error) {
	if l, err = p.syncUser(ctx, conn, id, a.ip, read); err != nil {
		var tm *tenantMismatch
		if errors.As(err, &tm) {
			return nil, false, p.refuseTenantMismatch(ctx, a, id, tm.stored)
		}
		return nil, false, p.refuse(ctx, a, audit.FailedExchangePassword, errServer(err), nil)
	}
	stored = l.first || l.user.Blocked
	if stored {
		// Not cancelled with the request, as recordLogin: a write that
		// committed must not look failed, or its settlement runs twice.
		if err := p.users.RecordLogin(context.WithoutCancel(ctx), l.user, l.root, nil, *settlement); err != nil {
			if errors.Is(err, store.ErrUpstreamTenantMismatch) {
				*settlement = nil
				return nil, false, p.refuseTenantMismatch(ctx, a, id, "")
			}
			return nil, false, p.refuse(ctx, a, audit.FailedExchangePassword, errServer(err), nil)
		}
		*settlement = nil
	}
	if l.user.Blocked {
		return nil, false, p.refuse(ctx, a, audit.FailedLogin, errUserBlocked(), map[string]any{"user_id": l.user.UserID})
	}
	return l, stored, nil
}

// tenantMismatch: the user id the upstream named is stored for a user of
// another upstream tenant. An oid is unique only within its tenant, so on
// a connection that admits several tenants two users can share one.
type tenantMismatch struct{ stored string }

func (e *tenantMismatch) Error() string { return "user of upstream tenant " + e.stored }

// refuseTenantMismatch refuses a login whose upstream tenant is not its
// stored user's: signing in as that user would hand one organisation's
// account to another's. Nothing is written. The caller gets the
// misconfiguration answer, which says nothing about either directory; the
// log event names the user and both tenants. stored is the stored user's
// tenant, "" when RecordLogin found it (it is read here, for the event
// only: a user's tenant, once set, never changes). Entra accepted the
// password, so the login is settled as a success (passwordGrant), never
// counted as a failed attempt.
func (p *Provider) refuseTenantMismatch(ctx context.Context, a *loginAttempt, id *connection.Identity, stored string) error {
	if stored == "" {
		if u, err := p.users.GetUser(context.WithoutCancel(ctx), id.UserID); err == nil {
			stored = u.UpstreamTenant
		}
	}
	return p.refuse(ctx, a, audit.FailedExchangePassword, errMisconfigured(), map[string]any{
		"reason": "upstream_tenant_mismatch", "user_id": id.UserID,
		"stored_tenant": stored, "upstream_tenant": id.UpstreamTenant,
		"hint": fmt.Sprintf("%s is stored for a user of tenant %s; this login is of tenant %s: an object id is unique only "+
			"within its tenant, so this is another user, and the stored one was left unchanged", id.UserID, stored, id.UpstreamTenant),
	})
}

// errUserBlocked is Auth0's answer for a blocked user.
func errUserBlocked() *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Description: "user is blocked"}
}

// recordLogin stores a returning user's login with the success event.
// The event alone is no reason to fail a login, so a failure to build it
// stores the login alone, as record does.
func (p *Provider) recordLogin(ctx context.Context, a *loginAttempt, l *login, details map[string]any, settlement *store.LoginClear) error {
	var le *store.LogEvent
	if p.audit != nil {
		var err error
		if le, err = p.audit.LogEvent(p.event(a, audit.SuccessExchangePassword, l.user.UserID, details)); err != nil {
			p.logger.ErrorContext(ctx, "recording log event failed", "type", audit.SuccessExchangePassword, "error", err)
			le = nil
		}
	}
	return p.users.RecordLogin(context.WithoutCancel(ctx), l.user, l.root, le, settlement)
}

// dropRefreshToken revokes a refresh token that was stored but will not
// be handed out. Its secret never left the process, so a failure is only
// logged.
func (p *Provider) dropRefreshToken(ctx context.Context, token string) {
	id, _, ok := strings.Cut(token, ".")
	if !ok || p.refresh == nil {
		return
	}
	if err := p.refresh.RevokeRefreshTokenFamily(context.WithoutCancel(ctx), id); err != nil {
		p.logger.ErrorContext(ctx, "revoking an unused refresh token failed", "error", err)
	}
}

// passwordConnection finds the realm's connection and its connector. The
// answers are the legacy /oauth/ro ones, the only Auth0 documents.
func (p *Provider) passwordConnection(ctx context.Context, realm, clientID string) (*store.Connection, connection.PasswordConnector, error) {
	conn, err := p.connections.GetConnectionByName(ctx, realm)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, errConnectionNotFound()
	}
	if err != nil {
		return nil, nil, errServer(err)
	}
	connector, ok := p.connectors.Password(conn.Strategy)
	if !ok {
		return conn, nil, &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: "specified strategy does not support requested operation"}
	}
	enabled, err := p.connections.ConnectionEnabledForClient(ctx, conn.ID, clientID)
	if err != nil {
		return conn, nil, errServer(err)
	}
	if !enabled {
		return conn, nil, &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: "the connection was disabled"}
	}
	return conn, connector, nil
}

// recheckConnection repeats passwordConnection's checks once Entra has
// answered: an administrator may have disabled the connection for the
// client, or deleted it, while the login waited, and such a login must
// store no user and get no tokens. The lookups are the cached ones of the
// first check, which this process's Management writes clear at once, so
// the common case reads no database; another replica's write shows here
// within the cache's TTL. A connection made again under the name is not
// the one Entra answered for: that login is refused as the deleted
// connection's. The answers are the first check's, logged f, but for a
// connection that now admits fewer Entra tenants (connection.TenantNarrower):
// Entra answered under the options before the change, which may admit
// the user no more, and the login's refresh token would be refused at its
// first exchange (stillGranted). No answer of the first check says that;
// the app's retry is answered under the new options, so it is told to
// retry.
func (p *Provider) recheckConnection(ctx context.Context, conn *store.Connection, clientID string) (typ string, err error) {
	now, _, err := p.passwordConnection(ctx, conn.Name, clientID)
	if err != nil {
		return audit.FailedLogin, err
	}
	if now.ID != conn.ID {
		return audit.FailedLogin, errConnectionNotFound()
	}
	if now.TenantGeneration > conn.TenantGeneration {
		return audit.FailedExchangePassword, &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
			Description: "The identity provider is temporarily unavailable. Try again later.", Header: http.Header{"Retry-After": {"1"}},
			Cause: fmt.Errorf("connection %q admits other Entra tenants than when the login read it (tenant generation %d at the login, %d now)",
				conn.Name, conn.TenantGeneration, now.TenantGeneration)}
	}
	return "", nil
}

// recheckClient reads the client again once Entra has answered and
// repeats the token endpoint's client checks: an administrator may have
// deleted the client, or taken the grant out of its grant_types, while
// the login waited, and such a login must store no user and get no
// tokens. The answers are those of the first checks (exchange): a client
// that no longer exists is one that cannot authenticate. The client's
// credentials are not checked again: a client assertion may be used once
// only.
func (p *Provider) recheckClient(ctx context.Context, t *tokenRequest, clientID, grant string) (*store.Client, error) {
	c, err := p.clients.GetClient(ctx, clientID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, challengeBasic(t.r, errUnauthorizedClient(fmt.Errorf("client deleted while Entra answered: %w", errUnknownClient)))
	}
	if err != nil {
		return nil, errServer(err)
	}
	if !slices.Contains(c.GrantTypes, grant) {
		return nil, errGrantNotAllowed(grant)
	}
	return c, nil
}

func errConnectionNotFound() *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: "the connection was not found"}
}

// loginFailed answers a failed upstream login: one documented response and
// one log event per kind (docs/errors.md).
func (p *Provider) loginFailed(ctx context.Context, a *loginAttempt, err error) error {
	ce := connection.AsError(err)
	details := map[string]any{"reason": ce.Kind.String()}
	if ce.Code != "" {
		details["error_code"] = ce.Code
	}
	if ce.TraceID != "" {
		details["trace_id"] = ce.TraceID
	}
	if ce.CorrelationID != "" {
		details["correlation_id"] = ce.CorrelationID
	}
	if ce.Hint != "" {
		details["hint"] = ce.Hint
	}
	if ce.Realm != "" {
		details["realm"] = ce.Realm
	}
	typ, oe := failureResponse(ce)
	oe.Cause = ce
	return p.refuse(ctx, a, typ, oe, details)
}

// unknownUserCodes are Entra's answers that the account does not exist in
// the directory: Auth0 logs them as fu, a wrong password as fp.
var unknownUserCodes = map[string]bool{"AADSTS50034": true, "AADSTS51004": true, "AADSTS50014": true}

// FederatedDescription answers a refused password of a federated domain's
// user. Entra answers alike a wrong password it checked and a password it
// may not check (no password hash sync or no AllowCloudPasswordValidation),
// so the description must be true of both.
const FederatedDescription = "Wrong email or password, or this account's organization signs it in with its own identity provider " +
	"(federated) and Microsoft Entra ID cannot check its password. If the password is right, use interactive sign-in."

// failureResponse is the table of docs/errors.md.
func failureResponse(ce *connection.Error) (string, *Error) {
	forbidden := func(code, desc string) *Error {
		return &Error{Status: http.StatusForbidden, Code: code, Description: desc}
	}
	switch ce.Kind {
	case connection.KindInvalidCredentials:
		typ := audit.FailedLoginWrongPassword
		if unknownUserCodes[ce.Code] {
			typ = audit.FailedLoginUnknownUser
		}
		if ce.Realm == connection.RealmFederated {
			// Still invalid_grant: with cloud password validation on, it
			// was a wrong password, and SDKs must see one.
			return typ, forbidden("invalid_grant", FederatedDescription)
		}
		return typ, forbidden("invalid_grant", "Wrong email or password.")
	case connection.KindMFARequired:
		return audit.FailedExchangePassword, forbidden("access_denied",
			"Multifactor authentication is required for this user by Microsoft Entra ID; password sign-in cannot perform it. Use interactive sign-in.")
	case connection.KindPolicyBlocked:
		return audit.FailedExchangePassword, forbidden("access_denied",
			"Sign-in was blocked by a Microsoft Entra ID access policy (Conditional Access or security defaults) that password sign-in cannot satisfy. Use interactive sign-in.")
	case connection.KindPasswordExpired:
		return audit.FailedExchangePassword, forbidden("password_expired",
			"The password has expired. Change it with your organization, then sign in again.")
	case connection.KindAccountDisabled:
		return audit.FailedExchangePassword, errUserBlocked()
	case connection.KindAccountLocked:
		return audit.FailedExchangePassword, &Error{Status: http.StatusTooManyRequests, Code: "too_many_attempts",
			Description: "Your account is locked by your organization after too many failed sign-in attempts. Try again later."}
	case connection.KindPasswordless:
		return audit.FailedExchangePassword, forbidden("access_denied",
			"This account has no password that can be checked (passwordless or federated sign-in). Use interactive sign-in.")
	case connection.KindTenantNotAllowed:
		return audit.FailedExchangePassword, forbidden("access_denied",
			"Users of this organization are not allowed to sign in to this application.")
	case connection.KindUserNotAllowed:
		return audit.FailedExchangePassword, forbidden("access_denied",
			"This user is not allowed to sign in to this application.")
	case connection.KindUnavailable:
		retry := ce.RetryAfter
		if retry <= 0 {
			retry = 5 * time.Second
		}
		return audit.FailedExchangePassword, &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
			Description: "The identity provider is temporarily unavailable. Try again later.",
			Header:      http.Header{"Retry-After": {strconv.Itoa(int((retry + time.Second - 1) / time.Second))}}}
	}
	return audit.FailedExchangePassword, errMisconfigured()
}

// errMisconfigured answers misconfiguration and unverifiable upstream
// answers: the admin finds the reason in the log event; the caller learns
// nothing about the directory.
func errMisconfigured() *Error {
	return &Error{Status: http.StatusInternalServerError, Code: "server_error",
		Description: "The connection to the identity provider is not configured correctly. The administrator can find the reason in the tenant logs."}
}

// refuse records a failed attempt and returns oe.
func (p *Provider) refuse(ctx context.Context, a *loginAttempt, typ string, err error, details map[string]any) error {
	if details == nil {
		details = map[string]any{}
	}
	var oe *Error
	if errors.As(err, &oe) {
		details["error"] = oe.Code
		details["error_description"] = oe.Description
		if oe.Cause != nil && details["cause"] == nil {
			details["cause"] = oe.Cause.Error()
		}
	}
	uid, _ := details["user_id"].(string)
	delete(details, "user_id")
	p.record(ctx, a, typ, uid, details)
	return err
}

func (p *Provider) record(ctx context.Context, a *loginAttempt, typ, userID string, details map[string]any) {
	if p.audit == nil {
		return
	}
	// A lost log event must not turn a login into a failure, nor a
	// failure into something else.
	if err := p.audit.Record(context.WithoutCancel(ctx), p.event(a, typ, userID, details)); err != nil {
		p.logger.ErrorContext(ctx, "recording log event failed", "type", typ, "error", err)
	}
}

func (p *Provider) event(a *loginAttempt, typ, userID string, details map[string]any) *audit.Event {
	e := &audit.Event{
		Type:       typ,
		ClientID:   a.client.ClientID,
		ClientName: a.client.Name,
		IP:         a.ip,
		UserAgent:  userAgent(a.t.r),
		UserID:     userID,
		UserName:   a.user,
		Scope:      a.scope,
		Hostname:   a.t.r.Host,
		Details:    details,
	}
	if a.conn != nil {
		e.Connection, e.ConnectionID, e.Strategy, e.StrategyType = a.conn.Name, a.conn.ID, a.conn.Strategy, "enterprise"
	}
	if len(details) == 0 {
		e.Details = nil
	}
	return e
}

// login is what a successful upstream login stores of its user.
type login struct {
	user  *store.User
	first bool
	// root says whether the login writes the root attributes.
	root bool
	// readBefore: user was read before the upstream call, and may have
	// been deleted since.
	readBefore bool
}

// syncUser applies the connection's set_user_root_attributes: root
// attributes (name, given_name, family_name, nickname, picture) follow the
// IdP on each login, on the first only, or never; every other attribute
// follows the IdP always. It reads the user but writes nothing: the login
// is stored by RecordLogin, which writes only what a login owns.
//
// read are users read before the upstream call (attack.Ticket.Users); the
// one the upstream named, when among them, is not read again where the
// login writes the root attributes itself: the rest of what the tokens
// say is the IdP's (each writer writes only its own part of a user,
// docs/management-api.md), and RecordLogin's answer says whether the user
// is blocked now. Elsewhere the root attributes are the administrator's,
// and a change made while the upstream answered, or the user's deletion
// (then this is a first login), must show in this login's tokens and
// write: the user is read after the call.
func (p *Provider) syncUser(ctx context.Context, conn *store.Connection, id *connection.Identity, ip string, read []*store.User) (*login, error) {
	now := p.now().UTC()
	eachLogin := syncsEachLogin(id.SyncMode)
	var existing *store.User
	for _, u := range read {
		if eachLogin && u.UserID == id.UserID {
			existing = u
		}
	}
	readBefore := existing != nil
	var err error
	if existing == nil {
		existing, err = p.users.GetUser(ctx, id.UserID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	// The key is the tenant and the user id; RecordLogin checks it again
	// where it writes, for a user created since it was read.
	if existing != nil && existing.UpstreamTenant != "" && id.UpstreamTenant != "" && existing.UpstreamTenant != id.UpstreamTenant {
		return nil, &tenantMismatch{stored: existing.UpstreamTenant}
	}
	l := &login{user: &store.User{UserID: id.UserID}, first: existing == nil, readBefore: readBefore}
	prof := map[string]any{}
	if !l.first {
		l.user = existing
		if len(existing.Profile) > 0 {
			if err := json.Unmarshal(existing.Profile, &prof); err != nil {
				return nil, fmt.Errorf("user profile: %w", err)
			}
		}
	}
	l.root = eachLogin || (l.first && id.SyncMode == connection.SyncOnFirstLogin)
	for _, k := range id.Unset {
		delete(prof, k)
	}
	// The IdP's root attributes replace the stored ones as a whole, so an
	// attribute it no longer sends is removed.
	root := map[string]any{}
	for k, v := range id.Profile {
		if rootAttributes[k] {
			root[k] = v
		} else {
			prof[k] = v
		}
	}
	prof["user_id"] = id.UserID
	prof["identities"] = []map[string]any{{
		"provider":   id.Provider,
		"connection": conn.Name,
		"user_id":    id.ProviderUserID,
		"isSocial":   false,
	}}
	u := l.user
	if u.Profile, err = json.Marshal(prof); err != nil {
		return nil, fmt.Errorf("user profile: %w", err)
	}
	if l.root {
		u.RootAttributes = nil
		if len(root) > 0 {
			if u.RootAttributes, err = json.Marshal(root); err != nil {
				return nil, fmt.Errorf("user root attributes: %w", err)
			}
		}
	}
	u.Email = id.Email
	u.UpstreamTenant = id.UpstreamTenant
	u.Connection = conn.Name
	u.LastLogin = &now
	u.LastIP = ip
	u.UpdatedAt = now
	u.IdPTokensEnc = nil
	if id.IdPTokens != nil {
		b, err := json.Marshal(id.IdPTokens)
		if err != nil {
			return nil, err
		}
		if u.IdPTokensEnc, err = p.sealer.Seal(b, store.UserIdPTokensAAD(id.UserID)); err != nil {
			return nil, fmt.Errorf("seal idp tokens: %w", err)
		}
	}
	return l, nil
}

// syncsEachLogin reports whether a connection with this sync mode writes
// the root attributes on each login (the default): only its logins use a
// user read before the upstream call (syncUser).
func syncsEachLogin(syncMode string) bool {
	return syncMode == connection.SyncOnEachLogin || syncMode == ""
}

// rootAttributes are the attributes set_user_root_attributes governs.
var rootAttributes = map[string]bool{"name": true, "given_name": true, "family_name": true, "nickname": true, "picture": true}

// clientIP is the end user's address (attack.ClientIP).
func (p *Provider) clientIP(t *tokenRequest, c *store.Client) string {
	return attack.ClientIP(t.r, c, p.trustedProxies)
}
