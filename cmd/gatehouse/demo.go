package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/emulator/entra"
	"github.com/gatehouse/gatehouse/examples"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
)

// The demo's fixtures. The Native app of the example directory is the
// seed's "Native Client Application"; alice is its ready-to-use user.
const (
	demoConnection   = "contoso-demo"
	demoClientName   = "Gatehouse Demo (native app)"
	demoNativeAppID  = "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b"
	demoNativeSecret = "native-secret-value"
	demoUser         = "alice@contoso.com"
	demoPassword     = "Alice-Passw0rd!"
	// demoAdminID is the Management API application the demo creates when
	// the operator configures none; its secret is printed.
	demoAdminID = "demo-admin"
)

// defaultDemoDatabase is the demo's database when the operator names none.
// It is not gatehouse.db, a real serve's default: a demo started in a
// production directory must not leave demo-admin, whose secret it prints,
// in the database a later serve uses. A file in the working directory
// rather than a temporary one, so that a re-run keeps the demo's
// application (the printed curl line stays valid), users and logs, and
// the operator sees it and deletes it with `rm gatehouse-demo.db*`.
const defaultDemoDatabase = "sqlite:gatehouse-demo.db"

// demoOnAnyDatabaseFlag lets the demo run on a database that holds
// applications or connections it did not create.
const demoOnAnyDatabaseFlag = "demo-on-any-database"

// runDemo serves Gatehouse on l with the Entra ID emulator in-process on
// a loopback port, a native application and a waad connection ready, and
// prints how to sign in. Re-running it on the same database reuses the
// application and points the connection at the new emulator port.
//
// Without a database setting it uses defaultDemoDatabase. With one, it
// refuses a database that holds applications or connections it did not
// create (foreignObjects) unless anyDatabase is set.
func runDemo(ctx context.Context, out io.Writer, cfg *config.Config, logger *slog.Logger, l net.Listener, directory string, anyDatabase bool) error {
	setting := cfg.SetBy("GATEHOUSE_DATABASE")
	where := "the database of " + setting
	if setting == "" {
		cfg.Database, where = defaultDemoDatabase, "its own database"
	} else if !anyDatabase {
		if err := refuseForeignDatabase(ctx, cfg, setting); err != nil {
			return err
		}
	}
	// A DSN may hold a password: only a SQLite path is shown.
	if p := cfg.SQLitePath(); p != "" {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		where += ", " + p
	}

	var dir *entra.Directory
	var err error
	if directory == "" {
		dir, err = entra.ParseDirectory(examples.EntraDirectory)
		directory = "the built-in examples/entra-directory.yaml"
	} else {
		dir, err = entra.LoadDirectory(directory)
	}
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	el, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: emulator listener: %w", err)
	}
	emuURL := "http://" + el.Addr().String()
	emu, err := entra.New(dir, entra.Options{BaseURL: emuURL, Logger: logger.With("component", "entra-emulator")})
	if err != nil {
		return err
	}
	es := &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = es.Serve(el) }()
	defer es.Close()

	// A fresh admin secret per run, printed below, so that `gatehouse try`
	// works without setup. An operator's own admin secret is never printed:
	// the try line then takes it from the environment it came from.
	tryEnv := ""
	if cfg.AdminClientID == "" {
		cfg.AdminClientID, cfg.AdminClientSecret = demoAdminID, randomSecret()
		tryEnv = fmt.Sprintf("GATEHOUSE_ADMIN_CLIENT_ID=%s GATEHOUSE_ADMIN_CLIENT_SECRET=%s ", cfg.AdminClientID, cfg.AdminClientSecret)
	}
	// The demo connection points at the emulator, which only the operator
	// may allow; running the demo is that decision.
	cfg.UpstreamHosts = append(cfg.UpstreamHosts, emuURL)
	srv, err := server.New(ctx, cfg, logger, out)
	if err != nil {
		return err
	}
	defer srv.Close()
	clientID, err := demoSetup(srv.Handler(), cfg, emuURL)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	base := strings.TrimRight(cfg.Issuer, "/")
	fmt.Fprintf(out, `
Gatehouse demo: the Entra ID emulator runs at %s with %s,
application %q (client_id %s) and connection %q are ready
in %s.

Sign in with the password-realm grant:

  curl -s %s/oauth/token \
    -d grant_type=http://auth0.com/oauth/grant-type/password-realm \
    -d client_id=%s -d realm=%s \
    -d username=%s --data-urlencode 'password=%s' \
    -d scope='openid profile email'

Test the connection step by step:

  echo '%s' | %s\
    go run ./cmd/gatehouse try %s --url %s/ --username %s

Other users of the directory fail the way Entra fails them (bob: locked, carol:
password expired, dave: MFA required, frank: Conditional Access, ivan: disabled,
grace@corp.contoso.com: federated, heidi: no password).

`, emuURL, directory, demoClientName, clientID, demoConnection, where,
		base, clientID, demoConnection, demoUser, demoPassword,
		demoPassword, tryEnv, demoConnection, base, demoUser)
	return srv.Serve(ctx, l)
}

