package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Errors a caller branches on. Implementations wrap them with %w.
var (
	// ErrNotFound: the object does not exist (or was deleted).
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique constraint (e.g. connection name) would be violated.
	ErrConflict = errors.New("already exists")
	// ErrUpstreamTenantMismatch: a login's user id is stored for a user of
	// another upstream tenant (User.UpstreamTenant).
	ErrUpstreamTenantMismatch = errors.New("user belongs to another upstream tenant")
)

// Store is everything Gatehouse persists. Consumers should declare the
// smaller interface they need (ClientStore, KeyStore, ...) rather than
// depending on Store as a whole.
//
// Times are kept to the millisecond, in UTC. Create methods default a zero
// CreatedAt (and UpdatedAt) to now; update methods set UpdatedAt to now and
// keep the stored CreatedAt. Either way the stored values are written back
// into the argument, so it equals what a later Get returns.
type Store interface {
	ClientStore
	ConnectionStore
	KeyStore
	SettingsStore
	UserStore
	LogStore
	LoginStore
	ResourceServerStore
	ClientGrantStore
	RefreshTokenStore
	AttackStore
	ClientCredentialStore

	// Ping reports whether the database is reachable and fully migrated.
	Ping(ctx context.Context) error
	Close() error
}

// Client is an application registered with Gatehouse (Auth0's "client").
// SecretEnc is the client secret as sealed by package secrets; the store
// never sees it in clear.
type Client struct {
	ClientID                       string
	Name                           string
	Description                    string
	AppType                        string
	SecretEnc                      []byte
	Callbacks                      []string
	AllowedLogoutURLs              []string
	WebOrigins                     []string
	GrantTypes                     []string
	TokenEndpointAuthMethod        string
	IsFirstParty                   bool
	OIDCConformant                 bool
	IsTokenEndpointIPHeaderTrusted bool
	JWTConfiguration               json.RawMessage // Auth0 jwt_configuration object
	RefreshToken                   json.RawMessage // Auth0 refresh_token object
	ClientMetadata                 map[string]string
	// Extra holds Auth0 client fields Gatehouse keeps but does not interpret.
	Extra json.RawMessage
	// ManagementScopes, when non-empty, are the Management API scopes this
	// client may obtain with client_credentials (the bootstrap admin client).
	ManagementScopes []string
	// PrivateKeyJWTCredentials, when not nil, makes the client
	// authenticate with private_key_jwt, signed by one of these
	// credentials (ids of its ClientCredentials), instead of
	// TokenEndpointAuthMethod.
	PrivateKeyJWTCredentials []string
	CreatedAt                time.Time
	UpdatedAt                time.Time
}

// ListOptions pages through a listing. Page is 0-based.
type ListOptions struct {
	Page    int
	PerPage int
	// Offset, when positive, is how many records precede the page, in
	// place of Page*PerPage: a checkpoint starts anywhere, and reading
	// from the start to reach it would load the listing up to it.
	Offset int
}

// ClientStore persists applications.
type ClientStore interface {
	CreateClient(ctx context.Context, c *Client) error
	GetClient(ctx context.Context, clientID string) (*Client, error)
	// ListClients returns one page ordered by creation, and the total count.
	ListClients(ctx context.Context, opts ListOptions) ([]*Client, int, error)
	// UpdateClient replaces every field of the stored client with c's,
	// but the secret when c.SecretEnc is nil: a caller that did not mean
	// to change the secret must not write back the one it read, which a
	// rotation may have replaced since. It writes only while the stored
	// client is the one c was read as (its UpdatedAt, which every write
	// moves forward), else ErrConflict: the caller reads it again, so
	// that two read-modify-writes never undo each other.
	UpdateClient(ctx context.Context, c *Client) error
	// SetClientSecret replaces the client's sealed secret, and nothing
	// else; ErrNotFound if there is no such client.
	SetClientSecret(ctx context.Context, clientID string, secretEnc []byte) error
	// DeleteClient removes the client and its connection enablements.
	DeleteClient(ctx context.Context, clientID string) error
}

