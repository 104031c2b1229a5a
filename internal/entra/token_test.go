package entra

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const secretPassword = "Tr0ub4dor&3 s3cret"

func TestPasswordTokenV1(t *testing.T) {
	f := newFakeEntra(t)
	f.token = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/contoso.onmicrosoft.com/oauth2/token" {
			t.Errorf("path %s", r.URL.Path)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("content type %q", ct)
		}
		r.ParseForm()
		want := url.Values{"grant_type": {"password"}, "resource": {"api://gatehouse-api"}, "client_id": {"cid"},
			"client_secret": {"csecret"}, "username": {"adele@contoso.onmicrosoft.com"}, "password": {secretPassword}, "scope": {"openid"}}
		if r.PostForm.Encode() != want.Encode() {
			t.Errorf("form %v", r.PostForm)
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		io.WriteString(w, `{"token_type":"Bearer","scope":"user_impersonation","expires_in":"3599","ext_expires_in":"3599","expires_on":"1578523094","not_before":"1578519194","resource":"api://gatehouse-api","access_token":"eyJ0eXAiAT","refresh_token":"eyJ0eXAiRT","id_token":"eyJ0eXAiID"}`)
	}
	c := NewClient(Options{})
	tok, err := c.PasswordToken(context.Background(), PasswordRequest{Endpoint: f.endpoint(V1), ClientID: "cid", ClientSecret: "csecret",
		Username: "adele@contoso.onmicrosoft.com", Password: secretPassword, Resource: "api://gatehouse-api", Scopes: []string{"ignored"}})
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "eyJ0eXAiAT" || tok.RefreshToken != "eyJ0eXAiRT" || tok.IDToken != "eyJ0eXAiID" || tok.Resource != "api://gatehouse-api" ||
		tok.Scope != "user_impersonation" || tok.ExpiresIn != 3599*time.Second || tok.ExtExpiresIn != 3599*time.Second ||
		tok.ExpiresAt.Unix() != 1578523094 || tok.NotBefore.Unix() != 1578519194 || tok.TokenType != "Bearer" {
		t.Fatalf("got %+v", *tok)
	}
	if s := fmt.Sprintf("%v %+v", tok, *tok); strings.Contains(s, "eyJ0eXAi") {
		t.Errorf("String() leaks tokens: %s", s)
	}
}

func TestPasswordTokenV2(t *testing.T) {
	f := newFakeEntra(t)
	f.token = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/organizations/oauth2/v2.0/token" {
			t.Errorf("path %s", r.URL.Path)
		}
		r.ParseForm()
		if got := r.PostForm.Get("scope"); got != "openid profile email offline_access https://graph.microsoft.com/User.Read" {
			t.Errorf("scope %q", got)
		}
		if r.PostForm.Has("resource") || r.PostForm.Has("client_secret") {
			t.Errorf("unexpected fields %v", r.PostForm)
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		io.WriteString(w, `{"token_type":"Bearer","scope":"openid profile email https://graph.microsoft.com/User.Read","expires_in":3599,"ext_expires_in":3599,"access_token":"at","refresh_token":"rt","id_token":"it"}`)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := NewClient(Options{Now: func() time.Time { return now }})
	ep := Endpoint{Authority: f.srv.URL + "/", Common: true, Tenant: "ignored", Version: V2}
	tok, err := c.PasswordToken(context.Background(), PasswordRequest{Endpoint: ep, ClientID: "cid",
		Username: "u@contoso.com", Password: secretPassword, Scopes: []string{"openid", "https://graph.microsoft.com/User.Read"}})
	if err != nil {
		t.Fatal(err)
	}
	if tok.ExpiresIn != 3599*time.Second || !tok.ExpiresAt.Equal(now.Add(3599*time.Second)) || !tok.NotBefore.IsZero() {
		t.Fatalf("got %+v", *tok)
	}
}

