package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/attack"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/connection"
	"github.com/gatehouse/gatehouse/internal/connection/azuread"
	"github.com/gatehouse/gatehouse/internal/entra"
	"github.com/gatehouse/gatehouse/internal/management"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/oauth"
	"github.com/gatehouse/gatehouse/internal/secrets"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/cache"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/tokens"
)

// Server is a configured Gatehouse, ready to serve.
type Server struct {
	cfg    *config.Config
	logger *slog.Logger
	store  *sqlstore.Store
	// writes is store's writes that clear the cache, here and on other
	// replicas, for the background jobs that delete clients or
	// connections.
	writes  *cache.Writes
	keys    *tokens.Keys
	guard   *attack.Guard
	handler http.Handler
	metrics *metrics.Registry // nil without GATEHOUSE_METRICS_ADDR
	// stopListening ends the listener that clears the cache on other
	// replicas' writes; listening is closed once it has returned.
	stopListening context.CancelFunc
	listening     chan struct{}
}

// New opens the database, migrates it, unseals the keys and builds the
// handlers. When it generates the admin application, notice is told its
// client id and the file that holds its secret.
func New(ctx context.Context, cfg *config.Config, logger *slog.Logger, notice io.Writer, opts ...Option) (*Server, error) {
	st, err := sqlstore.Open(ctx, cfg.Database, logger)
	if err != nil {
		return nil, fmt.Errorf("server: open database: %w", err)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	s, err := build(ctx, cfg, logger, notice, st, o)
	if err != nil {
		st.Close()
		return nil, err
	}
	return s, nil
}

// Option adjusts what New builds beyond the configuration.
type Option func(*options)

type options struct {
	entra entra.Options
}

// WithEntraOptions sets the options of the Entra client, e.g. a small
// Graph page size in tests.
func WithEntraOptions(o entra.Options) Option {
	return func(opts *options) { opts.entra = o }
}

func build(ctx context.Context, cfg *config.Config, logger *slog.Logger, notice io.Writer, st *sqlstore.Store, o options) (*Server, error) {
	if err := st.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("server: migrate: %w", err)
	}
	keyring, err := loadKeyring(ctx, cfg, st, logger)
	if err != nil {
		return nil, err
	}
	keys, err := tokens.NewKeys(ctx, st, keyring, logger)
	if err != nil {
		if errors.Is(err, secrets.ErrWrongKey) && cfg.SecretKey == "" {
			return nil, fmt.Errorf("server: the master key file %s does not match the key that sealed this database's secrets (this key's id is %s): restore the key file saved with the database, or set GATEHOUSE_SECRET_KEY to that key: %w", cfg.SecretKeyFile(), keyring.KeyID(), err)
		}
		if errors.Is(err, secrets.ErrWrongKey) {
			return nil, fmt.Errorf("server: GATEHOUSE_SECRET_KEY does not match the key that sealed this database's secrets (this key's id is %s): %w", keyring.KeyID(), err)
		}
		return nil, fmt.Errorf("server: signing keys: %w", err)
	}
	if err := keys.EnsureNext(ctx); err != nil {
		return nil, fmt.Errorf("server: signing keys: %w", err)
	}
	// The token endpoint reads clients, connections, APIs and settings
	// through a short-lived cache; the Management API reads the database
	// and its writes clear the cache, here and, through the database's
	// notifications, on other replicas (started below, once nothing can
	// fail). The admin application written at start is announced the same
	// way: replicas already running have it cached.
	c := cache.New(cache.DefaultTTL, nil)
	hot, writes := c.Reads(st), c.Writes(st)
	if err := bootstrapAdmin(ctx, cfg, writes, keyring, logger, notice); err != nil {
		return nil, err
	}
	mgmtAudience := oauth.ManagementAudience(cfg.Issuer)
	// One Entra client for the process: its transport and key cache are
	// sized to be shared by every connection.
	hosts, err := azuread.NewUpstreamHosts(cfg.UpstreamHosts)
	if err != nil {
		return nil, fmt.Errorf("server: %s: %w", azuread.UpstreamHostsSetting, err)
	}
	waad := azuread.NewConnector(entra.NewClient(o.entra), keyring, hosts, logger)
	registry := connection.Registry{azuread.Strategy: waad}
	guard := attack.New(hot, nil)
	var (
		m        *metrics.Registry
		observer oauth.Observer
	)
	if cfg.MetricsAddr != "" {
		m = metrics.New()
		observer = m
	}
	provider := oauth.New(oauth.Config{
		Issuer:                  cfg.Issuer,
		Clients:                 hot,
		Settings:                hot,
		Secrets:                 keyring,
		Keys:                    keys,
		ManagementScopes:        management.Scopes,
		ManagementTokenLifetime: cfg.ManagementTokenLifetime,
		APIs:                    hot,
		RefreshTokens:           st,
		Assertions:              st,
		Logger:                  logger,
		Connections:             hot,
		Users:                   st,
		Audit:                   audit.NewRecorder(st),
		Connectors:              registry,
		Sealer:                  keyring,
		TrustedProxies:          cfg.TrustedProxies,
		Guard:                   guard,
		Metrics:                 observer,
	})
	api := management.New(management.Config{
		Issuer:  cfg.Issuer,
		Store:   writes,
		Secrets: keyring,
		Keys:    keys,
		Verify: func(ctx context.Context, raw string) ([]string, string, time.Time, error) {
			c, err := keys.ParseJWT(ctx, raw, cfg.Issuer, mgmtAudience, time.Now(), tokens.ReplicaSkew)
			if err != nil {
				return nil, "", time.Time{}, err
			}
			return strings.Fields(c.Scope), c.Subject, c.IssuedAt, nil
		},
		Logger:        logger,
		Connectors:    registry,
		UpstreamHosts: hosts,
		Attack:        attack.New(writes, nil),
		Audit:         audit.NewRecorder(st),
		// `try` posts passwords too: it is counted where logins are.
		TrustedProxies: cfg.TrustedProxies,
	})
	mux := http.NewServeMux()
	provider.Register(mux)
	api.Register(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writePlainJSON(w, http.StatusOK, `{"status":"ok"}`)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		// A replica that cannot load the signing keys the others use
		// issues tokens they may no longer publish.
		err := st.Ping(ctx)
		if err == nil {
			err = keys.Ready()
		}
		if err != nil {
			logger.WarnContext(ctx, "not ready", "error", err)
			writePlainJSON(w, http.StatusServiceUnavailable, `{"status":"unavailable"}`)
			return
		}
		writePlainJSON(w, http.StatusOK, `{"status":"ok"}`)
	})
	// The listener lives as long as the handler may serve, from here to
	// Close, rather than only within Serve: draining requests still read
	// the cache and sign with the keys. Another replica's key rotation or
	// revocation reloads the keys here at once; Run's periodic reload
	// remains the bound when a notification is lost.
	//
	// Key reloads run apart from the listener: one waiting on the database
	// (a lock, a busy pool) must not hold back the cache clearing of the
	// notifications behind it. Reloads read the latest keys, so a
	// notification arriving while one waits needs one more, not one each.
	lctx, stopListening := context.WithCancel(context.WithoutCancel(ctx))
	listening := make(chan struct{})
	reload := make(chan struct{}, 1)
	var listeners sync.WaitGroup
	listeners.Go(func() {
		for {
			select {
			case <-lctx.Done():
				return
			case <-reload:
				keys.Refresh(lctx)
			}
		}
	})
	listeners.Go(func() {
		st.Listen(lctx, sqlstore.Changes{Config: c.Invalidate, Keys: func() {
			select {
			case reload <- struct{}{}:
			default:
			}
		}})
	})
	go func() {
		listeners.Wait()
		close(listening)
	}()
	return &Server{
		metrics:       m,
		cfg:           cfg,
		logger:        logger,
		store:         st,
		writes:        writes,
		keys:          keys,
		guard:         guard,
		handler:       withCommon(mux, logger, cfg.TLS(), cfg.TrustedProxies),
		stopListening: stopListening,
		listening:     listening,
	}, nil
}

func writePlainJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body+"\n")
}

// loadKeyring builds the keyring from GATEHOUSE_SECRET_KEY or, on the
// embedded default only, from a key file it creates next to the database.
// Keys in GATEHOUSE_SECRET_KEY_OLD still open secrets during a rotation.
func loadKeyring(ctx context.Context, cfg *config.Config, st *sqlstore.Store, logger *slog.Logger) (*secrets.Keyring, error) {
	var master []byte
	if cfg.SecretKey != "" {
		k, err := secrets.ParseMasterKey(cfg.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("server: GATEHOUSE_SECRET_KEY: %w", err)
		}
		master = k
	} else {
		path := cfg.SecretKeyFile()
		if err := refuseLostKeyFile(ctx, st, path); err != nil {
			return nil, err
		}
		k, created, err := secrets.LoadOrCreateKeyFile(path)
		if err != nil {
			return nil, fmt.Errorf("server: master key file: %w", err)
		}
		if created {
			logger.Warn("GATEHOUSE_SECRET_KEY is not set: generated a master key next to the database; back it up with the database, or the secrets in it cannot be read", "path", path)
		}
		master = k
	}
	olds, err := secrets.ParseMasterKeys(cfg.SecretKeyOld)
	if err != nil {
		return nil, fmt.Errorf("server: GATEHOUSE_SECRET_KEY_OLD: %w", err)
	}
	kr, err := secrets.NewKeyring(master, olds...)
	if err != nil {
		return nil, fmt.Errorf("server: master key: %w", err)
	}
	return kr, nil
}