// Connection is an upstream identity provider configuration.
// Options holds the strategy options as JSON without the client secret,
// which is kept sealed in SecretEnc.
type Connection struct {
	ID                 string
	Name               string
	Strategy           string
	DisplayName        string
	Options            json.RawMessage
	SecretEnc          []byte
	IsDomainConnection bool
	ShowAsButton       bool
	Realms             []string
	Metadata           map[string]string
	// EnabledClients is filled by the store from the enablement table.
	EnabledClients []string
	// TenantGeneration counts the changes that narrowed the upstream
	// users the connection admits (connection.TenantNarrower); a refresh
	// token issued under another generation is refused.
	TenantGeneration int64
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// ConnectionFilter narrows ListConnections. Empty fields do not filter.
type ConnectionFilter struct {
	Strategies []string
	Name       string
}

// ClientLookup reads one client, as GetClient does.
type ClientLookup func(clientID string) (*Client, error)

// ConnectionStore persists connections and which clients may use them.
type ConnectionStore interface {
	// CreateConnection stores c and its EnabledClients; ErrConflict if the
	// name is taken, ErrNotFound if an enabled client does not exist.
	CreateConnection(ctx context.Context, c *Connection) error
	GetConnection(ctx context.Context, id string) (*Connection, error)
	GetConnectionByName(ctx context.Context, name string) (*Connection, error)
	ListConnections(ctx context.Context, f ConnectionFilter, opts ListOptions) ([]*Connection, int, error)
	// PatchConnection is an administrator's change: patch changes the
	// stored connection, EnabledClients included, and its mutable fields
	// are written back with UpdatedAt set to now, with no other write to
	// the connection in between; the enablements are replaced unless patch
	// leaves EnabledClients nil. patch reads clients through client, in
	// the same transaction, never through the store: the connections to
	// the database it would wait for may all be held by patches waiting
	// for this one. It returns the connection as stored; ErrNotFound when
	// it, or a client to enable, does not exist, and patch's error,
	// writing nothing.
	PatchConnection(ctx context.Context, id string, patch func(c *Connection, client ClientLookup) error) (*Connection, error)
	DeleteConnection(ctx context.Context, id string) error
	// SetConnectionClients enables (true) or disables (false) clients for a
	// connection in one transaction; ErrNotFound for an unknown client.
	SetConnectionClients(ctx context.Context, connectionID string, status map[string]bool) error
	// ConnectionEnabledForClient is the hot-path check of the token endpoint.
	ConnectionEnabledForClient(ctx context.Context, connectionID, clientID string) (bool, error)
}

// SigningKey is one RS256 key of the tenant. PrivateEnc is the PKCS#8 DER
// private key sealed by package secrets; CertDER is the self-signed
// certificate published in the JWKS.
type SigningKey struct {
	KID          string
	PrivateEnc   []byte
	CertDER      []byte
	State        KeyState
	CreatedAt    time.Time
	CurrentSince *time.Time
	CurrentUntil *time.Time
	RevokedAt    *time.Time
}

// KeyState is a signing key's place in the rotation.
type KeyState string

const (
	KeyNext     KeyState = "next"
	KeyCurrent  KeyState = "current"
	KeyPrevious KeyState = "previous"
	KeyRevoked  KeyState = "revoked"
)

// KeyStore persists signing keys. Every write that changes a key is
// reported to the other processes sharing the database (sqlstore:
// Changes.Keys on PostgreSQL), so that they reload at once.
type KeyStore interface {
	// ListSigningKeys returns every key, revoked ones included, newest first.
	ListSigningKeys(ctx context.Context) ([]*SigningKey, error)
	// InsertSigningKeyIfNone stores k only when no non-revoked key of state
	// k.State exists yet, atomically; it reports whether k was stored. Two
	// processes starting at once on an empty database end with one key.
	InsertSigningKeyIfNone(ctx context.Context, k *SigningKey) (bool, error)
	// UpdateSigningKey stores k's State and timestamps.
	UpdateSigningKey(ctx context.Context, k *SigningKey) error
	// RotateSigningKeys makes the next key current, the current one
	// previous (current_until = at) and stores next as the new next key,
	// in one transaction, but only while ifCurrent is still the current
	// key: of replicas rotating at once, one rotates and the others get
	// false.
	RotateSigningKeys(ctx context.Context, ifCurrent string, next *SigningKey, at time.Time) (bool, error)
	// RevokeSigningKey revokes a previous key; ErrNotFound for an unknown
	// kid, ErrKeyInUse for the current or next key.
	RevokeSigningKey(ctx context.Context, kid string, at time.Time) (*SigningKey, error)
}

// ErrKeyInUse: the current and next signing keys cannot be revoked.
var ErrKeyInUse = errors.New("signing key is current or next")

// TenantSettings is the tenant-wide configuration, kept as the Auth0 tenant
// settings JSON document so that fields Gatehouse does not interpret survive
// a round trip.
type TenantSettings struct {
	Doc       json.RawMessage
	UpdatedAt time.Time
}

// SettingsStore persists tenant settings as one document.
type SettingsStore interface {
	// GetTenantSettings returns the stored settings, or an empty document.
	GetTenantSettings(ctx context.Context) (*TenantSettings, error)
	// PutTenantSettings replaces the document. It writes only while the
	// stored settings are the ones s was read as (its UpdatedAt, which
	// every write moves forward; zero when none were stored), else
	// ErrConflict, as UpdateClient does.
	PutTenantSettings(ctx context.Context, s *TenantSettings) error
}

// User is a person known to Gatehouse through a connection. Its parts
// belong to different writers, who write only their own: a login
// (RecordLogin) writes what the IdP says, an administrator (PatchUser)
// Blocked and the metadata, and either the root attributes, as the
// connection's set_user_root_attributes says. IdPTokensEnc holds the
// upstream tokens sealed, when the connection keeps them.
type User struct {
	UserID     string
	Connection string
	Email      string
	// Profile is the Auth0 user JSON as the IdP gives it (identities
	// included, IdP tokens not) without the root attributes and metadata.
	Profile json.RawMessage
	// RootAttributes is the JSON object of Auth0's root attributes: name,
	// given_name, family_name, nickname and picture.
	RootAttributes json.RawMessage
	AppMetadata    json.RawMessage
	UserMetadata   json.RawMessage
	IdPTokensEnc   []byte
	// UpstreamTenant is the upstream directory the user belongs to
	// (connection.Identity.UpstreamTenant): with UserID the user's key. ""
	// for a user stored before it was kept, which takes the tenant of its
	// next login. Never in the Management API's user.
	UpstreamTenant string
	Blocked        bool
	LoginsCount    int
	LastLogin      *time.Time
	LastIP         string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// UserFilter narrows ListUsers. Empty fields do not filter.
type UserFilter struct {
	// Email matches case-insensitively: the whole address, or with
	// EmailPrefix its beginning.
	Email       string
	EmailPrefix bool
	Connection  string
	// SortBy orders the list by one of UserSortFields (created_at when
	// empty), descending with SortDesc; users without the field come last.
	SortBy   string
	SortDesc bool
}

// UserSortFields are the fields ListUsers can order by.
var UserSortFields = []string{"created_at", "updated_at", "last_login", "logins_count", "email"}

// UserStore persists users.
type UserStore interface {
	// UpsertUser creates u, or replaces every field but CreatedAt of the
	// existing user with the same UserID; it reports whether the user was
	// created. A replacement undoes whatever another writer stored since
	// u was read, so logins use RecordLogin and administrators PatchUser.
	UpsertUser(ctx context.Context, u *User) (created bool, err error)
	GetUser(ctx context.Context, userID string) (*User, error)
	ListUsers(ctx context.Context, f UserFilter, opts ListOptions) ([]*User, int, error)
	// PatchUser is an administrator's change: patch changes the stored
	// user, and its Blocked, RootAttributes, AppMetadata and UserMetadata
	// are written back with UpdatedAt set to now, with no other write to
	// the user in between. It returns the user as stored; ErrNotFound
	// when it does not exist, and patch's error, writing nothing.
	PatchUser(ctx context.Context, userID string, patch func(*User) error) (*User, error)
	DeleteUser(ctx context.Context, userID string) error
	// PurgeDeletedConnectionUsers deletes at most limit users, with their
	// refresh tokens, whose latest login went through a connection
	// deleted since (none who signed in after the deletion while a
	// connection of the name exists: one made again under it), and
	// forgets each deleted connection that has none left once no login
	// under way at its deletion can still store one. It reports how many
	// users it deleted and whether there may be more.
	PurgeDeletedConnectionUsers(ctx context.Context, limit int) (n int, more bool, err error)
}

// LogEvent is one tenant log entry (Auth0's log event). Doc is the Auth0
// JSON of the event; Type and Date are indexed.
type LogEvent struct {
	ID     string
	Type   string
	Date   time.Time
	UserID string
	Doc    json.RawMessage
}

// LogFilter narrows ListLogEvents. Empty fields do not filter.
type LogFilter struct {
	Type   string
	UserID string
	// OldestFirst reverses the newest-first order.
	OldestFirst bool
}

// LoginStore writes what a login changes.
type LoginStore interface {
	// RecordLogin stores a successful upstream login of u: what a login
	// owns — Connection, Email, Profile, IdPTokensEnc, LastLogin, LastIP,
	// and RootAttributes when rootAttributes is true or u is created (a
	// first login, or a user deleted since it was read) — with UpdatedAt set
	// to now and one more login in LoginsCount. Blocked and the metadata
	// are never written: a new user is created not blocked, without
	// metadata and with LoginsCount 1. u is then filled with the stored
	// user, so u.Blocked is the block in force when the login was stored.
	// e, when not nil, is appended in the same write (one statement, or
	// one group-commit job), but only when the user is not blocked. settlement,
	// when not nil, settles the login's attack protection in that write
	// too, blocked user or not (AttackStore's ClearLogin). A stored user
	// whose UpstreamTenant is set and is not u's, when u's is set, is not
	// written: RecordLogin then returns ErrUpstreamTenantMismatch, appends
	// no event, leaves u as it was and still applies settlement. A user
	// stored without one takes u's.
	RecordLogin(ctx context.Context, u *User, rootAttributes bool, e *LogEvent, settlement *LoginClear) error
}

// LogStore persists log events.
type LogStore interface {
	AppendLogEvent(ctx context.Context, e *LogEvent) error
	// ListLogEvents returns events newest first, or with f.OldestFirst
	// oldest first.
	ListLogEvents(ctx context.Context, f LogFilter, opts ListOptions) ([]*LogEvent, int, error)
	GetLogEvent(ctx context.Context, id string) (*LogEvent, error)
	// ListLogEventsAfter returns at most limit events stored after the
	// event afterID, in the order they were stored, up to (not including)
	// the first one dated loggedBefore or later; ErrNotFound when afterID
	// names no event.
	ListLogEventsAfter(ctx context.Context, afterID string, loggedBefore time.Time, limit int) ([]*LogEvent, error)
	// LogUserNames returns the distinct user_name fields of the user's
	// newest limit events of type eventType, newest first. The user's
	// other events do not count against limit; events purged by the log
	// retention are not found.
	LogUserNames(ctx context.Context, userID, eventType string, limit int) ([]string, error)
	// PurgeLogEvents deletes at most limit events dated before before,
	// oldest first, and reports how many it deleted.
	PurgeLogEvents(ctx context.Context, before time.Time, limit int) (int, error)
}

// ResourceServer is an API whose access tokens Gatehouse issues (Auth0's
// "resource server"); Identifier is the audience.
type ResourceServer struct {
	ID                                        string
	Identifier                                string
	Name                                      string
	Scopes                                    []ResourceServerScope
	SigningAlg                                string
	TokenLifetime                             int // seconds
	TokenLifetimeForWeb                       int // seconds
	AllowOfflineAccess                        bool
	SkipConsentForVerifiableFirstPartyClients bool
	CreatedAt                                 time.Time
	UpdatedAt                                 time.Time
}

// ResourceServerScope is one permission an API defines.
type ResourceServerScope struct {
	Value       string `json:"value"`
	Description string `json:"description,omitempty"`
}

// ResourceServerStore persists APIs.
type ResourceServerStore interface {
	// CreateResourceServer: ErrConflict when the identifier is taken.
	// Client grants left for the identifier by an earlier API of it go.
	CreateResourceServer(ctx context.Context, rs *ResourceServer) error
	GetResourceServer(ctx context.Context, id string) (*ResourceServer, error)
	GetResourceServerByIdentifier(ctx context.Context, identifier string) (*ResourceServer, error)
	ListResourceServers(ctx context.Context, opts ListOptions) ([]*ResourceServer, int, error)
	// UpdateResourceServer replaces every field but ID and Identifier. It
	// writes only while the stored API is the one rs was read as (its
	// UpdatedAt, which every write moves forward), else ErrConflict, as
	// UpdateClient does.
	UpdateResourceServer(ctx context.Context, rs *ResourceServer) error
	// DeleteResourceServer removes the API and the client grants for it.
	DeleteResourceServer(ctx context.Context, id string) error
}

// ClientGrant lets a machine-to-machine client obtain Scope of the API
// named by Audience with client_credentials.
type ClientGrant struct {
	ID        string
	ClientID  string
	Audience  string
	Scope     []string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ClientGrantFilter narrows ListClientGrants. Empty fields do not filter.
type ClientGrantFilter struct {
	ClientID string
	Audience string
}

// ClientGrantStore persists client grants.
type ClientGrantStore interface {
	// CreateClientGrant: ErrConflict when the client already has a grant
	// for the audience, ErrNotFound when the client does not exist.
	CreateClientGrant(ctx context.Context, g *ClientGrant) error
	GetClientGrant(ctx context.Context, id string) (*ClientGrant, error)
	// FindClientGrant is the hot-path lookup of client_credentials.
	FindClientGrant(ctx context.Context, clientID, audience string) (*ClientGrant, error)
	ListClientGrants(ctx context.Context, f ClientGrantFilter, opts ListOptions) ([]*ClientGrant, int, error)
	// UpdateClientGrant replaces Scope.
	UpdateClientGrant(ctx context.Context, g *ClientGrant) error
	DeleteClientGrant(ctx context.Context, id string) error
}

// RefreshToken is one issued refresh token. The token itself is
// "<ID>.<secret>"; only SHA-256(secret) is stored. Tokens issued by
// rotation share the FamilyID of the first one (its ID). A rotated token
// (RotatedAt set) is kept while the family lives, for reuse detection: its
// idle expiry no longer applies, and is cleared on rotation.
type RefreshToken struct {
	ID              string
	FamilyID        string
	SecretHash      []byte
	ClientID        string
	UserID          string
	Audience        string
	Scope           string
	Rotating        bool
	CreatedAt       time.Time
	ExpiresAt       *time.Time // absolute lifetime of the family; nil: infinite
	IdleExpiresAt   *time.Time // nil: infinite
	LastExchangedAt *time.Time
	RotatedAt       *time.Time
	InitialIP       string
	InitialUA       string
	LastIP          string
	LastUA          string
	// Connection is the connection the family was issued through; "" for
	// tokens stored before it was recorded.
	Connection string
	// TenantGeneration is the connection's TenantGeneration as the login
	// that started the family read it; 0 for tokens stored before it was
	// recorded.
	TenantGeneration int64
}

// RefreshExchange is one use of a refresh token.
type RefreshExchange struct {
	// ID names the presented token, already checked by the caller.
	ID  string
	Now time.Time
	// Leeway is how long after its rotation a token may still be
	// exchanged, for concurrent requests; only the latest rotated token
	// of the family qualifies. An exchange whose Now precedes the
	// rotation counts as concurrent with it. With no leeway a rotated
	// token is never exchanged again, whatever Now says.
	Leeway time.Duration
	// Next, for a rotating token, is the token that replaces it.
	Next *RefreshToken
	// Replace makes Next a token of the other rotation type, for a
	// client whose rotation setting changed since the presented token was
	// issued: instead of rotating it, the exchange deletes every token of
	// the presented token's rotation type, client, audience and user
	// (the presented one and, for rotating tokens, their whole families),
	// as Auth0 does when rotation is turned on or off.
	Replace bool
	// IdleExpiresAt, for a non-rotating token, is its new idle expiry.
	IdleExpiresAt *time.Time
	IP, UA        string
	// Log, when set, is stored with the exchange if it succeeds, in the
	// same transaction, and not at all if it does not.
	Log *LogEvent
}

// RefreshTokenFilter narrows ListRefreshTokens; UserID or ID is required,
// the other fields filter only when set.
type RefreshTokenFilter struct {
	UserID string
	// ID narrows the list to one token, so that what is shown by id is
	// what a user's list shows.
	ID       string
	ClientID string
	Rotating *bool
}

// ErrRefreshTokenReused: a rotated refresh token was presented after the
// leeway; the store has revoked its whole family.
var ErrRefreshTokenReused = errors.New("refresh token reused")

// RefreshTokenStore persists refresh tokens.
type RefreshTokenStore interface {
	CreateRefreshToken(ctx context.Context, rt *RefreshToken) error
	// GetRefreshToken returns the token, rotated or not.
	GetRefreshToken(ctx context.Context, id string) (*RefreshToken, error)
	// GetRefreshTokenWithUser returns the token, rotated or not, and its
	// user in one read.
	GetRefreshTokenWithUser(ctx context.Context, id string) (*RefreshToken, *User, error)
	// ExchangeRefreshToken uses a token atomically: it rotates it (stores
	// ex.Next) or extends its idle expiry. ErrNotFound when it is unknown,
	// revoked or expired; ErrRefreshTokenReused (family revoked) when it
	// was rotated before and may not be reused.
	ExchangeRefreshToken(ctx context.Context, ex RefreshExchange) error
	// RefreshTokenReused reports, changing nothing, whether an exchange
	// of the token at now with leeway would be reuse: it was rotated and
	// may not be exchanged again (see RefreshExchange.Leeway).
	// ErrNotFound when it is unknown or revoked.
	RefreshTokenReused(ctx context.Context, id string, now time.Time, leeway time.Duration) (bool, error)
	// ListRefreshTokens returns a user's usable tokens, oldest first: the
	// latest of each rotation family, or its latest two or more when it
	// was exchanged again within the leeway.
	ListRefreshTokens(ctx context.Context, f RefreshTokenFilter, opts ListOptions) ([]*RefreshToken, int, error)
	// RevokeRefreshTokenFamily deletes the family familyID (the ID of its
	// first token, whether or not that token is still stored);
	// ErrNotFound when it has no token. An exchange of the family's token
	// that runs concurrently either completes first, its new token
	// deleted with the family, or fails with ErrNotFound: no token of the
	// family is usable once it returns.
	RevokeRefreshTokenFamily(ctx context.Context, familyID string) error
	// RevokeUserRefreshTokens deletes every refresh token of a user, with
	// the guarantee of RevokeRefreshTokenFamily for each family.
	RevokeUserRefreshTokens(ctx context.Context, userID string) (int, error)
	// PurgeExpiredRefreshTokens deletes at most limit expired tokens and
	// reports how many it deleted. A rotated token is purged only with
	// its family: once the family's absolute expiry has passed, or once
	// none of its tokens that were not rotated can be exchanged any more.
	PurgeExpiredRefreshTokens(ctx context.Context, now time.Time, limit int) (int, error)
	// PurgeDeletedOwnerTokens finishes the deletions of users, clients
	// and connections whose refresh tokens a deletion that was cut short
	// (a crash) left: their tokens are refused already, and it deletes at
	// most limit of them, then each owner that has none left. It reports
	// how many tokens and owners it deleted and whether there may be more.
	PurgeDeletedOwnerTokens(ctx context.Context, limit int) (n int, more bool, err error)
}

// Kinds of attack-protection counters.
const (
	// AttackBruteForce counts failed logins of an identifier (from one IP,
	// or from all when IP is empty): Auth0 brute-force protection.
	AttackBruteForce = "brute_force"
	// AttackUpstreamBudget counts a user's failed logins across all IPs,
	// so that Gatehouse stops before the upstream locks the account.
	AttackUpstreamBudget = "upstream_budget"
)

// AttackCounter names one failure counter. Identifier is the login name
// as the caller normalized it; IP is empty for counters across all IPs.
type AttackCounter struct {
	Kind       string
	Connection string
	Identifier string
	IP         string
	// Attempts and UpdatedAt are filled by ListAttackCounters.
	Attempts  int
	UpdatedAt time.Time
}

// LoginTake is what TakeLogin takes: one token from Bucket unless it is
// empty, then one attempt on each counter. Counters are in key order
// (identifier, kind, connection, ip), the order writers lock them in.
type LoginTake struct {
	Bucket   string
	Burst    int
	Interval time.Duration
	Counters []CounterTake
	Now      time.Time
	// Users, when set, asks for the users it names too, for a store that
	// can read them in the take's own round trip: a login that succeeds
	// then needs no read of its own once the upstream names its user. A
	// store may ignore it (LoginTaken.Users stays nil).
	Users *UsersByEmail
}

// UsersByEmail names the users of Connection whose email, lower-cased, is
// Email.
type UsersByEmail struct {
	Connection string
	Email      string
}

// LoginClear settles a successful login on Connection: Identifier's
// counters of that connection under IP (the address key the login came
// from) and under no IP (counted across addresses) go and, when Bucket is
// set, one token comes back to it. Counters under other addresses stay:
// as at Auth0, a block holds "that identifier from that IP", and a
// success elsewhere lifting it would give an attacker's address another
// round of guesses each time the user signs in.
type LoginClear struct {
	Connection string
	Identifier string
	IP         string
	Bucket     string
	Interval   time.Duration
}

// CounterTake is one counter of a LoginTake, with TakeAttempt's limit and
// expiry. A full counter with Block refuses the attempt: the counters
// taken before it are given back and nothing after it is taken. A full
// counter without Block is passed over.
type CounterTake struct {
	Counter      AttackCounter
	Limit        int
	ExpireBefore time.Time
	Block        bool
}

// LoginTaken is TakeLogin's outcome. When the bucket was empty nothing
// else was taken: TokenRefused is set, Left and Next are TakeToken's.
// Otherwise Refused is the index of the counter that refused, or -1, and
// Counted says which counters hold the attempt.
type LoginTaken struct {
	TokenRefused bool
	Left         int
	Next         time.Time
	Refused      int
	Counted      []bool
	// Users are LoginTake.Users as they were when the take was made, at
	// most MaxUsersByEmail of them, or nil when the store did not read
	// them. Fewer than the limit found is no proof that a user does not
	// exist: it may have another email now.
	Users []*User
}

// MaxUsersByEmail bounds LoginTaken.Users: one email is nearly always one
// user, and a take must stay small.
const MaxUsersByEmail = 4

// AttackStore keeps attack-protection counters, IP throttles and
// settings. Every allow-or-refuse decision is one statement in the
// database, so parallel attempts cannot overrun a limit.
type AttackStore interface {
	// TakeAttempt counts one attempt on c unless it already holds limit
	// attempts; a counter last touched before expireBefore starts over. It
	// reports whether the attempt was counted and may proceed.
	TakeAttempt(ctx context.Context, c AttackCounter, limit int, now, expireBefore time.Time) (bool, error)
	// ReturnAttempt takes back one counted attempt whose outcome proved
	// nothing about the password.
	ReturnAttempt(ctx context.Context, c AttackCounter) error
	// ListAttackCounters returns the counters of identifier (every kind,
	// connection and IP) touched at or after since.
	ListAttackCounters(ctx context.Context, identifier string, since time.Time) ([]AttackCounter, error)
	// DeleteAttackCounters removes the counters of identifier on
	// connection, or on every connection when connection is ""; with
	// kinds, only those kinds. It returns how many it removed.
	DeleteAttackCounters(ctx context.Context, connection, identifier string, kinds ...string) (int, error)
	// TakeToken takes one token from the bucket key, which holds burst
	// tokens and regains one every interval. When the bucket is empty it
	// refuses and reports when the next token comes; either way it
	// reports the tokens left.
	TakeToken(ctx context.Context, key string, burst int, interval time.Duration, now time.Time) (ok bool, left int, next time.Time, err error)
	// ReturnToken puts one token back into the bucket key.
	ReturnToken(ctx context.Context, key string, interval time.Duration) error
	// AttackBucket returns the bucket key's theoretical arrival time
	// (TakeToken's GCRA timestamp), or the zero time when none is kept.
	AttackBucket(ctx context.Context, key string) (time.Time, error)
	// DeleteAttackBucket refills the bucket key; it reports whether one
	// was kept.
	DeleteAttackBucket(ctx context.Context, key string) (bool, error)
	// TakeLogin takes what one login attempt needs before going upstream,
	// as TakeToken then TakeAttempt on each counter in order would, in one
	// write (one transaction where that is what writes cost).
	TakeLogin(ctx context.Context, t LoginTake) (LoginTaken, error)
	// ClearLogin settles a successful login (LoginClear).
	ClearLogin(ctx context.Context, c LoginClear) error
	// GetAttackSettings returns the settings document name, or nil when
	// none was stored.
	GetAttackSettings(ctx context.Context, name string) (json.RawMessage, error)
	// PutAttackSettings replaces the document name with doc while the
	// stored one is still read, as GetAttackSettings returned it (nil:
	// none stored), else ErrConflict: the caller reads it again, so that
	// two read-modify-writes never undo each other.
	PutAttackSettings(ctx context.Context, name string, read, doc json.RawMessage) error
	// PruneAttack deletes at most limit counters last touched before
	// countersBefore and at most limit buckets that are full again at now
	// (a full bucket is the same as none), in one short transaction. It
	// returns how many rows it removed; fewer than limit of each means
	// nothing is left to prune.
	PruneAttack(ctx context.Context, countersBefore, now time.Time, limit int) (int, error)
}

// Additional data that binds each sealed field to its owner, so that a
// ciphertext copied into another row does not open.

// ClientSecretAAD is the additional data of Client.SecretEnc.
func ClientSecretAAD(clientID string) []byte { return []byte("client_secret:" + clientID) }

// ConnectionSecretAAD is the additional data of Connection.SecretEnc.
func ConnectionSecretAAD(connectionID string) []byte {
	return []byte("connection_secret:" + connectionID)
}

// SigningKeyAAD is the additional data of SigningKey.PrivateEnc.
func SigningKeyAAD(kid string) []byte { return []byte("signing_key:" + kid) }

// UserIdPTokensAAD is the additional data of User.IdPTokensEnc.
func UserIdPTokensAAD(userID string) []byte { return []byte("idp_tokens:" + userID) }

// ClientCredential is a public key a client signs its private_key_jwt
// client assertions with (Auth0's credential_type "public_key"). PEM is
// as the admin gave it: a public key or an X.509 certificate.
type ClientCredential struct {
	ID             string
	ClientID       string
	Name           string
	CredentialType string
	KID            string
	Alg            string
	PEM            string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	ExpiresAt      *time.Time // nil: never
}

// ClientCredentialStore persists client credentials and the client
// assertions already used.
type ClientCredentialStore interface {
	// CreateClientCredential stores cr; ErrNotFound when its client does
	// not exist, ErrConflict when its ID does.
	CreateClientCredential(ctx context.Context, cr *ClientCredential) error
	// ListClientCredentials returns a client's credentials, oldest first.
	ListClientCredentials(ctx context.Context, clientID string) ([]*ClientCredential, error)
	GetClientCredential(ctx context.Context, clientID, id string) (*ClientCredential, error)
	// UpdateClientCredential replaces ExpiresAt and sets UpdatedAt to now.
	UpdateClientCredential(ctx context.Context, cr *ClientCredential) error
	DeleteClientCredential(ctx context.Context, clientID, id string) error
	// UseClientAssertion records that the client used the assertion jti,
	// which expires at expiresAt; ErrConflict when it was used before.
	UseClientAssertion(ctx context.Context, clientID, jti string, expiresAt time.Time) error
	// PurgeClientAssertions deletes at most limit records of assertions
	// expired before before, and reports how many it deleted.
	PurgeClientAssertions(ctx context.Context, before time.Time, limit int) (int, error)
}