func TestPasswordTokenRefusesBadRequests(t *testing.T) {
	c := NewClient(Options{})
	ok := PasswordRequest{Endpoint: Endpoint{Tenant: "contoso.com", Version: V2}, ClientID: "c", Username: "u", Password: "p"}
	for name, mod := range map[string]func(*PasswordRequest){
		"common":      func(r *PasswordRequest) { r.Endpoint.Tenant = "common" },
		"consumers":   func(r *PasswordRequest) { r.Endpoint.Tenant = "Consumers" },
		"no tenant":   func(r *PasswordRequest) { r.Endpoint.Tenant = "" },
		"no version":  func(r *PasswordRequest) { r.Endpoint.Version = 0 },
		"v1 resource": func(r *PasswordRequest) { r.Endpoint.Version = V1 },
		"no password": func(r *PasswordRequest) { r.Password = "" },
		"no client":   func(r *PasswordRequest) { r.ClientID = "" },
		"path":        func(r *PasswordRequest) { r.Endpoint.Tenant = "a/../b" },
	} {
		req := ok
		mod(&req)
		if _, err := c.PasswordToken(context.Background(), req); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestPasswordTokenEntraError(t *testing.T) {
	f := newFakeEntra(t)
	f.token = func(w http.ResponseWriter, r *http.Request) {
		entraError(w, 400, "invalid_grant", 50126, "Error validating credentials due to invalid username or password.")
	}
	c := NewClient(Options{})
	_, err := c.PasswordToken(context.Background(), PasswordRequest{Endpoint: f.endpoint(V2), ClientID: "cid",
		ClientSecret: "csecret", Username: "adele@contoso.com", Password: secretPassword})
	var e *Error
	if !errors.As(err, &e) || e.Class != ClassInvalidCredentials || !errors.Is(err, ClassInvalidCredentials) {
		t.Fatalf("got %v", err)
	}
	if msg := err.Error(); strings.Contains(msg, secretPassword) || strings.Contains(msg, "csecret") {
		t.Fatalf("error leaks a secret: %s", msg)
	}
}

// TestPasswordTokenNeverResent: Entra read the credentials, then the
// connection died before an answer. Sending them again could count a second
// failed attempt against the user, so the client must give up.
func TestPasswordTokenNeverResent(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.ReadAll(r.Body)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer srv.Close()
	c := NewClient(Options{})
	_, err := c.PasswordToken(context.Background(), PasswordRequest{Endpoint: Endpoint{Authority: srv.URL, Tenant: "t", Version: V2},
		ClientID: "c", Username: "u", Password: secretPassword})
	if !errors.Is(err, ClassUnavailable) {
		t.Fatalf("got %v", err)
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("credentials sent %d times", n)
	}
	if strings.Contains(err.Error(), secretPassword) {
		t.Fatal("error leaks the password")
	}
}

// TestPasswordTokenRetriesUnsentOnce: a failed dial never reached Entra, so
// one retry is safe.
func TestPasswordTokenRetriesUnsentOnce(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, `{"token_type":"Bearer","expires_in":3599,"access_token":"at"}`)
	}))
	defer srv.Close()
	for _, failures := range []int32{1, 2} {
		var dials atomic.Int32
		tr := NewTransport()
		var d net.Dialer
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if dials.Add(1) <= failures {
				return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused")}
			}
			return d.DialContext(ctx, network, addr)
		}
		hits.Store(0)
		c := NewClient(Options{Transport: tr})
		_, err := c.PasswordToken(context.Background(), PasswordRequest{Endpoint: Endpoint{Authority: srv.URL, Tenant: "t", Version: V2},
			ClientID: "c", Username: "u", Password: "p"})
		switch failures {
		case 1:
			if err != nil || hits.Load() != 1 || dials.Load() != 2 {
				t.Fatalf("one dial failure: err %v, hits %d, dials %d", err, hits.Load(), dials.Load())
			}
		case 2:
			if !errors.Is(err, ClassUnavailable) || hits.Load() != 0 || dials.Load() != 2 {
				t.Fatalf("two dial failures: err %v, hits %d, dials %d", err, hits.Load(), dials.Load())
			}
		}
	}
}

