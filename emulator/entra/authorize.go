package entra

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// codeLifetime: Entra authorization codes are short-lived ("about 10
// minutes", v2-oauth2-auth-code-flow.md).
const codeLifetime = 10 * time.Minute

type authCode struct {
	tenant    *Tenant
	clientID  string
	redirect  string
	public    bool // redirect URI registered as a public client one
	v2        bool
	target    string // v2 scope or v1 resource
	oidcScope string // v1 scope parameter (openid)
	nonce     string
	challenge string
	method    string
	user      *User
	amr       []string
	expires   time.Time
	redeemed  bool
}

type codeStore struct {
	mu sync.Mutex
	m  map[string]*authCode
}

func (cs *codeStore) put(c *authCode, now time.Time) string {
	code := "1.A" + randomID() + randomID()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.m == nil {
		cs.m = map[string]*authCode{}
	}
	for k, v := range cs.m {
		if now.After(v.expires.Add(time.Hour)) {
			delete(cs.m, k)
		}
	}
	cs.m[code] = c
	return code
}

// redeem marks a code used and returns it; a second redemption reports
// redeemed so the caller can answer AADSTS54005.
func (cs *codeStore) redeem(code string) (authCode, bool, bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c, ok := cs.m[code]
	if !ok {
		return authCode{}, false, false
	}
	was := c.redeemed
	c.redeemed = true
	return *c, true, was
}

var signInPage = template.Must(template.New("signin").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to your account</title></head>
<body>
<h1>Sign in</h1>
<p>{{.App}} (Entra ID emulator, tenant {{.Tenant}})</p>
{{if .Error}}<p id="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<label>Email, phone, or Skype <input type="email" name="login" value="{{.Login}}" autofocus></label>
<label>Password <input type="password" name="passwd"></label>
<button type="submit">Sign in</button>
</form>
</body></html>
`))

var errorPage = template.Must(template.New("error").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to your account</title></head>
<body><h1>Sorry, but we're having trouble signing you in.</h1><p id="error">{{.}}</p></body></html>
`))

var formPostPage = template.Must(template.New("formpost").Parse(`<!DOCTYPE html>
<html><head><title>Working...</title></head>
<body onload="document.forms[0].submit()"><form method="POST" name="hiddenform" action="{{.Action}}">
{{range $k, $v := .Fields}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<noscript><p>Script is disabled. Click Submit to continue.</p><input type="submit" value="Submit"></noscript>
</form></body></html>
`))

// authorizeParams are the protocol parameters carried through the sign-in
// page as hidden fields.
var authorizeParams = []string{"client_id", "response_type", "redirect_uri", "scope", "resource", "state",
	"nonce", "response_mode", "code_challenge", "code_challenge_method", "prompt", "login_hint"}

