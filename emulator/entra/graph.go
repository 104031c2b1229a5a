package entra

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Graph permission sets. A request passes when the token's scp holds any
// scope of the set (least privileged first, per the Graph API reference
// pages user-get.md, user-list-memberof.md, directoryobject-getmembergroups.md,
// directoryobject-getbyids.md).
var (
	scopesMe           = []string{"User.Read", "User.ReadWrite", "User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All", "Directory.AccessAsUser.All"}
	scopesMemberOf     = []string{"User.Read", "GroupMember.Read.All", "Group.Read.All", "Directory.Read.All", "Directory.ReadWrite.All", "Directory.AccessAsUser.All"}
	scopesMemberGroups = []string{"GroupMember.Read.All", "Group.Read.All", "Directory.Read.All", "Directory.ReadWrite.All", "Directory.AccessAsUser.All"}
	scopesGetByIDs     = []string{"Directory.Read.All", "Directory.ReadWrite.All", "Directory.AccessAsUser.All"}

	// memberOf needs only User.Read, but lists an object in full only
	// when the token may read its type; otherwise the object carries its
	// @odata.type and id and every other property is null ("limited
	// information returned for inaccessible member objects",
	// permissions-overview.md, quoted in user-list-memberof.md).
	scopesReadGroups = []string{"GroupMember.Read.All", "Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All", "Directory.AccessAsUser.All"}
	scopesReadRoles  = []string{"RoleManagement.Read.Directory", "RoleManagement.Read.All", "RoleManagement.ReadWrite.Directory", "Directory.Read.All", "Directory.ReadWrite.All", "Directory.AccessAsUser.All"}
	scopesReadUnits  = []string{"AdministrativeUnit.Read.All", "AdministrativeUnit.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All", "Directory.AccessAsUser.All"}
)

// userDefaultProps is Graph v1.0's default property set of a user
// (user-get.md, reference §5.1); anything else needs $select.
var userDefaultProps = []string{"businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
	"officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id"}

// bearer is a validated access token.
type bearer struct {
	tenant *Tenant
	user   *User // nil for app-only tokens
	client string
	scp    []string
}

type tokenError struct {
	status        int
	code, message string
}