func TestPasswordTokenNoRedirect(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	_, err := NewClient(Options{}).PasswordToken(context.Background(), PasswordRequest{
		Endpoint: Endpoint{Authority: srv.URL, Tenant: "t", Version: V2}, ClientID: "c", Username: "u", Password: "p"})
	if err == nil || elsewhere.Load() != 0 {
		t.Fatalf("err %v, redirected %d times", err, elsewhere.Load())
	}
}

func TestPasswordTokenTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer srv.Close()
	c := NewClient(Options{Timeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := c.PasswordToken(context.Background(), PasswordRequest{Endpoint: Endpoint{Authority: srv.URL, Tenant: "t", Version: V2},
		ClientID: "c", Username: "u", Password: "p"})
	if !errors.Is(err, ClassUnavailable) || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("got %v after %s", err, time.Since(start))
	}
}

func TestRequestStringRedacts(t *testing.T) {
	r := PasswordRequest{ClientSecret: "csecret", Password: secretPassword, Username: "u"}
	for _, s := range []string{r.String(), fmt.Sprintf("%v|%+v|%s", r, r, &r)} {
		if strings.Contains(s, secretPassword) || strings.Contains(s, "csecret") {
			t.Fatalf("leak: %s", s)
		}
	}
}

// TestUpstreamBodiesBounded: an endless answer (a broken proxy, a hostile
// host) is cut at maxBody, from the token endpoint and from Graph alike.
func TestUpstreamBodiesBounded(t *testing.T) {
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"`))
		chunk := []byte(strings.Repeat("a", 64<<10))
		for r.Context().Err() == nil && sent.Load() < 64<<20 {
			n, err := w.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	c := NewClient(Options{Timeout: 10 * time.Second})
	_, err := c.PasswordToken(context.Background(), PasswordRequest{Endpoint: Endpoint{Authority: srv.URL, Tenant: "t", Version: V2},
		ClientID: "c", Username: "u", Password: "p"})
	if !errors.Is(err, ClassUnavailable) || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("token: %v", err)
	}
	if _, err := c.Me(context.Background(), srv.URL, "graph-token", nil); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("graph: %v", err)
	}
	if n := sent.Load(); n >= 64<<20 {
		t.Fatalf("read the whole %d bytes", n)
	}
}

// TestV1CommonEndpoint: "organizations" is an alias of the v2 endpoint
// only; the v1 endpoint answers it with AADSTS90002 "Tenant 'organizations'
// not found" (panva/openid-client#175), and knows the multi-tenant
// endpoint as "common", where it takes the password grant (MicrosoftDocs/
// azure-docs#16902; AD v1-protocols-oauth-code.md: tenant "common").
func TestV1CommonEndpoint(t *testing.T) {
	f := newFakeEntra(t)
	var posted string
	f.token = func(w http.ResponseWriter, r *http.Request) {
		posted = r.URL.Path
		io.WriteString(w, `{"token_type":"Bearer","expires_in":"3599","access_token":"at","id_token":"it"}`)
	}
	c := newClock().client()
	ep := Endpoint{Authority: f.srv.URL, Common: true, Version: V1}
	m, err := c.Metadata(context.Background(), ep)
	if err != nil {
		t.Fatalf("v1 multi-tenant metadata: %v", err)
	}
	if m.Issuer != "https://sts.windows.net/{tenantid}/" {
		t.Errorf("issuer %q", m.Issuer)
	}
	if _, err := c.PasswordToken(context.Background(), PasswordRequest{Endpoint: ep, ClientID: "cid", Resource: "api://x",
		Username: "u@contoso.com", Password: secretPassword}); err != nil || posted != "/common/oauth2/token" {
		t.Fatalf("v1 multi-tenant password grant: %v, posted to %q", err, posted)
	}
}
