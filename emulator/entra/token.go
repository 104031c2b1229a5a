package entra

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// refreshLifetime is Entra's default refresh token lifetime (90 days of
// inactivity, configurable-token-lifetimes.md).
const refreshLifetime = 90 * 24 * time.Hour

var oidcScopes = set("openid", "profile", "email", "offline_access")

// tokenResponseV1 is the v1 response: numbers as strings, plus resource,
// expires_on and not_before (reference §1.2). tokenResponseV2 sends numbers
// (reference §1.1).
type tokenResponseV1 struct {
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope"`
	ExpiresIn    string `json:"expires_in"`
	ExtExpiresIn string `json:"ext_expires_in"`
	ExpiresOn    string `json:"expires_on"`
	NotBefore    string `json:"not_before"`
	Resource     string `json:"resource"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

type tokenResponseV2 struct {
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope"`
	ExpiresIn    int64  `json:"expires_in"`
	ExtExpiresIn int64  `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

// issue is everything a token response is built from.
type issue struct {
	v2           bool // endpoint version: shapes the response and the ID token
	tenant       *Tenant
	client       *Application
	confidential bool
	user         *User // nil for client credentials
	res          *resource
	aud          string   // v1-format access token audience, as requested
	scp          []string // granted delegated scopes
	oidc         map[string]bool
	resource     string // v1 response "resource"
	refresh      bool
	amr          []string
	nonce        string
	ip           string
	rtScope      string // what a refresh token redeems for
}

type claims struct {
	Aud               string                       `json:"aud"`
	Iss               string                       `json:"iss"`
	Iat               int64                        `json:"iat"`
	Nbf               int64                        `json:"nbf"`
	Exp               int64                        `json:"exp"`
	Acr               string                       `json:"acr,omitempty"`
	Amr               []string                     `json:"amr,omitempty"`
	AppID             string                       `json:"appid,omitempty"`
	AppIDAcr          string                       `json:"appidacr,omitempty"`
	Azp               string                       `json:"azp,omitempty"`
	AzpAcr            string                       `json:"azpacr,omitempty"`
	Email             string                       `json:"email,omitempty"`
	FamilyName        string                       `json:"family_name,omitempty"`
	GivenName         string                       `json:"given_name,omitempty"`
	Groups            []string                     `json:"groups,omitempty"`
	ClaimNames        map[string]string            `json:"_claim_names,omitempty"`
	ClaimSources      map[string]map[string]string `json:"_claim_sources,omitempty"`
	IDTyp             string                       `json:"idtyp,omitempty"`
	IPAddr            string                       `json:"ipaddr,omitempty"`
	Name              string                       `json:"name,omitempty"`
	Nonce             string                       `json:"nonce,omitempty"`
	OID               string                       `json:"oid,omitempty"`
	PreferredUsername string                       `json:"preferred_username,omitempty"`
	Scp               string                       `json:"scp,omitempty"`
	Sub               string                       `json:"sub"`
	TID               string                       `json:"tid"`
	UniqueName        string                       `json:"unique_name,omitempty"`
	UPN               string                       `json:"upn,omitempty"`
	Uti               string                       `json:"uti"`
	Ver               string                       `json:"ver"`
}

func (s *Server) serveToken(v2 bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			s.writeSTSError(w, r, errPostOnly(r.Method))
			return
		}
		if err := r.ParseForm(); err != nil {
			s.writeSTSError(w, r, errMalformed())
			return
		}
		form := r.PostForm
		grant := form.Get("grant_type")
		if grant == "" {
			s.writeSTSError(w, r, errMissingParameter("grant_type"))
			return
		}
		seg := r.PathValue("tenant")
		t, alias, ok := s.endpointTenant(seg, v2)
		if !ok {
			s.writeSTSError(w, r, errTenantNotFound(seg, false))
			return
		}
		req := &tokenRequest{s: s, r: r, form: form, v2: v2, tenant: t, alias: alias}
		var body any
		var e *stsError
		switch grant {
		case "password":
			body, e = req.password()
		case "client_credentials":
			body, e = req.clientCredentials()
		case "authorization_code":
			body, e = req.authorizationCode()
		case "refresh_token":
			body, e = req.refreshToken()
		default:
			e = errUnsupportedGrant(grant)
		}
		if e != nil {
			s.writeSTSError(w, r, e)
			return
		}
		w.Header().Set("Cache-Control", "no-store, no-cache")
		w.Header().Set("Pragma", "no-cache")
		writeJSON(w, http.StatusOK, body)
	}
}

type tokenRequest struct {
	s      *Server
	r      *http.Request
	form   url.Values
	v2     bool
	tenant *Tenant
	alias  string
	client *Application
	conf   bool
}

// authClient resolves client_id and checks the client credential. A public
// client (isFallbackPublicClient, or a public redirect URI in the code
// flow) may omit the secret; a confidential one must send a valid,
// unexpired one (AADSTS7000218/7000215/7000222, reference §1.3, §3.2).
func (q *tokenRequest) authClient(publicAllowed bool) *stsError {
	id := q.form.Get("client_id")
	secret := q.form.Get("client_secret")
	if u, p, ok := q.r.BasicAuth(); ok {
		// client_secret_basic is advertised in v2 metadata (reference §2.4).
		id, _ = url.QueryUnescape(u)
		secret, _ = url.QueryUnescape(p)
	}
	if id == "" {
		return errMissingParameter("client_id")
	}
	q.client = q.tenant.app(id)
	if q.client == nil {
		return errAppNotFound(id, q.tenant.defaultName)
	}
	if secret == "" {
		if publicAllowed {
			return nil
		}
		// Certificate credentials (client_assertion) are not emulated.
		return errSecretRequired()
	}
	if len(q.client.PasswordCredentials) == 0 {
		if q.client.IsFallbackPublicClient {
			return errPublicClientSecret()
		}
		return errBadSecret(q.client.AppID)
	}
	now := q.s.now()
	for _, c := range q.client.PasswordCredentials {
		if subtle.ConstantTimeCompare([]byte(c.SecretText), []byte(secret)) == 1 {
			if !c.EndDateTime.IsZero() && now.After(c.EndDateTime) {
				return errSecretExpired(q.client.AppID)
			}
			if !c.StartDateTime.IsZero() && now.Before(c.StartDateTime) {
				return errBadSecret(q.client.AppID)
			}
			q.conf = true
			return nil
		}
	}
	return errBadSecret(q.client.AppID)
}

// password is the ROPC grant (reference §1).
func (q *tokenRequest) password() (any, *stsError) {
	username := q.form.Get("username")
	if q.tenant == nil {
		// v2 refuses ROPC on /common and /consumers (AADSTS9001023,
		// reference §1.1); v2's /organizations and v1's /common find the
		// tenant from the user name's domain (reference §1.2,
		// nordvall/TokenClient#1, MicrosoftDocs/azure-docs#16902).
		if q.v2 && q.alias != "organizations" {
			return nil, errCommonNotSupported()
		}
		if q.alias == "consumers" {
			return nil, errCommonNotSupported()
		}
		if username == "" {
			return nil, errMissingCredentialField("username")
		}
		q.tenant = q.s.tenantByDomain(domainOf(username))
		if q.tenant == nil {
			return nil, errUserNotFound(q.alias)
		}
	}
	app := q.tenant.app(q.form.Get("client_id"))
	if e := q.authClient(app != nil && app.IsFallbackPublicClient); e != nil {
		return nil, e
	}
	if username == "" {
		return nil, errMissingCredentialField("username")
	}
	password := q.form.Get("password")
	if password == "" {
		return nil, errMissingCredentialField("password")
	}
	if q.v2 && strings.TrimSpace(q.form.Get("scope")) == "" {
		// v2-oauth-ropc.md calls scope "Recommended", but Entra answers
		// 900144 without it (MicrosoftDocs/entra-docs#370, 2024).
		return nil, errMissingParameter("scope")
	}
	is, e := q.target()
	if e != nil {
		return nil, e
	}
	u := q.tenant.user(username)
	if u == nil {
		return nil, errUserNotFound(q.tenant.ID)
	}
	if e := q.s.checkPassword(q.tenant, u, password); e != nil {
		return nil, e
	}
	if e := q.s.checkSignInAllowed(u, is.res, true); e != nil {
		return nil, e
	}
	is.user = u
	is.amr = []string{"pwd"}
	is.refresh = !q.v2 || is.oidc["offline_access"]
	if e := q.consent(is); e != nil {
		return nil, e
	}
	return q.s.respond(q.r, is)
}

// checkPassword applies the states that fail before or instead of the
// password check. Order matters: smart lockout answers 50053 whatever the
// password, while disabled, expired, MFA and Conditional Access are only
// revealed after a correct password (password-spray tools rely on this,
// e.g. knavesec/CredMaster#64).
func (s *Server) checkPassword(t *Tenant, u *User, password string) *stsError {
	st, _ := s.userState(u)
	switch {
	case st == StateLocked:
		return errLocked()
	case st == StatePasswordless || u.Password == "":
		// ROPC cannot sign in accounts without passwords (reference §1.1);
		// Entra says so with 50056 whatever the password (reference §3.2).
		return errNoPassword()
	case t.federated(u) && !t.AllowCloudPasswordValidation:
		// Federated users fail with 50126 unless the tenant allows cloud
		// password validation (reference §1.4).
		return errFederatedCredentials()
	case password != strings.TrimSpace(password):
		// "Passwords with leading or trailing whitespace are not supported
		// by ROPC" (v2-oauth-ropc.md).
		return errInvalidCredentials()
	case subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) != 1:
		return errInvalidCredentials()
	}
	return nil
}

// checkSignInAllowed applies the post-authentication states. Interactive
// sign-ins satisfy MFA, so nonInteractive decides whether 50076/50079 apply.
func (s *Server) checkSignInAllowed(u *User, res *resource, nonInteractive bool) *stsError {
	st, enabled := s.userState(u)
	switch {
	case !enabled:
		return errDisabled()
	case st == StatePasswordExpired:
		return errPasswordExpired()
	case st == StateMFARequired && nonInteractive:
		return errMFARequired(res.appID)
	case st == StateMFARegistrationRequired && nonInteractive:
		return errMFARegistration(res.appID)
	case st == StateConditionalAccess:
		return errConditionalAccess()
	}
	return nil
}

// target works out the resource and requested scopes: v1 from resource=,
// v2 from scope= (reference §1.1, §1.2).
func (q *tokenRequest) target() (*issue, *stsError) {
	is := &issue{v2: q.v2, tenant: q.tenant, oidc: map[string]bool{}, ip: clientIP(q.r)}
	if !q.v2 {
		resParam := q.form.Get("resource")
		if resParam == "" {
			return nil, errMissingParameter("resource")
		}
		res, ok := q.tenant.resource(resParam)
		if !ok {
			return nil, errResourceNotFound(resParam, q.tenant.defaultName)
		}
		is.res, is.aud, is.resource, is.rtScope = res, resParam, resParam, resParam
		for _, sc := range strings.Fields(q.form.Get("scope")) {
			if oidcScopes[sc] {
				is.oidc[sc] = true
			}
		}
		return is, nil
	}
	raw := q.form.Get("scope")
	is.rtScope = raw
	var values []string
	var dflt, specific, multi bool
	for _, sc := range strings.Fields(raw) {
		if oidcScopes[strings.ToLower(sc)] {
			is.oidc[strings.ToLower(sc)] = true
			continue
		}
		prefix, value := GraphResource, sc
		if i := strings.LastIndexByte(sc, '/'); i > 0 {
			prefix, value = sc[:i], sc[i+1:]
		}
		res, ok := q.tenant.resource(prefix)
		if !ok {
			return nil, errResourceNotFound(prefix, q.tenant.defaultName)
		}
		if is.res != nil && is.res.appID != res.appID {
			multi = true
		}
		if is.res == nil {
			is.res = res
			is.aud = prefix
			if !strings.Contains(sc, "/") || res.appID == GraphAppID {
				// Graph tokens from the v2 endpoint carry the appId as aud
				// (reference §5.1).
				is.aud = res.appID
			}
		}
		if value == ".default" {
			dflt = true
			continue
		}
		specific = true
		values = append(values, sc)
	}
	// One token is for one resource, and /.default (static consent) does
	// not mix with named scopes (dynamic consent), on any resource:
	// scopes-oidc.md "Clients can't combine static (.default) consent and
	// dynamic consent in a single request". Observed answers: 70011 with
	// ".default scope can't be combined with resource-specific scopes"
	// for a mix, 70011 for two /.default (Azure/azure-sdk-for-net#9076,
	// AzureAD/microsoft-authentication-library-for-js#6069), 28000 for
	// named scopes of two resources (AzureAD/microsoft-authentication-
	// library-for-js#1487, Earlybyte/aad_oauth#328).
	switch {
	case dflt && specific:
		return nil, errDefaultCombined(raw)
	case multi && dflt:
		return nil, errInvalidScope(raw)
	case multi:
		return nil, errMultipleResources(raw)
	}
	for i, sc := range values {
		value := sc
		if j := strings.LastIndexByte(sc, '/'); j > 0 {
			value = sc[j+1:]
		}
		c, ok := is.res.canonical(value)
		if !ok {
			return nil, errInvalidScope(sc)
		}
		values[i] = c
	}
	if is.res == nil {
		is.res, is.aud = graphResource, GraphAppID
	}
	is.scp = values
	return is, nil
}

// consent checks the requested scopes against the grants, failing with
// 65001 when the user or an admin has not consented: ROPC cannot show a
// consent prompt (reference §1.1). The token then carries every scope
// granted on the resource, requested or not: Graph's scp "always has the
// previously consent scopes" (microsoftgraph/msgraph-sdk-powershell#1056;
// microsoftgraph/microsoft-graph-docs#5722, #9952), as /.default's does
// (scopes-oidc.md). offline_access is a right to refresh tokens, not a
// scope of the access token, so it is never in scp (same captures).
func (q *tokenRequest) consent(is *issue) *stsError {
	granted := q.tenant.consented(q.client, is.res, is.user)
	for _, sc := range is.scp {
		if !granted[sc] {
			return errConsent(q.client)
		}
	}
	var scp []string
	for sc := range granted {
		if is.res.scopes[sc] && sc != "offline_access" && !(is.res.appID == GraphAppID && is.oidc[sc]) {
			scp = append(scp, sc)
		}
	}
	if is.res.appID == GraphAppID {
		// The OpenID scopes are Graph permissions (scopes-oidc.md); a
		// sign-in asking for them has them in its Graph token.
		for _, sc := range []string{"openid", "profile", "email"} {
			if is.oidc[sc] {
				scp = append(scp, sc)
			}
		}
	}
	if len(scp) == 0 {
		return errConsent(q.client)
	}
	sort.Strings(scp)
	is.scp = scp
	is.client = q.client
	is.confidential = q.conf
	return nil
}

// clientCredentials is the app-only grant; it needs a tenant and a
// {resource}/.default scope.
func (q *tokenRequest) clientCredentials() (any, *stsError) {
	if q.tenant == nil {
		return nil, errNoTenant()
	}
	if e := q.authClient(false); e != nil {
		return nil, e
	}
	is := &issue{v2: q.v2, tenant: q.tenant, client: q.client, confidential: true, oidc: map[string]bool{}}
	if q.v2 {
		raw := q.form.Get("scope")
		if raw == "" {
			return nil, errMissingCredentialField("scope")
		}
		// OpenID scopes are ignored here: MSAL sends "openid offline_access
		// profile" with every request, client credentials included.
		var rest []string
		for _, sc := range strings.Fields(raw) {
			if !oidcScopes[strings.ToLower(sc)] {
				rest = append(rest, sc)
			}
		}
		if len(rest) != 1 || !strings.HasSuffix(rest[0], "/.default") {
			return nil, errInvalidScope(raw)
		}
		prefix := strings.TrimSuffix(rest[0], "/.default")
		res, ok := q.tenant.resource(prefix)
		if !ok {
			return nil, errResourceNotFound(prefix, q.tenant.defaultName)
		}
		is.res, is.aud = res, prefix
		if res.appID == GraphAppID {
			is.aud = res.appID
		}
	} else {
		resParam := q.form.Get("resource")
		if resParam == "" {
			return nil, errMissingParameter("resource")
		}
		res, ok := q.tenant.resource(resParam)
		if !ok {
			return nil, errResourceNotFound(resParam, q.tenant.defaultName)
		}
		is.res, is.aud, is.resource = res, resParam, resParam
	}
	return q.s.respond(q.r, is)
}

// refreshPayload is sealed (AES-GCM) into the opaque refresh token, so the
// emulator keeps no refresh token state.
type refreshPayload struct {
	TID    string   `json:"t"`
	UID    string   `json:"u"`
	Client string   `json:"c"`
	Target string   `json:"s"`
	V2     bool     `json:"v"`
	Exp    int64    `json:"e"`
	AMR    []string `json:"a"`
}

func (s *Server) sealRefresh(p refreshPayload) string {
	b, _ := json.Marshal(p)
	nonce := make([]byte, s.sealer.NonceSize())
	_, _ = rand.Read(nonce)
	// Entra refresh tokens are opaque and start "0.A"; clients must not
	// parse them.
	return "0.A" + base64.RawURLEncoding.EncodeToString(s.sealer.Seal(nonce, nonce, b, nil))
}

func (s *Server) openRefresh(tok string) (refreshPayload, bool) {
	var p refreshPayload
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok, "0.A"))
	if err != nil || len(raw) < s.sealer.NonceSize() || !strings.HasPrefix(tok, "0.A") {
		return p, false
	}
	n := s.sealer.NonceSize()
	b, err := s.sealer.Open(nil, raw[:n], raw[n:], nil)
	if err != nil || json.Unmarshal(b, &p) != nil {
		return p, false
	}
	return p, true
}

func (q *tokenRequest) refreshToken() (any, *stsError) {
	rt := q.form.Get("refresh_token")
	if rt == "" {
		return nil, errMissingParameter("refresh_token")
	}
	p, ok := q.s.openRefresh(rt)
	if !ok {
		return nil, errMalformed()
	}
	if q.tenant == nil {
		q.tenant, _, _ = q.s.resolveTenant(p.TID)
	}
	if q.tenant == nil || q.tenant.ID != p.TID {
		return nil, errInvalidGrant()
	}
	app := q.tenant.app(q.form.Get("client_id"))
	if e := q.authClient(app != nil && app.IsFallbackPublicClient); e != nil {
		return nil, e
	}
	if !strings.EqualFold(q.client.AppID, p.Client) {
		return nil, errInvalidGrant()
	}
	if q.s.now().Unix() > p.Exp {
		return nil, errGrantExpired()
	}
	// A refresh may ask for another resource or scopes; absent, the
	// original ones apply.
	if q.v2 && q.form.Get("scope") == "" {
		q.form.Set("scope", p.Target)
	}
	if !q.v2 && q.form.Get("resource") == "" {
		q.form.Set("resource", p.Target)
	}
	is, e := q.target()
	if e != nil {
		return nil, e
	}
	u := q.tenant.usersByID[strings.ToLower(p.UID)]
	if u == nil {
		return nil, errInvalidGrant()
	}
	if e := q.s.checkSignInAllowed(u, is.res, len(p.AMR) < 2); e != nil {
		return nil, e
	}
	is.user, is.amr, is.refresh = u, p.AMR, true
	if e := q.consent(is); e != nil {
		return nil, e
	}
	return q.s.respond(q.r, is)
}

// respond issues the tokens and builds the endpoint's response shape.
func (s *Server) respond(r *http.Request, is *issue) (any, *stsError) {
	now := s.now()
	key := s.keys.signer()
	var ck string
	if s.opts.ReuseTokens > 0 {
		ck = cacheKey(is, key.kid)
		if b, ok := s.cache.get(ck, now, s.opts.ReuseTokens); ok {
			return b.body(now), nil
		}
	}
	// Entra back-dates iat/nbf by five minutes for clock skew: observed
	// not_before = expires_on - 3900 (reference §1.2 sample).
	iat := now.Add(-5 * time.Minute).Unix()
	exp := now.Add(s.opts.TokenLifetime).Unix()
	b := &issued{v2: is.v2, exp: exp, nbf: iat, resource: is.resource}
	at, err := key.sign(s.accessClaims(is, iat, exp), is.res.version == 2)
	if err != nil {
		return nil, errServer(http.StatusInternalServerError)
	}
	b.access = at
	if is.user != nil && (is.oidc["openid"]) {
		if is.v2 {
			b.id, err = key.sign(s.idClaims(is, iat, exp), true)
		} else {
			// The v1 token endpoint's id_token is "An unsigned JSON Web
			// Token (JWT)" (AD v1-protocols-oauth-code.md; ADAL for Java
			// #117, "By Design"); the authorize endpoint only issues codes.
			b.id, err = unsecured(s.idClaims(is, iat, exp))
		}
		if err != nil {
			return nil, errServer(http.StatusInternalServerError)
		}
	}
	if is.user != nil && is.refresh {
		b.refresh = s.sealRefresh(refreshPayload{
			TID: is.tenant.ID, UID: is.user.ID, Client: is.client.AppID, Target: is.rtScope,
			V2: is.v2, Exp: now.Add(refreshLifetime).Unix(), AMR: is.amr,
		})
	}
	b.scope = responseScope(is)
	if ck != "" {
		s.cache.put(ck, b, now)
	}
	return b.body(now), nil
}

// responseScope is the scope field: v1 returns the granted permissions;
// v2 returns them qualified by the resource (bare for Graph), and for
// Graph, whose permissions they are, the OpenID scopes, in the order of
// v2-oauth-ropc.md's sample response ("User.Read profile openid email").
// Tokens for other resources list no OpenID scopes ("When requesting tokens
// for resources other than MS Graph or AAD Graph the default scopes openid,
// profile and offline_access are not returned", MSAL for Android,
// MicrosoftStsAccountCredentialAdapter).
func responseScope(is *issue) string {
	if is.user == nil {
		if is.v2 {
			return is.res.uriOrID() + "/.default"
		}
		return ""
	}
	if !is.v2 {
		return strings.Join(is.scp, " ")
	}
	out := make([]string, 0, len(is.scp))
	oidc := map[string]bool{}
	for _, sc := range is.scp {
		switch {
		case is.res.appID != GraphAppID:
			out = append(out, is.res.uriOrID()+"/"+sc)
		case oidcScopes[sc]:
			oidc[sc] = true
		default:
			out = append(out, sc)
		}
	}
	for _, sc := range []string{"profile", "openid", "email"} {
		if oidc[sc] {
			out = append(out, sc)
		}
	}
	return strings.Join(out, " ")
}

func (r *resource) uriOrID() string {
	if r.uri != "" {
		return r.uri
	}
	return r.appID
}

func (s *Server) accessClaims(is *issue, iat, exp int64) claims {
	c := claims{Iat: iat, Nbf: iat, Exp: exp, TID: is.tenant.ID, Uti: randomID()}
	acr := "0"
	if is.confidential {
		acr = "1"
	}
	if is.res.version == 2 {
		c.Aud, c.Iss, c.Ver = is.res.appID, s.IssuerV2(is.tenant.ID), "2.0"
		c.Azp, c.AzpAcr = is.client.AppID, acr
	} else {
		c.Aud, c.Iss, c.Ver = is.aud, s.IssuerV1(is.tenant.ID), "1.0"
		c.AppID, c.AppIDAcr = is.client.AppID, acr
	}
	if is.user == nil {
		// App-only tokens: the subject is the client's service principal.
		c.OID = servicePrincipalID(is.tenant, is.client)
		c.Sub, c.IDTyp = c.OID, "app"
		return c
	}
	u := is.user
	c.OID, c.Name, c.Scp = u.ID, u.DisplayName, strings.Join(is.scp, " ")
	c.Sub = pairwiseSub(is.tenant.ID, u.ID, is.client.AppID)
	if is.res.version == 2 {
		c.PreferredUsername = u.UserPrincipalName
	} else {
		c.Acr, c.Amr = "1", is.amr
		c.FamilyName, c.GivenName, c.IPAddr = u.Surname, u.GivenName, is.ip
		c.UniqueName, c.UPN = u.UserPrincipalName, u.UserPrincipalName
	}
	if is.res.app != nil {
		addGroups(&c, is.tenant, is.res.app, u)
	}
	return c
}

func (s *Server) idClaims(is *issue, iat, exp int64) claims {
	u := is.user
	c := claims{Aud: is.client.AppID, Iat: iat, Nbf: iat, Exp: exp, TID: is.tenant.ID, Nonce: is.nonce,
		Sub: pairwiseSub(is.tenant.ID, u.ID, is.client.AppID), Uti: randomID()}
	if is.v2 {
		// v2 ID tokens carry profile claims only with the profile scope
		// and email only with the email scope (reference §2.1).
		c.Iss, c.Ver = s.IssuerV2(is.tenant.ID), "2.0"
		if is.oidc["profile"] {
			c.Name, c.OID, c.PreferredUsername = u.DisplayName, u.ID, u.UserPrincipalName
		}
		if is.oidc["email"] {
			c.Email = u.Mail
		}
	} else {
		c.Iss, c.Ver = s.IssuerV1(is.tenant.ID), "1.0"
		c.Amr, c.FamilyName, c.GivenName, c.IPAddr = is.amr, u.Surname, u.GivenName, is.ip
		c.Name, c.OID, c.UniqueName, c.UPN = u.DisplayName, u.ID, u.UserPrincipalName, u.UserPrincipalName
	}
	addGroups(&c, is.tenant, is.client, u)
	return c
}

// groupsLimit is the JWT groups overage threshold (reference §2.3).
const groupsLimit = 200

// addGroups emits the groups claim as the app's groupMembershipClaims asks,
// or the overage pointer past 200 groups. The overage endpoint is the Azure
// AD Graph URL Entra still emits (reference §2.3 note).
func addGroups(c *claims, t *Tenant, app *Application, u *User) {
	mode := app.GroupMembershipClaims
	if mode != "SecurityGroup" && mode != "All" {
		return
	}
	var ids []string
	for _, g := range t.transitiveMemberOf(u.ID) {
		if mode == "All" || g.SecurityEnabled {
			ids = append(ids, g.ID)
		}
	}
	if len(ids) > groupsLimit {
		c.ClaimNames = map[string]string{"groups": "src1"}
		c.ClaimSources = map[string]map[string]string{"src1": {
			"endpoint": AADGraphResource + "/" + t.ID + "/users/" + u.ID + "/getMemberObjects",
		}}
		return
	}
	c.Groups = ids
}

// pairwiseSub is unique per user and application, as Entra's sub is
// (reference §2.1).
func pairwiseSub(tid, oid, appID string) string {
	h := sha256.Sum256([]byte(tid + "|" + oid + "|" + strings.ToLower(appID)))
	return base64.RawURLEncoding.EncodeToString(h[:])[:43]
}

func servicePrincipalID(t *Tenant, app *Application) string {
	h := sha256.Sum256([]byte("sp|" + t.ID + "|" + strings.ToLower(app.AppID)))
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// issued is a signed token set; body renders the response at a given time
// so reused tokens report their remaining lifetime.
type issued struct {
	v2                  bool
	exp, nbf            int64
	scope, resource     string
	access, id, refresh string
	at                  time.Time
}

func (b *issued) body(now time.Time) any {
	left := max(b.exp-now.Unix(), 0)
	if b.v2 {
		return tokenResponseV2{TokenType: "Bearer", Scope: b.scope, ExpiresIn: left, ExtExpiresIn: left,
			AccessToken: b.access, RefreshToken: b.refresh, IDToken: b.id}
	}
	return tokenResponseV1{TokenType: "Bearer", Scope: b.scope,
		ExpiresIn: strconv.FormatInt(left, 10), ExtExpiresIn: strconv.FormatInt(left, 10),
		ExpiresOn: strconv.FormatInt(b.exp, 10), NotBefore: strconv.FormatInt(b.nbf, 10),
		Resource: b.resource, AccessToken: b.access, RefreshToken: b.refresh, IDToken: b.id}
}

// tokenCache backs Options.ReuseTokens.
type tokenCache struct {
	mu sync.Mutex
	m  map[string]*issued
}

func (c *tokenCache) get(k string, now time.Time, ttl time.Duration) (*issued, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.m[k]
	if !ok || now.Sub(b.at) >= ttl {
		return nil, false
	}
	return b, true
}

func (c *tokenCache) put(k string, b *issued, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) > 100000 {
		c.m = map[string]*issued{}
	}
	b.at = now
	c.m[k] = b
}

func (c *tokenCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = nil
}

func cacheKey(is *issue, kid string) string {
	uid := ""
	if is.user != nil {
		uid = is.user.ID
	}
	oidc := make([]string, 0, len(is.oidc))
	for k := range is.oidc {
		oidc = append(oidc, k)
	}
	slices.Sort(oidc)
	return strings.Join([]string{kid, strconv.FormatBool(is.v2), is.tenant.ID, uid, is.client.AppID,
		is.res.appID, is.aud, strings.Join(is.scp, " "), strings.Join(oidc, " "), is.nonce, is.ip,
		strconv.FormatBool(is.confidential), strings.Join(is.amr, " "), is.rtScope}, "\x00")
}
