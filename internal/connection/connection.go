package connection

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// PasswordConnector signs a user in with a username and password.
// Implementations must not keep the password beyond the call.
type PasswordConnector interface {
	Login(ctx context.Context, conn *store.Connection, username, password, ip string) (*Identity, error)
}

// Registry maps a strategy name ("waad") to its connector.
type Registry map[string]PasswordConnector

// Password returns the password connector of a strategy, if any.
func (r Registry) Password(strategy string) (PasswordConnector, bool) {
	c, ok := r[strategy]
	return c, ok
}

// RootSyncer is a connector that can tell a connection's sync mode
// before a login: the broker reads a returning user together with its
// attack-protection check only where the login will use that read.
type RootSyncer interface {
	SyncMode(conn *store.Connection) string
}

// TenantNarrower is a connector that can tell whether a change of a
// connection's options takes admission away from upstream users it
// admitted before. A refresh does not go upstream, so the Management API
// asks it on every change of a connection and, when it answers true,
// raises the connection's store.Connection.TenantGeneration, which ends
// every refresh token issued through the connection before the change.
// Only the strategy knows which of its options decide admission.
type TenantNarrower interface {
	// TenantsNarrowed compares the options of before and after, both
	// as stored; an error is options it cannot read.
	TenantsNarrowed(before, after *store.Connection) (bool, error)
}

// Sync modes of set_user_root_attributes (Auth0).
const (
	SyncOnEachLogin  = "on_each_login"
	SyncOnFirstLogin = "on_first_login"
	SyncNeverOnLogin = "never_on_login"
)

// Identity is a user as the upstream provider describes them after a
// successful login.
type Identity struct {
	// UserID is the Gatehouse user id, e.g. "waad|<oid>".
	UserID string
	// Provider is the identities[].provider value, e.g. "waad".
	Provider string
	// ProviderUserID is identities[].user_id (the oid or sub).
	ProviderUserID string
	// UpstreamTenant is the directory the provider validated the user in
	// (Entra's tid, lower case), "" when the provider has none. An oid is
	// unique only within its tenant, so the user is keyed on both: the
	// broker refuses a login whose tenant is not the stored user's.
	UpstreamTenant string
	Email          string
	EmailVerified  bool
	// Profile holds the root attributes of the Auth0 user (name, upn,
	// tenantid, groups, ...), without user_id, identities or IdP tokens.
	Profile map[string]any
	// IdPTokens are kept only when the connection asks for them.
	IdPTokens *IdPTokens
	// SyncMode is the connection's set_user_root_attributes.
	SyncMode string
	// Notes say why optional data (groups, extended attributes) is missing.
	Notes []string
	// Unset are profile keys this login could not load (groups when
	// Microsoft Graph failed, was out of the upstream token's reach or was
	// not asked): the stored user loses them rather than keep what an
	// earlier login loaded, since a membership Entra has taken away since
	// must not outlive it.
	Unset []string
}

