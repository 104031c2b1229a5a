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
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/management"
)

func newTryCmd() *cobra.Command {
	var base, username string
	cmd := &cobra.Command{
		Use:   "try <connection>",
		Short: "Sign a user in through a connection and show every step",
		Long: `Try a connection's password login against its identity provider, through a
running Gatehouse (POST /api/v2/connections/{id}/try): tenant metadata, the
token call, id_token validation, profile and Graph calls, each with its
timing, then the resulting profile and groups, or the upstream error code with
what to fix. Nothing is stored and no token is issued.

The password is read from the terminal without echo, or from the first line of
standard input; it is never a flag. The Management API credentials come from
GATEHOUSE_ADMIN_CLIENT_ID and GATEHOUSE_ADMIN_CLIENT_SECRET.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("password") {
				return errors.New("--password: the password is never a flag, which shows in `ps` and shell history: type it at the prompt or give it on standard input")
			}
			if username == "" {
				return errors.New("--username is required")
			}
			if base == "" {
				base = os.Getenv("GATEHOUSE_ISSUER")
			}
			if base == "" {
				// The issuer serve derives from the same settings: its
				// Management API audience, and no wildcard host, which
				// checkBaseURL would refuse as not loopback.
				base = config.DefaultIssuer(envOr("GATEHOUSE_ADDR", "127.0.0.1:8080"), os.Getenv("GATEHOUSE_TLS_CERT") != "")
			}
			if err := checkBaseURL(base); err != nil {
				return err
			}
			base = strings.TrimRight(base, "/") + "/"
			// Before the prompt: a password typed for nothing is lost time.
			id, secret := os.Getenv("GATEHOUSE_ADMIN_CLIENT_ID"), os.Getenv("GATEHOUSE_ADMIN_CLIENT_SECRET")
			if id == "" || secret == "" {
				return errors.New("set GATEHOUSE_ADMIN_CLIENT_ID and GATEHOUSE_ADMIN_CLIENT_SECRET to a Management API application")
			}
			password, err := readPassword(cmd, username)
			if err != nil {
				return err
			}
			res, err := tryConnection(cmd.Context(), base, id, secret, args[0], username, password)
			password = ""
			if err != nil {
				return err
			}
			printTry(cmd.OutOrStdout(), res)
			if !res.OK {
				return errors.New("login failed")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&base, "url", "", `Gatehouse base URL [$GATEHOUSE_ISSUER, default derived from $GATEHOUSE_ADDR as serve does]`)
	cmd.Flags().StringVar(&username, "username", "", "the user's sign-in name (UPN or email)")
	// Only there to refuse it with a clear word instead of "unknown flag".
	cmd.Flags().String("password", "", "")
	_ = cmd.Flags().MarkHidden("password")
	return cmd
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func readPassword(cmd *cobra.Command, username string) (string, error) {
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(cmd.ErrOrStderr(), "Password for %s: ", username)
		b, err := readHidden(cmd.Context(), f)
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		// As on standard input: the endpoint would refuse it anyway, after
		// a round trip with the admin credentials.
		if len(b) == 0 {
			return "", errors.New("no password typed")
		}
		return string(b), nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on standard input")
	}
	return line, nil
}

// tryConnection gets a Management API token for the application id,
// finds the connection by name and runs the try endpoint. Its calls end
// with ctx, which Ctrl-C ends: a slow upstream must not hold the
// terminal for the whole timeout.
func tryConnection(ctx context.Context, base, id, secret, name, username, password string) (*management.TryResult, error) {
	hc := &http.Client{Timeout: 2 * time.Minute}
	form := url.Values{
		"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret},
		"audience": {base + "api/v2/"}, "scope": {"read:connections update:connections"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("management token: %w", err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := decode(resp, &tok); err != nil {
		return nil, fmt.Errorf("management token: %w", err)
	}
	call := func(method, path string, body []byte, dst any) error {
		req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		return decode(resp, dst)
	}
	var conns []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	if err := call("GET", "api/v2/connections?name="+url.QueryEscape(name), nil, &conns); err != nil {
		return nil, fmt.Errorf("find connection: %w", err)
	}
	if len(conns) == 0 {
		return nil, fmt.Errorf("no connection named %q", name)
	}
	body, err := json.Marshal(map[string]string{"username": username, "password": password})
	if err != nil {
		return nil, err
	}
	var res management.TryResult
	err = call("POST", "api/v2/connections/"+url.PathEscape(conns[0].ID)+"/try", body, &res)
	clear(body)
	if err != nil {
		return nil, fmt.Errorf("try: %w", err)
	}
	return &res, nil
}

func decode(resp *http.Response, dst any) error {
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(raw))
	}
	return json.Unmarshal(raw, dst)
}

func printTry(w io.Writer, r *management.TryResult) {
	fmt.Fprintf(w, "Connection %s (%s)\n\n", r.Connection, r.Strategy)
	for _, s := range r.Steps {
		mark := "ok  "
		if !s.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %-30s %8.1f ms  %s\n", mark, s.Name, s.DurationMS, firstNonEmpty(s.Error, s.Detail))
	}
	fmt.Fprintf(w, "  total %40.1f ms\n\n", r.DurationMS)
	if r.OK {
		fmt.Fprintf(w, "Signed in: %s\n", r.UserID)
		prof, _ := json.MarshalIndent(r.Profile, "  ", "  ")
		fmt.Fprintf(w, "Profile:\n  %s\n", prof)
		if len(r.Groups) > 0 {
			fmt.Fprintf(w, "Groups (%d): %s\n", len(r.Groups), strings.Join(r.Groups, ", "))
		}
	} else if e := r.Error; e != nil {
		fmt.Fprintf(w, "Login failed: %s", e.Kind)
		if e.Code != "" {
			fmt.Fprintf(w, " (%s)", e.Code)
		}
		if e.TraceID != "" {
			fmt.Fprintf(w, ", trace id %s", e.TraceID)
		}
		fmt.Fprintln(w)
		if e.Hint != "" {
			fmt.Fprintf(w, "What to do: %s\n", e.Hint)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "Note: %s\n", n)
	}
	for _, wm := range r.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", wm)
	}
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
