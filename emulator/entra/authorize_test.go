package entra_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/emulator/entra"
)

const v2Authorize = "/" + tenantID + "/oauth2/v2.0/authorize"

func authorizeQuery(kv ...string) url.Values {
	q := url.Values{"client_id": {nativeID}, "response_type": {"code"}, "redirect_uri": {nativeRedirect},
		"scope": {apiURI + "/API.Access openid offline_access"}, "state": {"st-1"}, "nonce": {"n-1"}}
	return with(q, kv...)
}

// signIn posts the sign-in form and returns the redirect's parameters.
func (e *env) signIn(path string, q url.Values, login, password string) (int, url.Values, string) {
	e.t.Helper()
	r := e.postForm(path, with(q, "login", login, "passwd", password))
	if r.status != http.StatusFound {
		return r.status, nil, r.raw
	}
	u, err := url.Parse(r.header.Get("Location"))
	if err != nil {
		e.t.Fatal(err)
	}
	return r.status, u.Query(), u.Scheme + "://" + u.Host + u.Path
}

func TestAuthorizePage(t *testing.T) {
	e := newEnv(t)
	r := e.get(v2Authorize+"?"+authorizeQuery().Encode(), "")
	if r.status != 200 || !strings.Contains(r.raw, `name="passwd"`) || !strings.Contains(r.raw, `value="st-1"`) {
		t.Fatalf("sign-in page: %d %s", r.status, r.raw)
	}
	cases := []struct {
		name string
		q    url.Values
		code string
	}{
		{"unregistered redirect", authorizeQuery("redirect_uri", "https://evil.example/cb"), "AADSTS50011"},
		{"unknown client", authorizeQuery("client_id", "00000000-1111-4222-8333-444444444444"), "AADSTS700016"},
		{"missing client", authorizeQuery("client_id", ""), "AADSTS900144"},
	}
	for _, tc := range cases {
		r := e.get(v2Authorize+"?"+tc.q.Encode(), "")
		if r.status != 400 || !strings.Contains(r.raw, tc.code) || r.header.Get("Location") != "" {
			t.Errorf("%s: %d %s", tc.name, r.status, r.raw)
		}
	}
	if r := e.get("/nowhere.example/oauth2/v2.0/authorize?"+authorizeQuery().Encode(), ""); r.status != 400 || !strings.Contains(r.raw, "AADSTS90002") {
		t.Errorf("unknown tenant: %d", r.status)
	}
	// "organizations" is an alias of the v2 endpoint only.
	if r := e.get("/organizations/oauth2/authorize?"+authorizeQuery().Encode(), ""); r.status != 400 || !strings.Contains(r.raw, "AADSTS90002") {
		t.Errorf("v1 organizations: %d", r.status)
	}
}

func TestAuthorizeRedirectErrors(t *testing.T) {
	e := newEnv(t)
	for name, tc := range map[string]struct {
		q          url.Values
		login, pwd string
		err, code  string
	}{
		"prompt none":        {authorizeQuery("prompt", "none"), "", "", "login_required", "AADSTS50058"},
		"token response":     {authorizeQuery("response_type", "token"), "", "", "unsupported_response_type", "AADSTS700054"},
		"conditional access": {authorizeQuery(), "frank@contoso.com", "Frank-Passw0rd!", "access_denied", "AADSTS53003"},
		"no consent":         {authorizeQuery("client_id", unconsentedID, "redirect_uri", ""), alice, alicePassword, "", ""},
	} {
		t.Run(name, func(t *testing.T) {
			var q url.Values
			if tc.login == "" {
				r := e.get(v2Authorize+"?"+tc.q.Encode(), "")
				u, _ := url.Parse(r.header.Get("Location"))
				q = u.Query()
			} else {
				status, got, _ := e.signIn(v2Authorize, tc.q, tc.login, tc.pwd)
				if tc.err == "" { // the unconsented tool has no redirect URI: error page
					if status != 400 {
						t.Fatalf("status %d", status)
					}
					return
				}
				q = got
			}
			if q.Get("error") != tc.err || !strings.HasPrefix(q.Get("error_description"), tc.code+":") || q.Get("state") != "st-1" {
				t.Errorf("redirect = %v", q)
			}
		})
	}
	// A wrong password re-renders the page instead of redirecting.
	status, _, body := e.signIn(v2Authorize, authorizeQuery(), alice, "wrong")
	if status != 200 || !strings.Contains(body, "AADSTS50126") {
		t.Errorf("wrong password: %d %s", status, body)
	}
}

