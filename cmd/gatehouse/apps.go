package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// apiFlags are how the apps and connections commands reach a running
// Gatehouse. Secrets never come from flags: a flag shows in `ps` and in
// shell history.
type apiFlags struct {
	baseURL  string
	clientID string
}

func (f *apiFlags) bind(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.baseURL, "url", "", "base URL of Gatehouse [$GATEHOUSE_URL, default http://127.0.0.1:8080/]")
	cmd.PersistentFlags().StringVar(&f.clientID, "admin-client-id", "", "client id of the Management API application [$GATEHOUSE_ADMIN_CLIENT_ID]")
}

// secretReader reads secrets from the terminal without echo, or else one
// line each from stdin, in the order they are asked for.
type secretReader struct {
	ctx    context.Context
	in     io.Reader
	prompt io.Writer
	lines  *bufio.Reader
}

func newSecretReader(cmd *cobra.Command) *secretReader {
	return &secretReader{ctx: cmd.Context(), in: cmd.InOrStdin(), prompt: cmd.ErrOrStderr()}
}

// readHidden reads a line from the terminal f without echo. main catches
// SIGINT to end ctx, so a plain term.ReadPassword would leave Ctrl-C at
// the prompt without effect: the terminal gets its echo back and the
// command ends instead.
func readHidden(ctx context.Context, f *os.File) ([]byte, error) {
	fd := int(f.Fd())
	state, err := term.GetState(fd)
	if err != nil {
		return nil, err
	}
	type line struct {
		b   []byte
		err error
	}
	done := make(chan line, 1)
	// On interruption this goroutine stays in its read until the process
	// exits, which follows at once.
	go func() {
		b, err := term.ReadPassword(fd)
		done <- line{b, err}
	}()
	select {
	case l := <-done:
		return l.b, l.err
	case <-ctx.Done():
		_ = term.Restore(fd, state)
		return nil, errors.New("interrupted")
	}
}

func (s *secretReader) read(what string) (string, error) {
	if f, ok := s.in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(s.prompt, "%s (input hidden): ", what)
		b, err := readHidden(s.ctx, f)
		fmt.Fprintln(s.prompt)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", what, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if s.lines == nil {
		s.lines = bufio.NewReader(s.in)
	}
	line, err := s.lines.ReadString('\n')
	if err != nil && (!errors.Is(err, io.EOF) || line == "") {
		return "", fmt.Errorf("read %s from stdin: %w", what, err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// checkBaseURL accepts the Gatehouse URL the CLI sends the admin secret
// and users' passwords to: https, or http on loopback only, the rule
// GATEHOUSE_ISSUER follows, so that no secret crosses a network in clear.
func checkBaseURL(base string) error {
	u, err := url.Parse(base)
	if err != nil {
		return errors.New("--url: not an http(s) URL")
	}
	if u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("--url: not an http(s) URL: %q", u.Redacted())
	}
	if u.Scheme == "http" {
		h := u.Hostname()
		if a, err := netip.ParseAddr(h); h != "localhost" && (err != nil || !a.IsLoopback()) {
			return fmt.Errorf("--url: http:// is allowed only for loopback hosts, secrets would cross the network in clear; use https:// for %q", u.Host)
		}
	}
	return nil
}

// mgmt is a Management API client with a token of the admin application.
type mgmt struct {
	base  string
	token string
	http  *http.Client
}

// run is the RunE of a command that only talks to the Management API: it
// connects first, as connect does.
func (f *apiFlags) run(fn func(cmd *cobra.Command, m *mgmt, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		m, err := f.connect(cmd.Context(), newSecretReader(cmd))
		if err != nil {
			return err
		}
		return fn(cmd, m, args)
	}
}

// connect gets a Management API token with client_credentials. The admin
// secret comes from GATEHOUSE_ADMIN_CLIENT_SECRET (as for `serve`), else
// from the terminal or the first line of stdin. GATEHOUSE_TOKEN, when
// set, is used as the access token instead.
func (f *apiFlags) connect(ctx context.Context, secrets *secretReader) (*mgmt, error) {
	base := f.baseURL
	if base == "" {
		base = os.Getenv("GATEHOUSE_URL")
	}
	if base == "" {
		base = "http://127.0.0.1:8080/"
	}
	if err := checkBaseURL(base); err != nil {
		return nil, err
	}
	base = strings.TrimRight(base, "/") + "/"
	m := &mgmt{base: base, http: &http.Client{Timeout: 30 * time.Second}}
	if tok := os.Getenv("GATEHOUSE_TOKEN"); tok != "" {
		m.token = tok
		return m, nil
	}
	id := f.clientID
	if id == "" {
		id = os.Getenv("GATEHOUSE_ADMIN_CLIENT_ID")
	}
	if id == "" {
		return nil, errors.New("set GATEHOUSE_ADMIN_CLIENT_ID (or --admin-client-id) to the Management API application's client id")
	}
	secret := os.Getenv("GATEHOUSE_ADMIN_CLIENT_SECRET")
	if secret == "" {
		var err error
		if secret, err = secrets.read("Client secret of " + id); err != nil {
			return nil, err
		}
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}, "audience": {base + "api/v2/"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := m.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return nil, fmt.Errorf("token: HTTP %d: %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		return nil, fmt.Errorf("token: HTTP %d %s: %s", resp.StatusCode, body.Error, body.Description)
	}
	m.token = body.AccessToken
	return m, nil
}

// apiError is a Management API error answer.
type apiError struct {
	Status    int    `json:"statusCode"`
	Message   string `json:"message"`
	ErrorCode string `json:"errorCode"`
}

func (e *apiError) Error() string {
	code := e.ErrorCode
	if code == "" {
		code = http.StatusText(e.Status)
	}
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, code, e.Message)
}

// do calls the API; out, when not nil, receives the JSON answer.
func (m *mgmt) do(ctx context.Context, method, path string, in, out any) (http.Header, error) {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, m.base+strings.TrimPrefix(path, "/"), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+m.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := m.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		e := &apiError{Status: resp.StatusCode}
		_ = json.Unmarshal(raw, e)
		return resp.Header, e
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.Header, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return resp.Header, nil
}

// printJSON writes v indented.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newAppsCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{
		Use:   "apps",
		Short: "Manage applications (Management API /api/v2/clients) of a running Gatehouse",
		Long: `Manage applications through the Management API of a running Gatehouse.

The admin application's client id comes from GATEHOUSE_ADMIN_CLIENT_ID (or
--admin-client-id); its secret from GATEHOUSE_ADMIN_CLIENT_SECRET, else from a
hidden prompt, else from the first line of stdin.`,
	}
	f.bind(cmd)
	cmd.AddCommand(newAppsCreateCmd(&f), newAppsListCmd(&f), newAppsGetCmd(&f), newAppsDeleteCmd(&f), newAppsCredentialsCmd(&f))
	return cmd
}