// refuseForeignDatabase stops the demo before it changes anything in a
// database that holds an application or a connection the demo did not
// create: its printed demo-admin secret would then open a database
// someone keeps. Its own objects are the application demoAdminID (or the
// operator's configured admin application, which the demo only writes as
// every start does), the application named demoClientName and the
// connection named demoConnection. setting names what chose the database.
func refuseForeignDatabase(ctx context.Context, cfg *config.Config, setting string) error {
	st, err := sqlstore.Open(ctx, cfg.Database, nil)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer st.Close()
	foreign, err := foreignObjects(ctx, st, cfg.AdminClientID)
	if err != nil {
		return fmt.Errorf("demo: cannot tell whether the database of %s holds only the demo's objects (run `gatehouse migrate` on it, or pass --%s): %w", setting, demoOnAnyDatabaseFlag, err)
	}
	if len(foreign) == 0 {
		return nil
	}
	if len(foreign) > 3 {
		foreign = append(foreign[:3], "…")
	}
	adds := "its application and connection"
	if cfg.AdminClientID == "" {
		adds = "its application and connection, and " + demoAdminID + " with the whole Management API and a secret it prints"
	}
	return fmt.Errorf("demo: the database of %s holds objects the demo did not create (%s), and the demo would add %s: "+
		"leave out %s to use the demo's own %s, or pass --%s if this database is a throwaway",
		setting, strings.Join(foreign, ", "), adds, setting, strings.TrimPrefix(defaultDemoDatabase, "sqlite:"), demoOnAnyDatabaseFlag)
}

// foreignObjects names the applications and connections of st that the
// demo did not create, those beyond a first page as a count; adminID is the operator's admin application.
// An empty (unmigrated) database has none.
func foreignObjects(ctx context.Context, st *sqlstore.Store, adminID string) ([]string, error) {
	v, err := st.CurrentVersion(ctx)
	if err != nil || v == 0 {
		return nil, err
	}
	// The demo creates at most three applications and one connection, so
	// a first page larger than that holds a foreign one if any exists.
	const perPage = 10
	var foreign []string
	clients, total, err := st.ListClients(ctx, store.ListOptions{PerPage: perPage})
	if err != nil {
		return nil, err
	}
	for _, c := range clients {
		if c.ClientID != demoAdminID && (adminID == "" || c.ClientID != adminID) && c.Name != demoClientName {
			foreign = append(foreign, fmt.Sprintf("application %q (client_id %s)", c.Name, c.ClientID))
		}
	}
	if total > len(clients) {
		foreign = append(foreign, fmt.Sprintf("%d more applications", total-len(clients)))
	}
	conns, total, err := st.ListConnections(ctx, store.ConnectionFilter{}, store.ListOptions{PerPage: perPage})
	if err != nil {
		return nil, err
	}
	for _, c := range conns {
		if c.Name != demoConnection {
			foreign = append(foreign, fmt.Sprintf("connection %q", c.Name))
		}
	}
	if total > len(conns) {
		foreign = append(foreign, fmt.Sprintf("%d more connections", total-len(conns)))
	}
	return foreign, nil
}