func TestAuthorizationCodePKCE(t *testing.T) {
	e := newEnv(t)
	verifier := oauth2.GenerateVerifier()
	q := authorizeQuery("code_challenge", oauth2.S256ChallengeFromVerifier(verifier), "code_challenge_method", "S256")
	// MFA users get through interactively.
	status, got, where := e.signIn(v2Authorize, q, "dave@contoso.com", "Dave-Passw0rd!")
	if status != http.StatusFound || where != nativeRedirect || got.Get("code") == "" || got.Get("state") != "st-1" {
		t.Fatalf("sign-in: %d %v %s", status, got, where)
	}
	redeem := url.Values{"grant_type": {"authorization_code"}, "client_id": {nativeID}, "code": {got.Get("code")},
		"redirect_uri": {nativeRedirect}, "code_verifier": {"not-the-verifier-not-the-verifier-not-the-v"}}
	checkSTSError(t, e.postForm(v2Token, redeem), 400, "invalid_grant", 501481, "")
	checkSTSError(t, e.postForm(v2Token, redeem), 400, "invalid_grant", 54005, "") // a failed redemption burns the code

	_, got, _ = e.signIn(v2Authorize, q, "dave@contoso.com", "Dave-Passw0rd!")
	redeem = with(redeem, "code", got.Get("code"), "code_verifier", verifier)
	checkSTSError(t, e.postForm(v2Token, with(redeem, "redirect_uri", "gatehouse://callback")), 400, "invalid_grant", 500112, "")
	_, got, _ = e.signIn(v2Authorize, q, "dave@contoso.com", "Dave-Passw0rd!")
	redeem = with(redeem, "code", got.Get("code"))
	r := e.postForm(v2Token, redeem)
	if r.status != 200 || r.body["refresh_token"] == nil {
		t.Fatalf("redeem: %d %s", r.status, r.raw)
	}
	_, id := e.verify(r.body["id_token"].(string), "/"+tenantID+"/discovery/v2.0/keys")
	if id["nonce"] != "n-1" {
		t.Errorf("nonce = %v", id["nonce"])
	}
	_, at := e.verify(r.body["access_token"].(string), "/"+tenantID+"/discovery/keys")
	if amr, _ := at["amr"].([]any); len(amr) != 2 || amr[1] != "mfa" {
		t.Errorf("amr = %v", at["amr"])
	}
	checkSTSError(t, e.postForm(v2Token, redeem), 400, "invalid_grant", 54005, "")

	_, got, _ = e.signIn(v2Authorize, q, alice, alicePassword)
	e.clock.Advance(11 * time.Minute)
	checkSTSError(t, e.postForm(v2Token, with(redeem, "code", got.Get("code"))), 400, "invalid_grant", 70008, "")
}

func TestAuthorizeV1FormPost(t *testing.T) {
	e := newEnv(t)
	q := url.Values{"client_id": {confID}, "response_type": {"code"}, "redirect_uri": {"https://gatehouse.example.com/callback"},
		"resource": {"https://graph.microsoft.com"}, "response_mode": {"form_post"}, "state": {"s"}}
	r := e.postForm("/"+tenantID+"/oauth2/authorize", with(q, "login", alice, "passwd", alicePassword))
	if r.status != 200 || !strings.Contains(r.raw, `action="https://gatehouse.example.com/callback"`) || !strings.Contains(r.raw, `name="code"`) {
		t.Fatalf("form_post: %d %s", r.status, r.raw)
	}
	i := strings.Index(r.raw, `name="code" value="`)
	code := r.raw[i+len(`name="code" value="`):]
	code = code[:strings.IndexByte(code, '"')]
	redeem := url.Values{"grant_type": {"authorization_code"}, "client_id": {confID}, "code": {code},
		"redirect_uri": {"https://gatehouse.example.com/callback"}}
	// A web redirect URI makes the client confidential: the secret is due.
	checkSTSError(t, e.postForm(v1Token, redeem), 401, "invalid_client", 7000218, "")
	r = e.postForm("/"+tenantID+"/oauth2/authorize", with(q, "login", alice, "passwd", alicePassword))
	i = strings.Index(r.raw, `name="code" value="`)
	code = r.raw[i+len(`name="code" value="`):]
	code = code[:strings.IndexByte(code, '"')]
	res := e.postForm(v1Token, with(redeem, "code", code, "client_secret", confSecret))
	if res.status != 200 || res.body["resource"] != "https://graph.microsoft.com" || res.body["expires_on"] == nil {
		t.Fatalf("v1 redeem: %d %s", res.status, res.raw)
	}
}

// TestOAuth2Client drives the emulator with golang.org/x/oauth2.
func TestOAuth2Client(t *testing.T) {
	e := newEnv(t, func(o *entra.Options) { o.Clock = time.Now })
	ctx := context.Background()
	cfg := &oauth2.Config{
		ClientID:     nativeID,
		ClientSecret: nativeSecret,
		Endpoint: oauth2.Endpoint{
			AuthURL:   e.base + v2Authorize,
			TokenURL:  e.base + v2Token,
			AuthStyle: oauth2.AuthStyleInParams,
		},
		RedirectURL: nativeRedirect,
		Scopes:      []string{"https://graph.microsoft.com/User.Read", "openid", "offline_access"},
	}
	tok, err := cfg.PasswordCredentialsToken(ctx, alice, alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || time.Until(tok.Expiry) < 50*time.Minute {
		t.Errorf("token = %+v", tok)
	}
	// The refresh flow through TokenSource.
	tok.Expiry = time.Now().Add(-time.Minute)
	fresh, err := cfg.TokenSource(ctx, tok).Token()
	if err != nil || fresh.AccessToken == tok.AccessToken {
		t.Fatalf("refresh: %v", err)
	}
	// Graph through the oauth2 HTTP client.
	res, err := cfg.Client(ctx, fresh).Get(e.base + "/v1.0/me")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("graph: %v %v", res, err)
	}
	res.Body.Close()

	// Code flow with PKCE.
	verifier := oauth2.GenerateVerifier()
	authURL, _ := url.Parse(cfg.AuthCodeURL("xyz", oauth2.S256ChallengeOption(verifier)))
	_, got, _ := e.signIn(authURL.Path, authURL.Query(), alice, alicePassword)
	tok, err = cfg.Exchange(ctx, got.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil || tok.Extra("id_token") == nil {
		t.Fatalf("exchange: %v", err)
	}
	// A failure surfaces as *oauth2.RetrieveError with Entra's fields.
	_, err = cfg.PasswordCredentialsToken(ctx, alice, "wrong")
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" || !strings.HasPrefix(re.ErrorDescription, "AADSTS50126:") {
		t.Errorf("error = %v", err)
	}
}
