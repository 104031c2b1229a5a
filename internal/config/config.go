package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/gatehouse/gatehouse/internal/connection/azuread"
	"github.com/gatehouse/gatehouse/internal/secrets"
)

// Config is the whole configuration of `gatehouse serve`.
type Config struct {
	Addr string
	// MetricsAddr, when set, is where GET /metrics is served, apart from
	// the public listener.
	MetricsAddr       string
	Issuer            string
	Database          string
	TLSCert           string
	TLSKey            string
	AdminClientID     string
	AdminClientSecret string
	SecretKey         string
	// SecretKeyOld holds previous master keys, comma-separated: secrets
	// sealed under them still open while a rotation is under way.
	SecretKeyOld string
	LogFormat    string
	LogLevel     string
	// TrustedProxies are the peers whose X-Forwarded-For and X-Request-Id
	// are believed.
	TrustedProxies []netip.Prefix
	// UpstreamHosts are base URLs (scheme://host[:port], normalised) that
	// waad connections may name in authority_host and graph_host besides
	// Microsoft's own: a connection's hosts receive its client secret and
	// its users' passwords, so the operator decides them, not the
	// Management API.
	UpstreamHosts []string
	// ManagementTokenLifetime is the lifetime of Management API access tokens.
	ManagementTokenLifetime time.Duration
	// KeyRotation is how long a signing key stays current before it is
	// rotated automatically; 0 disables scheduled rotation.
	KeyRotation time.Duration
	// LogRetention is how long tenant log events are kept before the
	// background purge deletes them; 0 keeps them forever.
	LogRetention    time.Duration
	ShutdownTimeout time.Duration

	// setBy maps the environment name of each setting the operator gave
	// to what gave it, the variable or the flag, so that an error names
	// what the operator typed and SetBy tells a choice from a default.
	setBy map[string]string
}

// setting describes one configuration value: its flag, its environment
// variable and where it lands in Config.
type setting struct {
	flag, env, def, usage string
	set                   func(c *Config, v string) error
}

func str(dst func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *dst(c) = v; return nil }
}

func duration(dst func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
			// Beyond this many seconds a Duration wraps around, and may
			// land on a value the range checks accept.
			if secs > math.MaxInt64/int64(time.Second) || secs < math.MinInt64/int64(time.Second) {
				return fmt.Errorf("out of range: %q", v)
			}
			*dst(c) = time.Duration(secs) * time.Second
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("not a duration (e.g. 86400 or 24h): %q", v)
		}
		*dst(c) = d
		return nil
	}
}