// warnDemoObjects logs a warning when a real serve finds what the demo
// leaves behind: demo-admin holds the whole Management API and its secret
// went to a terminal. A warning rather than a refusal: a production
// broker that stopped starting would lock every user out, and deleting
// the objects takes the running Management API.
func warnDemoObjects(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	st, err := sqlstore.Open(ctx, cfg.Database, nil)
	if err != nil {
		return fmt.Errorf("demo objects: %w", err)
	}
	defer st.Close()
	var attrs []any
	var remedy []string
	switch _, err := st.GetClient(ctx, demoAdminID); {
	case err == nil:
		attrs = append(attrs, "client_id", demoAdminID)
		remedy = append(remedy, "gatehouse apps delete "+demoAdminID)
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("demo objects: %w", err)
	}
	switch c, err := st.GetConnectionByName(ctx, demoConnection); {
	case err == nil:
		attrs = append(attrs, "connection", demoConnection)
		// Only the demo's own application: an operator may have enabled
		// the connection for others.
		for _, id := range c.EnabledClients {
			if app, err := st.GetClient(ctx, id); err == nil && app.Name == demoClientName {
				remedy = append(remedy, "gatehouse apps delete "+id)
			}
		}
		remedy = append(remedy, "gatehouse connections delete "+demoConnection)
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("demo objects: %w", err)
	}
	if len(attrs) == 0 {
		return nil
	}
	logger.WarnContext(ctx, "DEMO OBJECTS IN THIS DATABASE: `gatehouse serve --demo` ran on it and left its objects; "+
		"demo-admin, if listed, may call the whole Management API and its secret was printed to a terminal. "+
		"Unless this is a demo database, delete them", append(attrs, "remedy", strings.Join(remedy, "; "))...)
	return nil
}

func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// demoSetup creates (or updates) the demo application and connection
// through the Management API, in-process.
func demoSetup(h http.Handler, cfg *config.Config, emuURL string) (string, error) {
	call := func(method, path, token string, body any, dst any) (int, error) {
		var rd io.Reader
		ct := "application/json"
		switch b := body.(type) {
		case nil:
		case url.Values:
			rd, ct = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
		default:
			raw, err := json.Marshal(b)
			if err != nil {
				return 0, err
			}
			rd = strings.NewReader(string(raw))
		}
		req := httptest.NewRequest(method, cfg.Issuer+path, rd)
		if rd != nil {
			req.Header.Set("Content-Type", ct)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code/100 != 2 {
			return rec.Code, fmt.Errorf("%s %s: HTTP %d: %s", method, path, rec.Code, strings.TrimSpace(rec.Body.String()))
		}
		if dst != nil {
			return rec.Code, json.Unmarshal(rec.Body.Bytes(), dst)
		}
		return rec.Code, nil
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if _, err := call("POST", "oauth/token", "", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {cfg.AdminClientID},
		"client_secret": {cfg.AdminClientSecret}, "audience": {cfg.Issuer + "api/v2/"},
	}, &tok); err != nil {
		return "", err
	}
	at := tok.AccessToken

	// Every application is looked at, by checkpoint, however many there are.
	clientID := ""
	for next := ""; ; {
		var page struct {
			Clients []struct {
				ClientID string `json:"client_id"`
				Name     string `json:"name"`
			} `json:"clients"`
			Next string `json:"next"`
		}
		path := "api/v2/clients?take=100&fields=client_id,name&include_fields=true"
		if next != "" {
			path += "&from=" + url.QueryEscape(next)
		}
		if _, err := call("GET", path, at, nil, &page); err != nil {
			return "", err
		}
		for _, c := range page.Clients {
			if c.Name == demoClientName {
				clientID = c.ClientID
			}
		}
		if next = page.Next; next == "" {
			break
		}
	}
	if clientID == "" {
		var created struct {
			ClientID string `json:"client_id"`
		}
		if _, err := call("POST", "api/v2/clients", at, map[string]any{
			"name": demoClientName, "app_type": "native", "token_endpoint_auth_method": "none",
			"grant_types": []string{"http://auth0.com/oauth/grant-type/password-realm", "password"},
		}, &created); err != nil {
			return "", err
		}
		clientID = created.ClientID
	}
	options := map[string]any{
		"client_id": demoNativeAppID, "client_secret": demoNativeSecret,
		"tenant_domain": "contoso.onmicrosoft.com", "authority_host": emuURL, "graph_host": emuURL,
		"ext_profile": true, "ext_groups": true, "ext_nested_groups": true,
	}
	var conns []struct {
		ID string `json:"id"`
	}
	if _, err := call("GET", "api/v2/connections?name="+demoConnection, at, nil, &conns); err != nil {
		return "", err
	}
	if len(conns) == 0 {
		_, err := call("POST", "api/v2/connections", at, map[string]any{
			"name": demoConnection, "strategy": "waad", "options": options, "enabled_clients": []string{clientID},
		}, nil)
		return clientID, err
	}
	if _, err := call("PATCH", "api/v2/connections/"+conns[0].ID, at, map[string]any{"options": options}, nil); err != nil {
		return "", err
	}
	if _, err := call("PATCH", "api/v2/connections/"+conns[0].ID+"/clients", at, []map[string]any{{"client_id": clientID, "status": true}}, nil); err != nil {
		return "", err
	}
	return clientID, nil
}
