package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/emulator/entra"
	"github.com/gatehouse/gatehouse/examples"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/server"
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
)

// runDemo serves Gatehouse with the Entra ID emulator in-process on a
// loopback port, a native application and a waad connection ready, and
// prints how to sign in. Re-running it on the same database reuses the
// application and points the connection at the new emulator port.
func runDemo(ctx context.Context, out io.Writer, cfg *config.Config, logger *slog.Logger, directory string) error {
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
		cfg.AdminClientID, cfg.AdminClientSecret = "demo-admin", randomSecret()
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
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	base := strings.TrimRight(cfg.Issuer, "/")
	fmt.Fprintf(out, `
Gatehouse demo: the Entra ID emulator runs at %s with %s,
application %q (client_id %s) and connection %q are ready.

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
password expired, dave: MFA required, frank: Conditional Access, ivan: disabled).

`, emuURL, directory, demoClientName, clientID, demoConnection,
		base, clientID, demoConnection, demoUser, demoPassword,
		demoPassword, tryEnv, demoConnection, base, demoUser)
	return srv.Serve(ctx, l)
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