// errSealedFound stops the walk over sealed blobs at the first one.
var errSealedFound = errors.New("sealed secret found")

// refuseLostKeyFile fails when the key file is missing but the database
// already holds sealed secrets: a key generated now could open none of
// them, and would take the place the backed-up key file must be restored
// to.
func refuseLostKeyFile(ctx context.Context, st *sqlstore.Store, path string) error {
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	_, err := st.RewrapSecrets(ctx, func(_, _ []byte) ([]byte, error) { return nil, errSealedFound })
	switch {
	case errors.Is(err, errSealedFound):
		return fmt.Errorf("server: master key file %s is missing, but the database holds secrets sealed under a key: restore the key file saved with the database (mode 0600), or set GATEHOUSE_SECRET_KEY to that key; no new key was generated", path)
	case err != nil:
		return fmt.Errorf("server: master key file: %w", err)
	}
	return nil
}

// bootstrapAdmin makes sure a machine-to-machine application can call the
// whole Management API: the configured one is created or updated at every
// start. With none configured and no application at all, one is generated
// on SQLite, its credentials written to a file of the owner's only next to
// the database (AdminFile), never to the terminal or the logs: in a
// container both end up in central logging. PostgreSQL has no local file
// to hand them over in, so there the start fails and asks for them.
func bootstrapAdmin(ctx context.Context, cfg *config.Config, st store.ClientStore, kr *secrets.Keyring, logger *slog.Logger, notice io.Writer) (err error) {
	id, secret := cfg.AdminClientID, cfg.AdminClientSecret
	file := ""
	if id == "" {
		_, total, err := st.ListClients(ctx, store.ListOptions{PerPage: 1})
		if err != nil {
			return fmt.Errorf("server: bootstrap admin: %w", err)
		}
		if total > 0 {
			return nil
		}
		if cfg.SQLitePath() == "" {
			return errors.New("server: bootstrap admin: the database has no application yet: set GATEHOUSE_ADMIN_CLIENT_ID and GATEHOUSE_ADMIN_CLIENT_SECRET (with PostgreSQL Gatehouse generates none: it has no local file to hand its secret over in)")
		}
		id, secret, file = randomToken(24), randomToken(48), AdminFile(cfg)
		// The file comes first: a secret that was never saved would leave
		// an application nobody can use.
		if err := writeAdminFile(file, id, secret); err != nil {
			return err
		}
	}
	if file != "" {
		defer func() {
			if err != nil {
				_ = os.Remove(file)
			}
		}()
	}
	sealed, err := kr.Seal([]byte(secret), store.ClientSecretAAD(id))
	if err != nil {
		return fmt.Errorf("server: bootstrap admin: %w", err)
	}
	now := time.Now().UTC()
	// Replicas starting together update the application at once; the
	// store refuses a write over another made since the read
	// (store.ErrConflict), and the update starts again from that one.
	// Each refusal is another write that succeeded, so n replicas are
	// done within n rounds.
	createRefused := 0
	for {
		c, err := st.GetClient(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			c = &store.Client{
				ClientID:                id,
				Name:                    "Gatehouse Management API (bootstrap)",
				AppType:                 "non_interactive",
				GrantTypes:              []string{"client_credentials"},
				TokenEndpointAuthMethod: "client_secret_post",
				IsFirstParty:            true,
				OIDCConformant:          true,
				SecretEnc:               sealed,
				ManagementScopes:        []string{"*"},
				CreatedAt:               now,
				UpdatedAt:               now,
			}
			err := st.CreateClient(ctx, c)
			if errors.Is(err, store.ErrConflict) {
				// Another replica created it first, perhaps with another
				// secret: read it and update it to this configuration.
				// Once created it is found, unless deleted meanwhile; a
				// create refused again and again while the read finds
				// nothing is refused for another reason, and retrying
				// would spin.
				if createRefused++; createRefused == maxAdminCreateRefusals {
					return fmt.Errorf("server: bootstrap admin: creating application %s was refused %d times as already stored, yet it was never found: %w", id, createRefused, err)
				}
				continue
			}
			if err != nil {
				return fmt.Errorf("server: bootstrap admin: %w", err)
			}
		case err != nil:
			return fmt.Errorf("server: bootstrap admin: %w", err)
		default:
			c.SecretEnc = sealed
			c.ManagementScopes = []string{"*"}
			if !slices.Contains(c.GrantTypes, "client_credentials") {
				c.GrantTypes = append(c.GrantTypes, "client_credentials")
			}
			// The configured secret is how an operator gets back in, so the
			// admin application authenticates with it, not with private_key_jwt.
			c.PrivateKeyJWTCredentials = nil
			if c.TokenEndpointAuthMethod == "none" || c.TokenEndpointAuthMethod == "" {
				c.TokenEndpointAuthMethod = "client_secret_post"
			}
			err := st.UpdateClient(ctx, c)
			if errors.Is(err, store.ErrConflict) {
				continue
			}
			if err != nil {
				return fmt.Errorf("server: bootstrap admin: %w", err)
			}
		}
		break
	}
	if file != "" {
		fmt.Fprintf(notice, "\nGatehouse generated a Management API application, client_id %s.\nIts GATEHOUSE_ADMIN_CLIENT_ID and GATEHOUSE_ADMIN_CLIENT_SECRET are in %s (mode 0600),\nand nowhere else in clear. Keep them in your secret store, then delete the file.\n\n", id, file)
		logger.Info("generated the bootstrap Management API application", "client_id", id, "credentials_file", file)
	}
	return nil
}