// verifyBearer checks signature, audience, lifetime and tenant of the
// Authorization header's token, the checks a resource server makes.
func (s *Server) verifyBearer(r *http.Request, audiences []string) (*bearer, *tokenError) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return nil, &tokenError{http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is empty."}
	}
	malformed := &tokenError{http.StatusUnauthorized, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed, there are no dots (.)."}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, malformed
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	pb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	var c claims
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &hdr) != nil || json.Unmarshal(pb, &c) != nil {
		return nil, malformed
	}
	invalid := &tokenError{http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure."}
	pub := s.keys.publicKey(hdr.Kid, s.now())
	if hdr.Alg != "RS256" || pub == nil {
		return nil, invalid
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) != nil {
		return nil, invalid
	}
	if !slices.Contains(audiences, strings.TrimSuffix(c.Aud, "/")) {
		return nil, &tokenError{http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience."}
	}
	now := s.now().Unix()
	if now >= c.Exp || now < c.Nbf {
		return nil, &tokenError{http.StatusUnauthorized, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired."}
	}
	t, _, ok := s.resolveTenant(c.TID)
	if !ok || t == nil {
		return nil, invalid
	}
	b := &bearer{tenant: t, scp: strings.Fields(c.Scp), client: c.AppID}
	if b.client == "" {
		b.client = c.Azp
	}
	if c.IDTyp != "app" {
		b.user = t.usersByID[strings.ToLower(c.OID)]
		if b.user == nil {
			return nil, invalid
		}
	}
	return b, nil
}

var graphAudiences = []string{GraphResource, GraphAppID}

// graphAuth authorizes a delegated Graph call; it writes the error and
// returns nil when the call must stop.
func (s *Server) graphAuth(w http.ResponseWriter, r *http.Request, need []string) *bearer {
	b, te := s.verifyBearer(r, graphAudiences)
	if te != nil {
		s.writeGraphError(w, r, te.status, te.code, te.message)
		return nil
	}
	if b.user == nil {
		s.writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "/me request is only valid with delegated authentication flow.")
		return nil
	}
	if b.may(need) {
		return b
	}
	s.writeGraphError(w, r, http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
	return nil
}

// may reports whether the token holds any scope of the set.
func (b *bearer) may(set []string) bool {
	return slices.ContainsFunc(b.scp, func(sc string) bool { return slices.Contains(set, sc) })
}

// limited is an object the caller may not read: its type and id, every
// other property null.
func limited(full map[string]any) map[string]any {
	out := make(map[string]any, len(full))
	for k := range full {
		out[k] = nil
	}
	out["@odata.type"], out["id"] = full["@odata.type"], full["id"]
	return out
}

func userProps(u *User) map[string]any {
	phones := u.BusinessPhones
	if phones == nil {
		phones = []string{}
	}
	return map[string]any{
		"id":                u.ID,
		"userPrincipalName": u.UserPrincipalName,
		"businessPhones":    phones,
		"displayName":       nullable(u.DisplayName),
		"givenName":         nullable(u.GivenName),
		"surname":           nullable(u.Surname),
		"jobTitle":          nullable(u.JobTitle),
		"mail":              nullable(u.Mail),
		"mobilePhone":       nullable(u.MobilePhone),
		"officeLocation":    nullable(u.OfficeLocation),
		"preferredLanguage": nullable(u.PreferredLanguage),
		"department":        nullable(u.Department),
		"accountEnabled":    u.Enabled(),
		// Real user properties the directory file does not model; Graph
		// answers null for them, and a broker may $select them.
		"city":                  nil,
		"country":               nil,
		"state":                 nil,
		"streetAddress":         nil,
		"postalCode":            nil,
		"usageLocation":         nil,
		"proxyAddresses":        []string{},
		"onPremisesSyncEnabled": nil,
	}
}

func groupProps(g *Group) map[string]any {
	types := g.GroupTypes
	if types == nil {
		types = []string{}
	}
	return map[string]any{
		"@odata.type":     "#microsoft.graph.group",
		"id":              g.ID,
		"displayName":     nullable(g.DisplayName),
		"description":     nullable(g.Description),
		"groupTypes":      types,
		"mail":            nullable(g.Mail),
		"mailEnabled":     g.MailEnabled,
		"mailNickname":    nullable(g.MailNickname),
		"securityEnabled": g.SecurityEnabled,
	}
}

func roleProps(r *DirectoryRole) map[string]any {
	return map[string]any{
		"@odata.type":    "#microsoft.graph.directoryRole",
		"id":             r.ID,
		"displayName":    nullable(r.DisplayName),
		"description":    nullable(r.Description),
		"roleTemplateId": nullable(r.RoleTemplateID),
	}
}

func unitProps(a *AdminUnit) map[string]any {
	return map[string]any{
		"@odata.type": "#microsoft.graph.administrativeUnit",
		"id":          a.ID,
		"displayName": nullable(a.DisplayName),
		"description": nullable(a.Description),
		"visibility":  nil,
	}
}

// memberOfProps are the properties $select may name on memberOf: those of
// any type the collection holds.
var memberOfProps = func() map[string]bool {
	m := map[string]bool{}
	for _, props := range []map[string]any{groupProps(&Group{}), roleProps(&DirectoryRole{}), unitProps(&AdminUnit{})} {
		for k := range props {
			m[k] = true
		}
	}
	return m
}()

// memberOfObjects is a user's memberOf (transitive: transitiveMemberOf):
// not only groups but also directory roles and administrative units, each
// told apart by @odata.type (user-list-memberof.md, reference §5.1).
func memberOfObjects(b *bearer, transitive bool) []map[string]any {
	t, uid := b.tenant, b.user.ID
	groups := t.directMemberOf(uid)
	if transitive {
		groups = t.transitiveMemberOf(uid)
	}
	var out []map[string]any
	add := func(props map[string]any, readable bool) {
		if !readable {
			props = limited(props)
		}
		out = append(out, props)
	}
	for _, g := range groups {
		add(groupProps(g), b.may(scopesReadGroups))
	}
	for _, r := range t.rolesOfUser(uid, transitive) {
		add(roleProps(r), b.may(scopesReadRoles))
	}
	for _, a := range t.unitsOfUser(uid) {
		add(unitProps(a), b.may(scopesReadUnits))
	}
	return out
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// selectProps applies $select; an unknown property is Graph's 400.
func selectProps(all map[string]any, sel []string, typ string) (map[string]any, *tokenError) {
	out := map[string]any{}
	if t, ok := all["@odata.type"]; ok {
		out["@odata.type"] = t
	}
	for _, p := range sel {
		v, ok := all[p]
		if !ok {
			return nil, &tokenError{http.StatusBadRequest, "BadRequest", "Could not find a property named '" + p + "' on type '" + typ + "'."}
		}
		out[p] = v
	}
	return out, nil
}

func parseSelect(r *http.Request) []string {
	var out []string
	for _, p := range strings.Split(r.URL.Query().Get("$select"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// serveUserInfo is the OpenID Connect UserInfo endpoint, which Entra serves
// from Graph and which takes a Graph token (v2-protocols-oidc.md, reference
// §5.1). sub equals the ID token's sub for the same app.
func (s *Server) serveUserInfo(w http.ResponseWriter, r *http.Request) {
	b, te := s.verifyBearer(r, graphAudiences)
	if te == nil && b.user == nil {
		te = &tokenError{http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure."}
	}
	if te != nil {
		s.writeGraphError(w, r, te.status, te.code, te.message)
		return
	}
	u := b.user
	out := map[string]any{
		"sub":         pairwiseSub(b.tenant.ID, u.ID, b.client),
		"name":        u.DisplayName,
		"family_name": u.Surname,
		"given_name":  u.GivenName,
		"picture":     s.base() + "/v1.0/me/photo/$value",
	}
	if u.Mail != "" {
		out["email"] = u.Mail
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) serveGraphMe(w http.ResponseWriter, r *http.Request) {
	b := s.graphAuth(w, r, scopesMe)
	if b == nil {
		return
	}
	all := userProps(b.user)
	sel := parseSelect(r)
	ctx := s.base() + "/v1.0/$metadata#users/$entity"
	if len(sel) == 0 {
		sel = userDefaultProps
	} else {
		ctx = s.base() + "/v1.0/$metadata#users(" + strings.Join(sel, ",") + ")/$entity"
	}
	out, te := selectProps(all, sel, "microsoft.graph.user")
	if te != nil {
		s.writeGraphError(w, r, te.status, te.code, te.message)
		return
	}
	out["@odata.context"] = ctx
	writeJSON(w, http.StatusOK, out)
}

// page slices a collection for $top/$skiptoken. The skip token is opaque to
// clients, which must follow @odata.nextLink as is (paging.md, reference §5.1).
func (s *Server) page(w http.ResponseWriter, r *http.Request, n int) (from, to int, next string, ok bool) {
	q := r.URL.Query()
	size := s.opts.GraphPageSize
	if v := q.Get("$top"); v != "" {
		top, err := strconv.Atoi(v)
		if err != nil || top < 1 || top > 999 {
			s.writeGraphError(w, r, http.StatusBadRequest, "Request_BadRequest", "Invalid page size specified: '"+v+"'. Must be between 1 and 999 inclusive.")
			return 0, 0, "", false
		}
		size = top
	}
	if m := s.opts.GraphMaxPageSize; m > 0 {
		size = min(size, m)
	}
	if v := q.Get("$skiptoken"); v != "" {
		raw, err := base64.RawURLEncoding.DecodeString(v)
		off, err2 := strconv.Atoi(strings.TrimPrefix(string(raw), "o:"))
		if err != nil || err2 != nil || !strings.HasPrefix(string(raw), "o:") || off < 0 {
			s.writeGraphError(w, r, http.StatusBadRequest, "Request_BadRequest", "Invalid skip token.")
			return 0, 0, "", false
		}
		from = min(off, n)
	}
	to = min(from+size, n)
	if to < n {
		nq := r.URL.Query()
		nq.Set("$skiptoken", base64.RawURLEncoding.EncodeToString([]byte("o:"+strconv.Itoa(to))))
		next = s.base() + r.URL.Path + "?" + nq.Encode()
	}
	return from, to, next, true
}

func (s *Server) serveGraphMemberOf(transitive bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b := s.graphAuth(w, r, scopesMemberOf)
		if b == nil {
			return
		}
		objs := memberOfObjects(b, transitive)
		from, to, next, ok := s.page(w, r, len(objs))
		if !ok {
			return
		}
		sel := parseSelect(r)
		for _, p := range sel {
			if !memberOfProps[p] {
				s.writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "Could not find a property named '"+p+"' on type 'microsoft.graph.directoryObject'.")
				return
			}
		}
		vals := make([]map[string]any, 0, to-from)
		for _, v := range objs[from:to] {
			if len(sel) > 0 {
				// A property of another directoryObject type is left out,
				// not refused: the collection is polymorphic.
				out := map[string]any{"@odata.type": v["@odata.type"]}
				for _, p := range sel {
					if pv, ok := v[p]; ok {
						out[p] = pv
					}
				}
				v = out
			}
			vals = append(vals, v)
		}
		out := map[string]any{"@odata.context": s.base() + "/v1.0/$metadata#directoryObjects", "value": vals}
		if next != "" {
			out["@odata.nextLink"] = next
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (s *Server) serveGraphGetMemberGroups(w http.ResponseWriter, r *http.Request) {
	b := s.graphAuth(w, r, scopesMemberGroups)
	if b == nil {
		return
	}
	var body struct {
		SecurityEnabledOnly *bool `json:"securityEnabledOnly"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.SecurityEnabledOnly == nil {
		s.writeGraphError(w, r, http.StatusBadRequest, "Request_BadRequest", "Invalid request: the parameter 'securityEnabledOnly' is required.")
		return
	}
	ids := []string{}
	for _, g := range b.tenant.transitiveMemberOf(b.user.ID) {
		if !*body.SecurityEnabledOnly || g.SecurityEnabled {
			ids = append(ids, g.ID)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"@odata.context": s.base() + "/v1.0/$metadata#Collection(Edm.String)", "value": ids})
}

func (s *Server) serveGraphGetByIDs(w http.ResponseWriter, r *http.Request) {
	b := s.graphAuth(w, r, scopesGetByIDs)
	if b == nil {
		return
	}
	var body struct {
		IDs   []string `json:"ids"`
		Types []string `json:"types"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.IDs == nil {
		s.writeGraphError(w, r, http.StatusBadRequest, "Request_BadRequest", "Invalid request: the parameter 'ids' is required.")
		return
	}
	want := func(typ string) bool {
		return len(body.Types) == 0 || slices.ContainsFunc(body.Types, func(t string) bool { return strings.EqualFold(t, typ) })
	}
	vals := []map[string]any{}
	for _, id := range body.IDs {
		k := strings.ToLower(id)
		if u := b.tenant.usersByID[k]; u != nil && want("user") {
			v, _ := selectProps(userProps(u), userDefaultProps, "microsoft.graph.user")
			v["@odata.type"] = "#microsoft.graph.user"
			vals = append(vals, v)
		} else if g := b.tenant.groupsByID[k]; g != nil && want("group") {
			vals = append(vals, groupProps(g))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"@odata.context": s.base() + "/v1.0/$metadata#directoryObjects", "value": vals})
}

// Azure AD Graph (graph.windows.net), retired by Microsoft in 2025
// (reference §5.2). Retired mode answers as Entra now does; served mode
// speaks api-version 1.6.

var aadGraphAudiences = []string{AADGraphResource, AADGraphAppID}

func (s *Server) aadGraphAuth(w http.ResponseWriter, r *http.Request) *bearer {
	if s.legacyMode() == LegacyGraphRetired {
		// Observed after the retirement (invictus-ir/Microsoft-Extractor-Suite#141).
		s.writeAADGraphError(w, http.StatusForbidden, "Authentication_Unauthorized", "Access blocked to AAD Graph API for this application. https://aka.ms/AzureADGraphMigration.")
		return nil
	}
	if r.URL.Query().Get("api-version") == "" {
		s.writeAADGraphError(w, http.StatusBadRequest, "Request_BadRequest", "The api-version query parameter (?api-version) is required for all requests.")
		return nil
	}
	b, te := s.verifyBearer(r, aadGraphAudiences)
	if te != nil {
		if strings.Contains(te.message, "expired") {
			s.writeAADGraphError(w, http.StatusUnauthorized, "Authentication_ExpiredToken", "Your access token has expired. Please renew it before submitting the request.")
		} else {
			s.writeAADGraphError(w, http.StatusUnauthorized, "Authentication_MissingOrMalformed", "Access Token missing or malformed.")
		}
		return nil
	}
	if seg := r.PathValue("tenant"); seg != "" && seg != "myorganization" && seg != "me" {
		if t, _, ok := s.resolveTenant(seg); !ok || t != b.tenant {
			s.writeAADGraphError(w, http.StatusUnauthorized, "Authentication_MissingOrMalformed", "Access Token missing or malformed.")
			return nil
		}
	}
	if b.user == nil {
		s.writeAADGraphError(w, http.StatusBadRequest, "Request_BadRequest", "The 'me' alias can only be used with a delegated token.")
		return nil
	}
	return b
}

func (s *Server) serveAADGraphMe(w http.ResponseWriter, r *http.Request) {
	b := s.aadGraphAuth(w, r)
	if b == nil {
		return
	}
	u := b.user
	writeJSON(w, http.StatusOK, map[string]any{
		"odata.metadata":             s.base() + "/" + b.tenant.ID + "/$metadata#directoryObjects/Microsoft.DirectoryServices.User/@Element",
		"odata.type":                 "Microsoft.DirectoryServices.User",
		"objectType":                 "User",
		"objectId":                   u.ID,
		"accountEnabled":             u.Enabled(),
		"displayName":                nullable(u.DisplayName),
		"givenName":                  nullable(u.GivenName),
		"surname":                    nullable(u.Surname),
		"jobTitle":                   nullable(u.JobTitle),
		"department":                 nullable(u.Department),
		"mail":                       nullable(u.Mail),
		"mobile":                     nullable(u.MobilePhone),
		"physicalDeliveryOfficeName": nullable(u.OfficeLocation),
		"preferredLanguage":          nullable(u.PreferredLanguage),
		"userPrincipalName":          u.UserPrincipalName,
	})
}

func (s *Server) serveAADGraphMemberOf(w http.ResponseWriter, r *http.Request) {
	b := s.aadGraphAuth(w, r)
	if b == nil {
		return
	}
	groups := b.tenant.directMemberOf(b.user.ID)
	from, to, _, ok := s.page(w, r, len(groups))
	if !ok {
		return
	}
	vals := make([]map[string]any, 0, to-from)
	for _, g := range groups[from:to] {
		vals = append(vals, map[string]any{
			"odata.type":      "Microsoft.DirectoryServices.Group",
			"objectType":      "Group",
			"objectId":        g.ID,
			"displayName":     nullable(g.DisplayName),
			"description":     nullable(g.Description),
			"mail":            nullable(g.Mail),
			"mailEnabled":     g.MailEnabled,
			"mailNickname":    nullable(g.MailNickname),
			"securityEnabled": g.SecurityEnabled,
			"dirSyncEnabled":  nil,
		})
	}
	out := map[string]any{"odata.metadata": s.base() + "/" + b.tenant.ID + "/$metadata#directoryObjects", "value": vals}
	if to < len(groups) {
		// Azure AD Graph next links are relative to the tenant root and
		// carry no api-version; clients append it (reference §5.2).
		out["odata.nextLink"] = "me/memberOf?$skiptoken=" + base64.RawURLEncoding.EncodeToString([]byte("o:"+strconv.Itoa(to)))
	}
	writeJSON(w, http.StatusOK, out)
}
