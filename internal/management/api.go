package management

import (
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/connection"
	"github.com/gatehouse/gatehouse/internal/connection/azuread"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Store is what the Management API reads and writes.
type Store interface {
	store.ClientStore
	store.ConnectionStore
	store.SettingsStore
	store.UserStore
	store.LogStore
	store.KeyStore
	store.ResourceServerStore
	store.ClientGrantStore
	store.RefreshTokenStore
	store.ClientCredentialStore
}

// Sealer seals and opens secrets at rest.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(ciphertext, aad []byte) ([]byte, error)
}

// Config is what an API is built from.
type Config struct {
	Issuer  string
	Store   Store
	Secrets Sealer
	Verify  VerifyFunc
	// Keys rotates and revokes signing keys.
	Keys   KeyRotator
	Logger *slog.Logger
	// Attack keeps the attack-protection settings and user blocks.
	Attack AttackProtection
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Connectors serve POST /api/v2/connections/{id}/try.
	Connectors connection.Registry
	// UpstreamHosts are the hosts a waad connection may send credentials
	// to; nil allows Microsoft's only.
	UpstreamHosts *azuread.UpstreamHosts
	// Audit records every write as a tenant log event; none when nil.
	Audit *audit.Recorder
	// TrustedProxies are the peers whose X-Forwarded-For names the
	// caller, whose address attack protection counts `try` attempts under.
	TrustedProxies []netip.Prefix
}

// API serves /api/v2/.
type API struct {
	issuer  string
	store   Store
	secrets Sealer
	verify  VerifyFunc
	keys    KeyRotator
	logger  *slog.Logger
	attack  AttackProtection
	now     func() time.Time

	connectors connection.Registry
	hosts      *azuread.UpstreamHosts
	audit      *audit.Recorder
	proxies    []netip.Prefix
}

// New builds the Management API.
func New(cfg Config) *API {
	a := &API{issuer: cfg.Issuer, store: cfg.Store, secrets: cfg.Secrets, verify: cfg.Verify, logger: cfg.Logger, now: cfg.Now, connectors: cfg.Connectors, hosts: cfg.UpstreamHosts, attack: cfg.Attack, audit: cfg.Audit, proxies: cfg.TrustedProxies}
	a.keys = cfg.Keys
	if a.now == nil {
		a.now = time.Now
	}
	if a.logger == nil {
		a.logger = slog.Default()
	}
	return a
}

// Register adds the Management API routes to mux. Each route names the
// scope it needs.
func (a *API) Register(mux *http.ServeMux) {
	a.routes(func(pattern, scope string, h http.HandlerFunc) {
		mux.Handle(pattern, limitBody(a.requireScope(scope, a.audited(pattern, textOnly(includeFieldsBool(h))))))
	})
	// Unknown /api/v2 paths answer in the API's own error format. This
	// pattern matches every method, so the mux never answers 405 itself:
	// a path served for other methods is told apart here.
	mux.HandleFunc(catchAll, func(w http.ResponseWriter, r *http.Request) {
		if allow := allowedMethods(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			WriteError(w, &Error{Status: http.StatusMethodNotAllowed, Message: "Method Not Allowed"})
			return
		}
		WriteError(w, NotFound("Not Found", ""))
	})
}

const catchAll = "/api/v2/"

// allowedMethods returns the methods that some route serves at r's path.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		// A GET route serves HEAD too, and names its GET pattern for it.
		if _, pattern := mux.Handler(probe); pattern != catchAll && pattern != "" {
			allow = append(allow, m)
		}
	}
	return allow
}

// routes hands every route, with the scope it needs, to route.
func (a *API) routes(route routeFunc) {
	// One line per resource; each resource file owns its routes.
	a.tenantSettingsRoutes(route)
	a.userRoutes(route)
	a.logRoutes(route)
	a.connectionTryRoutes(route)
	a.clientRoutes(route)
	a.connectionRoutes(route)
	a.attackProtectionRoutes(route)
	a.userBlockRoutes(route)
	a.anomalyBlockRoutes(route)
	a.resourceServerRoutes(route)
	a.clientGrantRoutes(route)
	a.signingKeyRoutes(route)
	a.refreshTokenRoutes(route)
	a.deviceCredentialRoutes(route)
	a.clientCredentialRoutes(route)
}

// routeFunc registers a handler for a pattern that requires scope: one
// scope, or several separated by spaces that are all required.
type routeFunc func(pattern, scope string, h http.HandlerFunc)

// maxBodyBytes is Auth0's Management API payload limit (1 MB).
const maxBodyBytes = 1 << 20

func limitBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		h.ServeHTTP(w, r)
	})
}

// includeFieldsBool refuses an include_fields other than true or false
// before filterFields reads it, as Auth0 refuses a parameter that is not
// a boolean: read as true, include_fields=False (Python's spelling) or 0
// would answer only the fields the caller meant to leave out.
func includeFieldsBool(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := queryBool(r, "include_fields"); err != nil {
			WriteError(w, err)
			return
		}
		h(w, r)
	}
}

// textOnly refuses a path or query string that is not UTF-8 text or
// holds a NUL before h reads it: such an id names nothing, and PostgreSQL
// cannot even compare it, which would turn bad input into a 500 (bodies
// are checked where they are read, readJSONBody).
func textOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !isText(r.URL.Path) {
			WriteError(w, NotFound("Not Found", ""))
			return
		}
		for k, vs := range r.URL.Query() {
			if !isText(k) || slices.ContainsFunc(vs, func(v string) bool { return !isText(v) }) {
				WriteError(w, BadQuery("Query validation error: 'Query parameters must be UTF-8 text without NUL characters'."))
				return
			}
		}
		h(w, r)
	}
}

// isText reports whether s is UTF-8 without NUL.
func isText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}