var settings = []setting{
	{"addr", "GATEHOUSE_ADDR", "127.0.0.1:8080", "listen address", str(func(c *Config) *string { return &c.Addr })},
	{"metrics-addr", "GATEHOUSE_METRICS_ADDR", "", "listen address of GET /metrics (Prometheus); empty: no metrics", str(func(c *Config) *string { return &c.MetricsAddr })},
	{"issuer", "GATEHOUSE_ISSUER", "", "public base URL ending in / (default derived from the address)", str(func(c *Config) *string { return &c.Issuer })},
	{"database", "GATEHOUSE_DATABASE", "sqlite:gatehouse.db", "sqlite:<path> or a postgres:// DSN", str(func(c *Config) *string { return &c.Database })},
	{"tls-cert", "GATEHOUSE_TLS_CERT", "", "PEM certificate file; with --tls-key, serve HTTPS only", str(func(c *Config) *string { return &c.TLSCert })},
	{"tls-key", "GATEHOUSE_TLS_KEY", "", "PEM private key file", str(func(c *Config) *string { return &c.TLSKey })},
	{"admin-client-id", "GATEHOUSE_ADMIN_CLIENT_ID", "", "client id of the bootstrap Management API application", str(func(c *Config) *string { return &c.AdminClientID })},
	{"", "GATEHOUSE_ADMIN_CLIENT_SECRET", "", "", str(func(c *Config) *string { return &c.AdminClientSecret })},
	{"", "GATEHOUSE_SECRET_KEY", "", "", str(func(c *Config) *string { return &c.SecretKey })},
	{"", "GATEHOUSE_SECRET_KEY_OLD", "", "", str(func(c *Config) *string { return &c.SecretKeyOld })},
	{"log-format", "GATEHOUSE_LOG_FORMAT", "text", "log format: text or json", str(func(c *Config) *string { return &c.LogFormat })},
	{"log-level", "GATEHOUSE_LOG_LEVEL", "info", "log level: debug, info, warn or error", str(func(c *Config) *string { return &c.LogLevel })},
	{"trusted-proxies", "GATEHOUSE_TRUSTED_PROXIES", "", "comma-separated CIDRs whose X-Forwarded-For and X-Request-Id are trusted", func(c *Config, v string) error {
		c.TrustedProxies = nil
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			p, err := netip.ParsePrefix(part)
			if err != nil {
				a, aerr := netip.ParseAddr(part)
				if aerr != nil {
					return fmt.Errorf("not a CIDR or IP address: %q", part)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			// Peers are compared unmapped (attack.ClientIP), so an
			// IPv4-mapped entry kept as written would never match, and every
			// user behind the proxy would be counted as the proxy.
			if a := p.Addr(); a.Is4In6() && p.Bits() >= 128-32 {
				p = netip.PrefixFrom(a.Unmap(), p.Bits()-(128-32))
			}
			c.TrustedProxies = append(c.TrustedProxies, p.Masked())
		}
		return nil
	}},
	{"upstream-hosts", "GATEHOUSE_UPSTREAM_HOSTS", "", "comma-separated base URLs (scheme://host[:port]) that connections may use as authority_host or graph_host besides Microsoft's", func(c *Config, v string) error {
		c.UpstreamHosts = nil
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			// An egress proxy's credentials typed into the URL: refused
			// without repeating them, which BaseURL's error would.
			if strings.Contains(part, "@") {
				return fmt.Errorf("%q must be scheme://host[:port], without a user or password", redactURL(part))
			}
			n, err := azuread.BaseURL(part)
			if err != nil {
				return err
			}
			if !slices.Contains(c.UpstreamHosts, n) {
				c.UpstreamHosts = append(c.UpstreamHosts, n)
			}
		}
		return nil
	}},
	{"management-token-lifetime", "GATEHOUSE_MANAGEMENT_TOKEN_LIFETIME", "86400", "lifetime of Management API access tokens (seconds or Go duration)", duration(func(c *Config) *time.Duration { return &c.ManagementTokenLifetime })},
	{"key-rotation", "GATEHOUSE_KEY_ROTATION", "0", "rotate the signing key after it has been current this long (seconds or Go duration; 0: never)", duration(func(c *Config) *time.Duration { return &c.KeyRotation })},
	{"log-retention", "GATEHOUSE_LOG_RETENTION", "720h", "how long tenant log events are kept (seconds or Go duration; 0: forever)", duration(func(c *Config) *time.Duration { return &c.LogRetention })},
	{"shutdown-timeout", "GATEHOUSE_SHUTDOWN_TIMEOUT", "20s", "how long in-flight requests may take to finish on SIGTERM", duration(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
}

// Secrets are deliberately not flags: a flag shows in `ps` and shell history.

// BindFlags registers a flag for every setting that may be given on the
// command line. The flags carry no defaults of their own; Load decides.
func BindFlags(fs *pflag.FlagSet) {
	for _, s := range settings {
		if s.flag == "" {
			continue
		}
		fs.String(s.flag, "", fmt.Sprintf("%s [$%s, default %q]", s.usage, s.env, s.def))
	}
}

// Load builds the configuration: defaults, then the environment, then flags
// that were set explicitly. It validates the result.
func Load(fs *pflag.FlagSet, getenv func(string) string) (*Config, error) {
	c := &Config{}
	var errs []error
	for _, s := range settings {
		v, name, given := s.def, s.env, false
		if e := getenv(s.env); e != "" {
			v, given = e, true
		}
		if fs != nil && s.flag != "" {
			if f := fs.Lookup(s.flag); f != nil && f.Changed {
				v, name, given = f.Value.String(), "--"+s.flag, true
			}
		}
		if given {
			if c.setBy == nil {
				c.setBy = map[string]string{}
			}
			c.setBy[s.env] = name
		}
		if s.flag == "database" && name == "--database" && DSNHasPassword(v) {
			errs = append(errs, errors.New(DatabaseFlagPassword))
			continue
		}
		if err := s.set(c, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// DatabaseFlagPassword is the error for a --database DSN that holds a
// password; it never repeats the DSN.
const DatabaseFlagPassword = "--database: the DSN holds a password, and a flag shows in `ps` and shell history: give the DSN in GATEHOUSE_DATABASE, or the password in PGPASSWORD or ~/.pgpass"

// DSNHasPassword reports whether a postgres:// DSN carries a password, in
// its user info or as a password parameter.
func DSNHasPassword(dsn string) bool {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return false
	}
	u, err := url.Parse(dsn)
	if err != nil {
		// Unparsable: assume the worst rather than let it through.
		return strings.Contains(dsn, "@") || strings.Contains(strings.ToLower(dsn), "password")
	}
	if _, ok := u.User.Password(); ok {
		return true
	}
	return u.Query().Has("password")
}

// sameListener reports whether two host:port addresses would bind the same
// port on an address they share: the same port, and the same host or
// either one every address (empty, 0.0.0.0 or ::). Port 0 picks a free
// port, so it never collides.
func sameListener(a, b string) bool {
	ha, pa, erra := net.SplitHostPort(a)
	hb, pb, errb := net.SplitHostPort(b)
	if erra != nil || errb != nil || pa != pb || pa == "0" {
		return false
	}
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wildcard(ha) || wildcard(hb)
}

// Validate checks every setting and names the one at fault.
func (c *Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		if f, ok := c.setBy[name]; ok {
			name = f
		}
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("GATEHOUSE_ADDR", "not a host:port address: %q", c.Addr)
	}
	if _, _, err := net.SplitHostPort(c.MetricsAddr); c.MetricsAddr != "" && err != nil {
		bad("GATEHOUSE_METRICS_ADDR", "not a host:port address: %q", c.MetricsAddr)
	} else if c.MetricsAddr != "" && sameListener(c.Addr, c.MetricsAddr) {
		// It would fail to bind anyway; said so, the operator is not left
		// wondering whether metrics went onto the public address.
		bad("GATEHOUSE_METRICS_ADDR", "must be another address than GATEHOUSE_ADDR (%q): metrics are never served on the public listener", c.Addr)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("GATEHOUSE_TLS_CERT", "GATEHOUSE_TLS_CERT and GATEHOUSE_TLS_KEY must be set together")
	}
	for name, path := range map[string]string{"GATEHOUSE_TLS_CERT": c.TLSCert, "GATEHOUSE_TLS_KEY": c.TLSKey} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			bad(name, "cannot read %q: %v", path, err)
		}
	}
	if c.Issuer == "" && len(errs) == 0 {
		c.Issuer = c.defaultIssuer()
	}
	if c.Issuer != "" {
		u, err := url.Parse(c.Issuer)
		// A refused issuer may hold a password or a key pasted with it,
		// and the error goes to a terminal or a log: it is shown without
		// user info, query and fragment, and not at all when it does not
		// parse. Once those are refused, the value is shown as typed.
		switch {
		case err != nil:
			bad("GATEHOUSE_ISSUER", "must be an absolute http(s) URL")
		case u.User != nil:
			// The issuer is published in discovery and in every token.
			bad("GATEHOUSE_ISSUER", "must not hold a user or password")
		case u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			bad("GATEHOUSE_ISSUER", "must be an absolute http(s) URL, got %q", redactURL((&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()))
		case u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(c.Issuer, "?#"):
			bad("GATEHOUSE_ISSUER", "must not have a query or fragment")
		case !strings.HasSuffix(c.Issuer, "/"):
			bad("GATEHOUSE_ISSUER", "must end in /, got %q", c.Issuer)
		case !isCanonicalIssuer(c.Issuer, u):
			// Relying parties compare iss and the Management API audience
			// byte for byte with what they were configured with.
			bad("GATEHOUSE_ISSUER", "must be in canonical form (lower-case scheme and host, a port up to 65535, a percent-encoded path without empty, . or .. segments), got %q", c.Issuer)
		case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
			bad("GATEHOUSE_ISSUER", "http:// is allowed only for loopback hosts; use https:// for %q", u.Host)
		}
	}
	switch {
	case strings.HasPrefix(c.Database, "sqlite:"):
		if strings.TrimPrefix(c.Database, "sqlite:") == "" {
			bad("GATEHOUSE_DATABASE", "sqlite: needs a file path, e.g. sqlite:gatehouse.db")
		}
	case strings.HasPrefix(c.Database, "postgres://"), strings.HasPrefix(c.Database, "postgresql://"):
		if c.SecretKey == "" {
			bad("GATEHOUSE_SECRET_KEY", "required with PostgreSQL: every replica must share the master key")
		}
	default:
		bad("GATEHOUSE_DATABASE", "must start with sqlite: or postgres://")
	}
	// Parsed here as well as where they are used, so that a malformed key
	// stops the start before the database is created or migrated (and,
	// for a malformed old key, before a key file is generated); the errors
	// never repeat a key.
	if c.SecretKey != "" {
		if _, err := secrets.ParseMasterKey(c.SecretKey); err != nil {
			bad("GATEHOUSE_SECRET_KEY", "%v", err)
		}
	}
	if _, err := secrets.ParseMasterKeys(c.SecretKeyOld); err != nil {
		bad("GATEHOUSE_SECRET_KEY_OLD", "%v", err)
	}
	if (c.AdminClientID == "") != (c.AdminClientSecret == "") {
		bad("GATEHOUSE_ADMIN_CLIENT_ID", "GATEHOUSE_ADMIN_CLIENT_ID and GATEHOUSE_ADMIN_CLIENT_SECRET must be set together")
	}
	if c.AdminClientSecret != "" && len(c.AdminClientSecret) < 32 {
		bad("GATEHOUSE_ADMIN_CLIENT_SECRET", "must be at least 32 characters")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("GATEHOUSE_LOG_FORMAT", "must be text or json, got %q", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("GATEHOUSE_LOG_LEVEL", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.ManagementTokenLifetime < time.Minute || c.ManagementTokenLifetime > 30*24*time.Hour {
		bad("GATEHOUSE_MANAGEMENT_TOKEN_LIFETIME", "must be between 60s and 30 days")
	}
	if c.KeyRotation != 0 && c.KeyRotation < time.Hour {
		bad("GATEHOUSE_KEY_ROTATION", "must be 0 (never) or at least 1h")
	}
	if c.LogRetention != 0 && c.LogRetention < time.Hour {
		bad("GATEHOUSE_LOG_RETENTION", "must be 0 (keep forever) or at least 1h")
	}
	if c.ShutdownTimeout <= 0 {
		bad("GATEHOUSE_SHUTDOWN_TIMEOUT", "must be positive")
	}
	return errors.Join(errs...)
}

// SetBy names what gave the setting whose environment variable is env:
// its flag (e.g. "--database") or env itself; "" when it is the default.
func (c *Config) SetBy(env string) string { return c.setBy[env] }

// TLS reports whether Gatehouse serves HTTPS.
func (c *Config) TLS() bool { return c.TLSCert != "" }

// SQLitePath is the database file of the embedded default, or "".
func (c *Config) SQLitePath() string {
	if p, ok := strings.CutPrefix(c.Database, "sqlite:"); ok {
		return p
	}
	return ""
}

// SecretKeyFile is where the embedded default keeps its generated master key.
func (c *Config) SecretKeyFile() string {
	p := c.SQLitePath()
	return filepath.Join(filepath.Dir(p), filepath.Base(p)+".key")
}

func (c *Config) defaultIssuer() string { return DefaultIssuer(c.Addr, c.TLS()) }

// DefaultIssuer is the issuer of a server listening on addr without
// GATEHOUSE_ISSUER: a wildcard host is reached as localhost.
func DefaultIssuer(addr string, tls bool) string {
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/"
}

// isCanonicalIssuer reports whether raw, parsed as u, is spelled as URL
// normalisation would leave it: a client that normalises its configured
// issuer would otherwise refuse every token.
func isCanonicalIssuer(raw string, u *url.URL) bool {
	// u.String() escapes what the path leaves unescaped (a space, raw
	// UTF-8) and lower-cases the scheme, but keeps the host's case.
	if u.String() != raw || u.Host != strings.ToLower(u.Host) {
		return false
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n > 65535 {
			return false
		}
	}
	if p := u.EscapedPath(); p != "/" {
		for _, seg := range strings.Split(strings.TrimSuffix(strings.TrimPrefix(p, "/"), "/"), "/") {
			if seg, err := url.PathUnescape(seg); err != nil || seg == "" || seg == "." || seg == ".." {
				return false
			}
		}
	}
	return true
}

// redactURL is raw as an error may show it: a password typed into a URL
// setting must not reach the logs that collect stderr.
func redactURL(raw string) string {
	if !strings.Contains(raw, "@") {
		return raw
	}
	// Redacted hides only a password it parsed as one: a URL typed
	// without "//" keeps its user info in the opaque part or the path.
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		return u.Redacted()
	}
	return "(not shown: it may hold a password)"
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}