func newAppsCreateCmd(f *apiFlags) *cobra.Command {
	var (
		name, appType, description, authMethod string
		callbacks, logoutURLs, webOrigins      []string
		grants                                 []string
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Register an application; prints it with its client_secret, shown this once",
		Example: `  gatehouse apps create --name "My Native App" --type native \
    --callback com.example.app://callback --grant-types password,http://auth0.com/oauth/grant-type/password-realm,refresh_token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body := map[string]any{"name": name}
			set := func(flag, key string, v any) {
				if cmd.Flags().Changed(flag) {
					body[key] = v
				}
			}
			set("type", "app_type", appType)
			set("description", "description", description)
			set("callback", "callbacks", callbacks)
			set("logout-url", "allowed_logout_urls", logoutURLs)
			set("web-origin", "web_origins", webOrigins)
			set("grant-types", "grant_types", grants)
			set("token-endpoint-auth-method", "token_endpoint_auth_method", authMethod)
			m, err := f.connect(cmd.Context(), newSecretReader(cmd))
			if err != nil {
				return err
			}
			var out map[string]any
			if _, err := m.do(cmd.Context(), http.MethodPost, "api/v2/clients", body, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&name, "name", "", "application name (required)")
	fl.StringVar(&appType, "type", "", "app_type: native, spa, regular_web or non_interactive")
	fl.StringVar(&description, "description", "", "description")
	fl.StringSliceVar(&callbacks, "callback", nil, "allowed callback URL (repeatable)")
	fl.StringSliceVar(&logoutURLs, "logout-url", nil, "allowed logout URL (repeatable)")
	fl.StringSliceVar(&webOrigins, "web-origin", nil, "allowed web origin (repeatable)")
	fl.StringSliceVar(&grants, "grant-types", nil, "grant types, comma-separated (default: Auth0's for the app type)")
	fl.StringVar(&authMethod, "token-endpoint-auth-method", "", "none, client_secret_post or client_secret_basic")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

func newAppsListCmd(f *apiFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List applications",
		Args:  cobra.NoArgs,
		RunE: f.run(func(cmd *cobra.Command, m *mgmt, _ []string) error {
			// By checkpoint: offset paging stops at 1000 applications.
			var all []map[string]any
			path := "api/v2/clients?take=100&fields=client_id,name,app_type,grant_types&include_fields=true"
			for next := ""; ; {
				var page struct {
					Clients []map[string]any `json:"clients"`
					Next    string           `json:"next"`
				}
				q := path
				if next != "" {
					q += "&from=" + url.QueryEscape(next)
				}
				if _, err := m.do(cmd.Context(), http.MethodGet, q, nil, &page); err != nil {
					return err
				}
				all = append(all, page.Clients...)
				if next = page.Next; next == "" {
					break
				}
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), all)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CLIENT ID\tNAME\tTYPE\tGRANT TYPES")
			for _, c := range all {
				fmt.Fprintf(tw, "%v\t%v\t%v\t%v\n", c["client_id"], c["name"], orDash(c["app_type"]), joinAny(c["grant_types"]))
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newAppsGetCmd(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get CLIENT_ID",
		Short: "Show an application (with its secret when the admin may read client keys)",
		Args:  cobra.ExactArgs(1),
		RunE: f.run(func(cmd *cobra.Command, m *mgmt, args []string) error {
			var out map[string]any
			if _, err := m.do(cmd.Context(), http.MethodGet, "api/v2/clients/"+url.PathEscape(args[0]), nil, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		}),
	}
}

func newAppsDeleteCmd(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "delete CLIENT_ID",
		Short: "Delete an application; it is removed from every connection",
		Args:  cobra.ExactArgs(1),
		RunE: f.run(func(cmd *cobra.Command, m *mgmt, args []string) error {
			if _, err := m.do(cmd.Context(), http.MethodDelete, "api/v2/clients/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted application %s\n", args[0])
			return nil
		}),
	}
}

func orDash(v any) any {
	if v == nil || v == "" {
		return "-"
	}
	return v
}

func joinAny(v any) string {
	items, _ := v.([]any)
	parts := make([]string, 0, len(items))
	for _, it := range items {
		parts = append(parts, fmt.Sprint(it))
	}
	return strings.Join(parts, ",")
}