// maxAdminCreateRefusals bounds bootstrapAdmin's creates refused as a
// conflict with an application its reads do not find.
const maxAdminCreateRefusals = 5

// AdminFile is where a generated admin application's credentials are
// written, next to the SQLite database.
func AdminFile(cfg *config.Config) string {
	p := cfg.SQLitePath()
	return filepath.Join(filepath.Dir(p), filepath.Base(p)+".admin")
}

// writeAdminFile writes the credentials as environment assignments that a
// shell can source, to a new file only its owner may read. An existing
// file is never overwritten: it may hold the only copy of an earlier
// secret.
func writeAdminFile(path, id, secret string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("server: bootstrap admin: %s already exists and may hold an earlier admin secret: move it away, or set GATEHOUSE_ADMIN_CLIENT_ID and GATEHOUSE_ADMIN_CLIENT_SECRET", path)
	}
	if err != nil {
		return fmt.Errorf("server: bootstrap admin: %w", err)
	}
	_, err = fmt.Fprintf(f, "# The Management API application Gatehouse generated on its first start.\n# Keep these in your secret store, then delete this file.\nGATEHOUSE_ADMIN_CLIENT_ID=%s\nGATEHOUSE_ADMIN_CLIENT_SECRET=%s\n", id, secret)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("server: bootstrap admin: write %s: %w", path, err)
	}
	return nil
}

