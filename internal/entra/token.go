package entra

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// PasswordRequest is one resource owner password credentials grant.
type PasswordRequest struct {
	Endpoint Endpoint
	ClientID string
	// ClientSecret is sent when set (confidential app). A public client sends
	// none, which needs "Allow public client flows" on the app registration.
	ClientSecret string
	Username     string
	Password     string
	// Resource is the v1 resource: an App ID URI or application id, e.g.
	// https://graph.microsoft.com. Required for V1, ignored for V2.
	Resource string
	// Scopes are added to "openid profile email offline_access" on V2, e.g.
	// "api://app/.default" or "https://graph.microsoft.com/User.Read".
	// Ignored for V1, whose permissions are configured statically.
	Scopes []string
}

// String keeps the password and secret out of logs.
func (r PasswordRequest) String() string {
	return fmt.Sprintf("entra.PasswordRequest{tenant:%s v%d client:%s user:%s}", r.Endpoint.tenant(), r.Endpoint.Version, r.ClientID, r.Username)
}

// v2Scopes are always requested on V2: an id_token with the profile and email
// claims, and a refresh token for the broker's optional ext_refresh_token.
var v2Scopes = []string{"openid", "profile", "email", "offline_access"}

func (r *PasswordRequest) form() (url.Values, error) {
	if err := r.Endpoint.check(); err != nil {
		return nil, err
	}
	if r.ClientID == "" {
		return nil, errors.New("entra: no client id")
	}
	if r.Username == "" || r.Password == "" {
		return nil, errors.New("entra: username and password are required")
	}
	f := url.Values{
		"grant_type": {"password"},
		"client_id":  {r.ClientID},
		"username":   {r.Username},
		"password":   {r.Password},
	}
	if r.ClientSecret != "" {
		f.Set("client_secret", r.ClientSecret)
	}
	if r.Endpoint.Version == V1 {
		if r.Resource == "" {
			return nil, errors.New("entra: the v1 endpoint needs a resource (App ID URI)")
		}
		f.Set("resource", r.Resource)
		// Permissions are static on v1; openid only makes the id_token come back.
		f.Set("scope", "openid")
		return f, nil
	}
	scopes := append([]string(nil), v2Scopes...)
	for _, s := range r.Scopes {
		if s != "" && !contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	f.Set("scope", strings.Join(scopes, " "))
	return f, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TokenResponse is a successful token endpoint answer, normalised over v1
// (numbers as strings, expires_on, resource) and v2 (numbers as numbers).
type TokenResponse struct {
	TokenType    string
	AccessToken  string
	RefreshToken string
	IDToken      string
	Scope        string
	Resource     string // v1 only
	ExpiresIn    time.Duration
	ExtExpiresIn time.Duration
	// ExpiresAt is v1's expires_on, or the receipt time plus expires_in.
	ExpiresAt time.Time
	NotBefore time.Time // v1 only
}

// String keeps the tokens out of logs.
func (t TokenResponse) String() string {
	return fmt.Sprintf("entra.TokenResponse{type:%s scope:%q resource:%q expires:%s id_token:%t refresh_token:%t}",
		t.TokenType, t.Scope, t.Resource, t.ExpiresAt.UTC().Format(time.RFC3339), t.IDToken != "", t.RefreshToken != "")
}

// flexInt is an integer that v1 sends as a JSON string and v2 as a number.
type flexInt int64

func (n *flexInt) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	s := string(bytes.Trim(b, `"`))
	if s == "" {
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			return fmt.Errorf("not an integer: %.20s", s)
		}
		v = int64(f)
	}
	*n = flexInt(v)
	return nil
}

// PasswordToken runs the password grant. The credential POST is sent at most
// once to Entra: only a failure before any byte of it was written (dial, TLS
// handshake) is retried, once. Every failure is an *Error.
func (c *Client) PasswordToken(ctx context.Context, req PasswordRequest) (*TokenResponse, error) {
	form, err := req.form()
	if err != nil {
		return nil, err
	}
	body := form.Encode()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.postOnce(ctx, req.Endpoint.TokenURL(), body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := readBody(resp)
	if err != nil {
		return nil, unreachable(fmt.Errorf("reading token response: %w", err))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, newError(resp, raw)
	}
	return parseTokenResponse(raw, c.now())
}

// postOnce POSTs a form carrying credentials. net/http is given no way to
// replay it; postOnce itself retries once, and only a failure before the
// headers were written, e.g. a refused dial.
func (c *Client) postOnce(ctx context.Context, u, body string) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		var wrote atomic.Bool
		trace := &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, u, strings.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("entra: %w", err)
		}
		// Without GetBody net/http cannot rewind the form, so it cannot
		// replay it either: its HTTP/2 transport otherwise resends a request
		// whose stream the server reset with PROTOCOL_ERROR (net/http
		// http2canRetryError), however much of it the server had read, and
		// keeps resending until the deadline.
		req.GetBody = nil
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		resp, err := c.hc.Do(req)
		if err == nil {
			return resp, nil
		}
		if attempt > 0 || wrote.Load() || ctx.Err() != nil {
			return nil, unreachable(err)
		}
	}
}

func parseTokenResponse(raw []byte, now time.Time) (*TokenResponse, error) {
	w, ok := parseTokenWire(raw)
	if !ok {
		if err := json.Unmarshal(raw, &w); err != nil {
			return nil, fmt.Errorf("entra: token response: %w", err)
		}
	}
	if w.AccessToken == "" {
		return nil, errors.New("entra: token response has no access_token")
	}
	t := &TokenResponse{
		TokenType:    w.TokenType,
		AccessToken:  w.AccessToken,
		RefreshToken: w.RefreshToken,
		IDToken:      w.IDToken,
		Scope:        w.Scope,
		Resource:     w.Resource,
		ExpiresIn:    time.Duration(w.ExpiresIn) * time.Second,
		ExtExpiresIn: time.Duration(w.ExtExpiresIn) * time.Second,
	}
	if w.ExpiresOn > 0 {
		t.ExpiresAt = time.Unix(int64(w.ExpiresOn), 0)
	} else if w.ExpiresIn > 0 {
		t.ExpiresAt = now.Add(t.ExpiresIn)
	}
	if w.NotBefore > 0 {
		t.NotBefore = time.Unix(int64(w.NotBefore), 0)
	}
	return t, nil
}