// IdPTokens are the upstream tokens a connection may keep for the user.
type IdPTokens struct {
	AccessToken  string `json:"access_token,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	ExpiresIn    int64  `json:"expires_in,omitempty"`
}

// Kind is how a failed login is answered. Every upstream failure maps to
// exactly one Kind.
type Kind int

const (
	// KindInvalidCredentials: wrong password or unknown user.
	KindInvalidCredentials Kind = iota + 1
	// KindMFARequired: the user must do or register MFA, which the password
	// grant cannot.
	KindMFARequired
	// KindPolicyBlocked: Conditional Access, security defaults or risk.
	KindPolicyBlocked
	KindPasswordExpired
	KindAccountDisabled
	KindAccountLocked
	// KindPasswordless: no password the provider can check (passwordless
	// or federated user).
	KindPasswordless
	// KindMisconfigured: app, secret, consent, tenant or resource
	// configuration; the admin must act, the caller learns nothing.
	KindMisconfigured
	// KindUnavailable: the provider is throttling or failing; retry later.
	KindUnavailable
	// KindInvalidUpstreamToken: the provider's answer did not validate.
	KindInvalidUpstreamToken
	// KindTenantNotAllowed: the user's organisation is not one a
	// multi-tenant connection accepts (allowed_tenants).
	KindTenantNotAllowed
	// KindUserNotAllowed: the provider refuses this user for the app
	// whatever the password (not assigned to it, not in its tenant,
	// outside logon hours).
	KindUserNotAllowed
)

var kindNames = map[Kind]string{
	KindInvalidCredentials:   "invalid_credentials",
	KindMFARequired:          "mfa_required",
	KindPolicyBlocked:        "policy_blocked",
	KindPasswordExpired:      "password_expired",
	KindAccountDisabled:      "account_disabled",
	KindAccountLocked:        "account_locked",
	KindPasswordless:         "passwordless",
	KindMisconfigured:        "misconfigured",
	KindUnavailable:          "unavailable",
	KindInvalidUpstreamToken: "invalid_upstream_token",
	KindTenantNotAllowed:     "tenant_not_allowed",
	KindUserNotAllowed:       "user_not_allowed",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Error is a failed login. Its message is safe to log: it carries codes and
// ids, never the username, password or Microsoft's free text.
type Error struct {
	Kind Kind
	// Code is the upstream code, e.g. "AADSTS50126"; empty when none.
	Code          string
	TraceID       string
	CorrelationID string
	// Hint tells the administrator what to fix; never shown to the caller.
	Hint       string
	RetryAfter time.Duration
	// Realm is the account type the provider's realm discovery gave for the
	// user's domain ("Managed", "Federated", "Unknown") when a refused
	// password was looked up; empty otherwise.
	Realm string
	Err   error
}

// RealmFederated is Realm for a user whose domain signs in at its
// organization's own identity provider.
const RealmFederated = "Federated"

func (e *Error) Error() string {
	msg := "connection: " + e.Kind.String()
	if e.Code != "" {
		msg += " (" + e.Code + ")"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// AsError returns err's *Error, or one of KindMisconfigured wrapping err.
func AsError(err error) *Error {
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	return &Error{Kind: KindMisconfigured, Err: err}
}

// ConfigError is a connection whose options cannot work; it is reported
// when the connection is saved and when it is used.
func ConfigError(format string, args ...any) *Error {
	return &Error{Kind: KindMisconfigured, Err: fmt.Errorf(format, args...)}
}

// Step is one upstream call or check of a login, as `gatehouse try` shows it.
type Step struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"-"`
	OK       bool          `json:"ok"`
	Detail   string        `json:"detail,omitempty"`
	Error    string        `json:"error,omitempty"`
}

// Trace collects the steps of one login. A nil *Trace records nothing, so
// connectors call it unconditionally.
type Trace struct {
	mu       sync.Mutex
	steps    []Step
	warnings []string
}

type traceKey struct{}

// WithTrace returns ctx carrying t.
func WithTrace(ctx context.Context, t *Trace) context.Context {
	return context.WithValue(ctx, traceKey{}, t)
}

// TraceFrom returns the Trace of ctx, or nil.
func TraceFrom(ctx context.Context) *Trace {
	t, _ := ctx.Value(traceKey{}).(*Trace)
	return t
}

// Record adds a step that started at start and ended now. detail, when
// not nil, describes it; it is called only when t traces, so that a login
// nobody traces does not pay for the description.
func (t *Trace) Record(name string, start time.Time, err error, detail func() string) {
	if t == nil {
		return
	}
	s := Step{Name: name, Duration: time.Since(start), OK: err == nil}
	if detail != nil {
		s.Detail = detail()
	}
	if err != nil {
		s.Error = err.Error()
	}
	t.mu.Lock()
	t.steps = append(t.steps, s)
	t.mu.Unlock()
}

// Warn adds a warning for the administrator.
func (t *Trace) Warn(msg string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.warnings = append(t.warnings, msg)
	t.mu.Unlock()
}

// Steps returns the recorded steps in order.
func (t *Trace) Steps() []Step {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Step(nil), t.steps...)
}

// Warnings returns the recorded warnings.
func (t *Trace) Warnings() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.warnings...)
}