// serveAuthorize renders a plain sign-in page and redirects back with a
// code. Errors about the client or redirect URI are shown on the page and
// never redirected, since the redirect target is untrusted then
// (RFC 6749 §4.1.2.1, as Entra does for AADSTS50011).
func (s *Server) serveAuthorize(v2 bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			s.errorPage(w, r, errMalformed())
			return
		}
		p := r.Form
		seg := r.PathValue("tenant")
		t, alias, ok := s.endpointTenant(seg, v2)
		if !ok {
			s.errorPage(w, r, errTenantNotFound(seg, false))
			return
		}
		clientID := p.Get("client_id")
		if clientID == "" {
			s.errorPage(w, r, errMissingParameter("client_id"))
			return
		}
		app := s.findApp(t, clientID)
		if app == nil {
			name := seg
			if t != nil {
				name = t.defaultName
			}
			s.errorPage(w, r, errAppNotFound(clientID, name))
			return
		}
		redirect, public, ok := matchRedirect(app, p.Get("redirect_uri"))
		if !ok {
			s.errorPage(w, r, badRequest("invalid_request", 50011, "The redirect URI '"+p.Get("redirect_uri")+"' specified in the request does not match the redirect URIs configured for the application '"+app.AppID+"'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this."))
			return
		}
		back := func(e *stsError) { s.redirectError(w, r, redirect, p, e) }
		if p.Get("response_type") != "code" {
			back(badRequest("unsupported_response_type", 700054, "response_type '"+p.Get("response_type")+"' is not enabled for the application."))
			return
		}
		if p.Get("prompt") == "none" {
			back(badRequest("login_required", 50058, "A silent sign-in request was sent but no user is signed in."))
			return
		}
		if m := p.Get("code_challenge_method"); m != "" && m != "S256" && m != "plain" {
			back(badRequest("invalid_request", 501491, "Invalid size of Code_Challenge parameter."))
			return
		}
		login := p.Get("login")
		if r.Method != http.MethodPost || login == "" {
			s.signInPage(w, r, app, t, alias, p, "", p.Get("login_hint"))
			return
		}
		if t == nil {
			t = s.tenantByDomain(domainOf(login))
		}
		var u *User
		if t != nil && t.app(app.AppID) != nil {
			u = t.user(login)
		}
		if u == nil {
			s.signInPage(w, r, app, t, alias, p, "AADSTS50034: This username may be incorrect. Make sure you typed it correctly.", login)
			return
		}
		if e := s.checkPassword(t, u, p.Get("passwd")); e != nil {
			msg := "AADSTS50126: Your account or password is incorrect."
			if e.code == 50053 {
				msg = "AADSTS50053: Your account is locked. Contact your support person to unlock it, then try again."
			}
			s.signInPage(w, r, app, t, alias, p, msg, login)
			return
		}
		// Check the target and consent the way the token endpoint will, so
		// the error comes back on the redirect rather than at redemption.
		form := url.Values{"scope": {p.Get("scope")}, "resource": {p.Get("resource")}}
		q := &tokenRequest{s: s, r: r, form: form, v2: v2, tenant: t, client: t.app(app.AppID)}
		is, e := q.target()
		if e == nil {
			is.user = u
			e = q.consent(is)
		}
		if e == nil {
			e = s.checkSignInAllowed(u, is.res, false)
		}
		if e != nil {
			if e.err != "consent_required" && e.code != 65001 {
				e.err = "access_denied"
			} else {
				e.err = "consent_required"
			}
			back(e)
			return
		}
		amr := []string{"pwd"}
		if st, _ := s.userState(u); st == StateMFARequired || st == StateMFARegistrationRequired {
			// An interactive sign-in performs the MFA a password grant cannot.
			amr = append(amr, "mfa")
		}
		code := s.codes.put(&authCode{
			tenant: t, clientID: app.AppID, redirect: redirect, public: public, v2: v2,
			target: pick(v2, p.Get("scope"), p.Get("resource")), oidcScope: p.Get("scope"),
			nonce: p.Get("nonce"), challenge: p.Get("code_challenge"), method: p.Get("code_challenge_method"),
			user: u, amr: amr, expires: s.now().Add(codeLifetime),
		}, s.now())
		s.redirectBack(w, r, redirect, p.Get("response_mode"), url.Values{
			"code": {code}, "state": {p.Get("state")}, "session_state": {newGUID()},
		})
	}
}

func pick(v2 bool, a, b string) string {
	if v2 {
		return a
	}
	return b
}

func (s *Server) findApp(t *Tenant, clientID string) *Application {
	if t != nil {
		return t.app(clientID)
	}
	for _, t := range s.dir.Tenants {
		if a := t.app(clientID); a != nil {
			return a
		}
	}
	return nil
}

// matchRedirect requires an exact match with a registered redirect URI;
// with none given, a single registered URI is used.
func matchRedirect(app *Application, uri string) (string, bool, bool) {
	all := slices.Concat(app.Web.RedirectURIs, app.PublicClient.RedirectURIs)
	if uri == "" {
		if len(all) == 1 {
			return all[0], slices.Contains(app.PublicClient.RedirectURIs, all[0]), true
		}
		return "", false, false
	}
	if slices.Contains(app.Web.RedirectURIs, uri) {
		return uri, false, true
	}
	if slices.Contains(app.PublicClient.RedirectURIs, uri) {
		return uri, true, true
	}
	return "", false, false
}