// randomToken returns n random bytes as unpadded base64url.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Handler is the whole HTTP surface, middleware included.
func (s *Server) Handler() http.Handler { return s.handler }

// MetricsHandler serves GET /metrics; nil without GATEHOUSE_METRICS_ADDR.
func (s *Server) MetricsHandler() http.Handler {
	if s.metrics == nil {
		return nil
	}
	return s.metrics.Handler()
}

// Close stops listening for other replicas' writes and releases the
// database.
func (s *Server) Close() error {
	s.stopListening()
	<-s.listening
	return s.store.Close()
}

// Serve accepts connections on l until ctx is done, then stops accepting,
// lets in-flight requests finish within the shutdown timeout, stops the
// background work, and returns once that has stopped too.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	hs := s.httpServer(s.handler)
	// The pair is loaded before anything starts: a certificate that does
	// not match its key must stop the start, not follow "listening".
	if s.cfg.TLS() {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("server: GATEHOUSE_TLS_CERT and GATEHOUSE_TLS_KEY: %w", err)
		}
		hs.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	stopMetrics, err := s.serveMetrics()
	if err != nil {
		return err
	}
	defer stopMetrics()
	bg, stopBackground := context.WithCancel(ctx)
	waitBackground := s.runBackground(bg)
	defer func() {
		stopBackground()
		waitBackground()
	}()
	errc := make(chan error, 1)
	go func() {
		var err error
		if s.cfg.TLS() {
			err = hs.ServeTLS(l, "", "")
		} else {
			err = hs.Serve(l)
		}
		errc <- err
	}()
	s.logger.Info("gatehouse listening", "addr", l.Addr().String(), "issuer", s.cfg.Issuer, "tls", s.cfg.TLS())
	select {
	case err := <-errc:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	s.logger.Info("shutting down: finishing in-flight requests", "timeout", s.cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		// Requests still running are cut off: their handlers see their
		// contexts end now, not the database closing under them later.
		_ = hs.Close()
		return fmt.Errorf("server: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

// httpLimits bound what one connection may hold on either listener: a
// caller that sends its headers or body slowly, reads slowly, or keeps a
// connection idle is cut off, so that connections (and the descriptors
// the process shares between its listeners) are not held forever.
var httpLimits = struct {
	readHeader, read, write, idle time.Duration
	maxHeaderBytes                int
}{
	readHeader:     10 * time.Second,
	read:           30 * time.Second,
	write:          60 * time.Second,
	idle:           120 * time.Second,
	maxHeaderBytes: 32 << 10,
}

func (s *Server) httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: httpLimits.readHeader,
		ReadTimeout:       httpLimits.read,
		WriteTimeout:      httpLimits.write,
		IdleTimeout:       httpLimits.idle,
		MaxHeaderBytes:    httpLimits.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
}

// serveMetrics serves GET /metrics on GATEHOUSE_METRICS_ADDR, a listener
// of its own so that the public one never exposes it.
func (s *Server) serveMetrics() (stop func(), err error) {
	if s.metrics == nil {
		return func() {}, nil
	}
	l, err := net.Listen("tcp", s.cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("server: metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.MetricsHandler())
	hs := s.httpServer(mux)
	go func() {
		if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("metrics listener stopped", "error", err)
		}
	}()
	s.logger.Info("metrics listening", "addr", l.Addr().String())
	return func() { _ = hs.Close() }, nil
}