func (s *Server) signInPage(w http.ResponseWriter, r *http.Request, app *Application, t *Tenant, alias string, p url.Values, msg, login string) {
	hidden := map[string]string{}
	for _, k := range authorizeParams {
		if v := p.Get(k); v != "" {
			hidden[k] = v
		}
	}
	tenant := alias
	if t != nil {
		tenant = t.DisplayName
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = signInPage.Execute(w, map[string]any{
		"App": app.DisplayName, "Tenant": tenant, "Error": msg, "Action": r.URL.Path, "Hidden": hidden, "Login": login,
	})
}

func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, e *stsError) {
	s.counters.add("error:AADSTS" + strconv.Itoa(e.code))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	_ = errorPage.Execute(w, s.stsBody(r, e).ErrorDescription)
}

func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, redirect string, p url.Values, e *stsError) {
	s.counters.add("error:AADSTS" + strconv.Itoa(e.code))
	b := s.stsBody(r, e)
	v := url.Values{"error": {b.Error}, "error_description": {b.ErrorDescription}, "error_uri": {b.ErrorURI}}
	if st := p.Get("state"); st != "" {
		v.Set("state", st)
	}
	s.redirectBack(w, r, redirect, p.Get("response_mode"), v)
}

func (s *Server) redirectBack(w http.ResponseWriter, r *http.Request, redirect, mode string, v url.Values) {
	if v.Get("state") == "" {
		v.Del("state")
	}
	switch mode {
	case "form_post":
		fields := map[string]string{}
		for k := range v {
			fields[k] = v.Get(k)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = formPostPage.Execute(w, map[string]any{"Action": redirect, "Fields": fields})
	case "fragment":
		http.Redirect(w, r, redirect+"#"+v.Encode(), http.StatusFound)
	default:
		sep := "?"
		if strings.Contains(redirect, "?") {
			sep = "&"
		}
		http.Redirect(w, r, redirect+sep+v.Encode(), http.StatusFound)
	}
}

// authorizationCode redeems a code, checking client, redirect URI and PKCE
// (RFC 7636; AADSTS501481 on a verifier mismatch).
func (q *tokenRequest) authorizationCode() (any, *stsError) {
	code := q.form.Get("code")
	if code == "" {
		return nil, errMissingParameter("code")
	}
	c, ok, used := q.s.codes.redeem(code)
	switch {
	case !ok:
		return nil, errMalformed()
	case used:
		return nil, errCodeRedeemed()
	case q.s.now().After(c.expires):
		return nil, errGrantExpired()
	case q.tenant != nil && q.tenant != c.tenant:
		return nil, errInvalidGrant()
	}
	q.tenant = c.tenant
	app := q.tenant.app(q.form.Get("client_id"))
	if e := q.authClient(c.public || (app != nil && app.IsFallbackPublicClient)); e != nil {
		return nil, e
	}
	if !strings.EqualFold(q.client.AppID, c.clientID) {
		return nil, errInvalidGrant()
	}
	if ru := q.form.Get("redirect_uri"); ru != c.redirect {
		return nil, badRequest("invalid_grant", 500112, "The reply address '"+ru+"' does not match the reply address '"+c.redirect+"' provided when requesting Authorization code.")
	}
	if c.challenge != "" {
		v := q.form.Get("code_verifier")
		want := v
		if c.method == "S256" {
			h := sha256.Sum256([]byte(v))
			want = base64.RawURLEncoding.EncodeToString(h[:])
		}
		if v == "" || subtle.ConstantTimeCompare([]byte(want), []byte(c.challenge)) != 1 {
			return nil, errPKCE()
		}
	}
	if c.v2 {
		q.form.Set("scope", c.target)
	} else {
		q.form.Set("resource", c.target)
		q.form.Set("scope", c.oidcScope)
	}
	is, e := q.target()
	if e != nil {
		return nil, e
	}
	is.user, is.amr, is.nonce = c.user, c.amr, c.nonce
	is.refresh = !q.v2 || is.oidc["offline_access"]
	if e := q.s.checkSignInAllowed(c.user, is.res, false); e != nil {
		return nil, e
	}
	if e := q.consent(is); e != nil {
		return nil, e
	}
	return q.s.respond(q.r, is)
}
