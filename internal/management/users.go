package management

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/connection"
	"github.com/gatehouse/gatehouse/internal/store"
)

func (a *API) userRoutes(route routeFunc) {
	route("GET /api/v2/users", "read:users", a.listUsers)
	route("GET /api/v2/users/{id}", "read:users", a.getUser)
	route("PATCH /api/v2/users/{id}", "update:users", a.patchUser)
	route("DELETE /api/v2/users/{id}", "delete:users", a.deleteUser)
	route("GET /api/v2/users-by-email", "read:users", a.usersByEmail)
}

func errNoUser() *Error { return NotFound("The user does not exist.", "inexistent_user") }

// userJSON renders a user as Auth0 does: the stored profile, root
// attributes and metadata, plus the columns the store keeps. IdP tokens
// are added to identities[0] only for callers holding
// read:user_idp_tokens.
func (a *API) userJSON(r *http.Request, u *store.User) (map[string]any, error) {
	doc := map[string]any{}
	for _, part := range []json.RawMessage{u.Profile, u.RootAttributes} {
		if len(part) > 0 {
			if err := json.Unmarshal(part, &doc); err != nil {
				return nil, internalError(fmt.Errorf("user %s profile: %w", u.UserID, err))
			}
		}
	}
	for k, md := range map[string]json.RawMessage{"app_metadata": u.AppMetadata, "user_metadata": u.UserMetadata} {
		if len(md) > 0 {
			var v any
			if err := json.Unmarshal(md, &v); err != nil {
				return nil, internalError(fmt.Errorf("user %s %s: %w", u.UserID, k, err))
			}
			doc[k] = v
		}
	}
	doc["user_id"] = u.UserID
	doc["created_at"] = isoTime(u.CreatedAt)
	doc["updated_at"] = isoTime(u.UpdatedAt)
	doc["logins_count"] = u.LoginsCount
	doc["blocked"] = u.Blocked
	if u.LastLogin != nil {
		doc["last_login"] = isoTime(*u.LastLogin)
	}
	if u.LastIP != "" {
		doc["last_ip"] = u.LastIP
	}
	if len(u.IdPTokensEnc) > 0 && PrincipalFrom(r.Context()).Has("read:user_idp_tokens") {
		plain, err := a.secrets.Open(u.IdPTokensEnc, store.UserIdPTokensAAD(u.UserID))
		if err != nil {
			return nil, internalError(fmt.Errorf("open idp tokens of %s: %w", u.UserID, err))
		}
		var toks map[string]any
		if err := json.Unmarshal(plain, &toks); err != nil {
			return nil, internalError(err)
		}
		if ids, ok := doc["identities"].([]any); ok && len(ids) > 0 {
			if id0, ok := ids[0].(map[string]any); ok {
				for k, v := range toks {
					id0[k] = v
				}
			}
		}
	}
	return filterFields(doc, r), nil
}

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// qTerm is one field:value of the Lucene-style q Gatehouse understands.
var qTerm = regexp.MustCompile(`^\s*([a-zA-Z_.]+)\s*:\s*(?:"([^"]*)"|(\S+))\s*$`)

// The q of GET /api/v2/users: field:value terms joined by AND, the value
// quoted (an exact match) or bare (a word; on email, a trailing * searches
// by prefix).
var (
	userQTerm = `([A-Za-z_.]+)\s*:\s*(?:"([^"]*)"|([^\s"]*))`
	// userQNext reads the first term and what joins it to the next. The
	// join is part of the match so that an empty bare value is read as
	// empty: alone, the term would take the AND after it as its value
	// (email: AND ... as email "AND").
	userQNext = regexp.MustCompile(`^\s*` + userQTerm + `(?:\s+AND\s+|\s*$)`)
	// userQSpecial are Lucene's operators and wildcards: in a bare value,
	// Gatehouse would not mean what Lucene means by them.
	userQSpecial = `!(){}[]^"~*?:\/&|`
)

func badQ(reason string) *Error {
	return BadQuery("Query validation error: '" + reason + "' on property q.")
}

// userFilter reads q (search_engine v2/v3 syntax) for the fields Gatehouse
// indexes: email and identities.connection. Whatever it cannot match as
// Auth0 would is refused rather than widened: an empty value, a field
// given twice with different values, or an operator or wildcard it does
// not implement.
func userFilter(r *http.Request) (store.UserFilter, error) {
	var f store.UserFilter
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if se := r.URL.Query().Get("search_engine"); se != "" && se != "v2" && se != "v3" {
		return f, BadQuery("Query validation error: 'search_engine' must be v2 or v3.")
	}
	f.Connection = r.URL.Query().Get("connection")
	if q == "" {
		return f, nil
	}
	for rest := q; rest != ""; {
		m := userQNext.FindStringSubmatchIndex(rest)
		if m == nil {
			return f, badQ(`Gatehouse supports field:"value" terms on email and identities.connection, joined by AND`)
		}
		term := rest
		rest = rest[m[1]:]
		field := term[m[2]:m[3]]
		if field != "email" && field != "identities.connection" {
			return f, badQ("Gatehouse cannot search users by " + field + "; use email or identities.connection")
		}
		var value string
		prefix := false
		if m[4] >= 0 { // quoted: an exact match
			value = term[m[4]:m[5]]
			if strings.Contains(value, `\`) {
				return f, badQ("escapes are not supported in " + field)
			}
		} else {
			value, prefix = strings.CutSuffix(term[m[6]:m[7]], "*")
			if (prefix && field != "email") || strings.ContainsAny(value, userQSpecial) ||
				strings.HasPrefix(value, "+") || strings.HasPrefix(value, "-") {
				return f, badQ(field + " has a character Gatehouse does not support in a bare value (the only wildcard is a trailing * on email); quote the value")
			}
		}
		if value == "" {
			return f, badQ(field + " must not be empty")
		}
		switch field {
		case "email":
			if f.Email != "" && (f.Email != value || f.EmailPrefix != prefix) {
				return f, badQ("email is given twice with different values")
			}
			f.Email, f.EmailPrefix = value, prefix
		case "identities.connection":
			if f.Connection != "" && f.Connection != value {
				return f, badQ("identities.connection is given twice, or with the connection parameter, with different values")
			}
			f.Connection = value
		}
	}
	return f, nil
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) {
	p, err := parsePaging(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	f, err := userFilter(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	if f.SortBy, f.SortDesc, err = userSort(r); err != nil {
		WriteError(w, err)
		return
	}
	users, total, err := a.store.ListUsers(r.Context(), f, p.listOptions())
	if err != nil {
		WriteError(w, internalError(err))
		return
	}
	items, err := a.usersJSON(r, users)
	if err != nil {
		WriteError(w, err)
		return
	}
	writePage(w, p, "users", items, total)
}

// userSort reads sort, Auth0's field:1 or field:-1, for the fields the
// store orders by; another is refused rather than ignored, which would
// answer in an order other than the one asked for.
func userSort(r *http.Request) (field string, desc bool, err error) {
	s := r.URL.Query().Get("sort")
	if s == "" {
		return "", false, nil
	}
	field, dir, _ := strings.Cut(s, ":")
	if (dir == "1" || dir == "-1") && slices.Contains(store.UserSortFields, field) {
		return field, dir == "-1", nil
	}
	return "", false, BadQuery("Query validation error: 'Gatehouse sorts users by " + strings.Join(store.UserSortFields, ", ") +
		", as field:1 or field:-1' on property sort.")
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request) {
	u, err := a.loadUser(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	doc, err := a.userJSON(r, u)
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, doc)
}

func (a *API) loadUser(r *http.Request) (*store.User, error) {
	u, err := a.store.GetUser(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoUser()
	}
	if err != nil {
		return nil, internalError(err)
	}
	return u, nil
}

// userPatchTypes are the properties PATCH accepts for users of an
// enterprise connection. Their email and identities belong to the IdP.
var userPatchTypes = map[string]string{
	"blocked":       "boolean",
	"user_metadata": "object",
	"app_metadata":  "object",
	"name":          "string",
	"given_name":    "string",
	"family_name":   "string",
	"nickname":      "string",
	"picture":       "string",
}

// userRootAttributes are the root attributes of userPatchTypes. As at
// Auth0, null removes one: "Setting any value to null will remove the
// attribute for the user"
// (https://auth0.com/docs/manage-users/user-accounts/user-profiles/root-attributes/update-root-attributes-for-users).
var userRootAttributes = []string{"name", "given_name", "family_name", "nickname", "picture"}

// withoutRemovedRootAttributes is patch without the root attributes it
// removes, for checkTypes.
func withoutRemovedRootAttributes(patch map[string]any) map[string]any {
	typed := maps.Clone(patch)
	for _, k := range userRootAttributes {
		if v, ok := typed[k]; ok && v == nil {
			delete(typed, k)
		}
	}
	return typed
}

// patchUser merges the given properties; user_metadata and app_metadata
// merge one level deep as in Auth0, a null there removing a key. The
// store applies the patch to the user as it is at the write, so neither a
// login nor another PATCH running meanwhile is undone.
func (a *API) patchUser(w http.ResponseWriter, r *http.Request) {
	patch, err := decodeObject(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	if err := checkTypes(withoutRemovedRootAttributes(patch), userPatchTypes); err != nil {
		WriteError(w, err)
		return
	}
	for _, k := range []string{"app_metadata", "user_metadata"} {
		if md, ok := patch[k]; ok {
			if err := checkMetadataNames(k, md); err != nil {
				WriteError(w, err)
				return
			}
		}
	}
	if err := a.checkRootAttributesEditable(r.Context(), r.PathValue("id"), patch); err != nil {
		WriteError(w, err)
		return
	}
	u, err := a.store.PatchUser(r.Context(), r.PathValue("id"), func(u *store.User) error { return applyUserPatch(u, patch) })
	if errors.Is(err, store.ErrNotFound) {
		WriteError(w, errNoUser())
		return
	}
	if apiErr := (*Error)(nil); errors.As(err, &apiErr) {
		WriteError(w, apiErr)
		return
	}
	if err != nil {
		WriteError(w, internalError(err))
		return
	}
	out, err := a.userJSON(r, u)
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, out)
}

// checkRootAttributesEditable refuses a PATCH naming a root attribute,
// even with its stored value or null, of a user whose connection writes
// them at each login (set_user_root_attributes on_each_login, the
// default), as Auth0 does rather than let the next login undo it, with
// the answer its users see (rfcx/arbimon#1397,
// alexkappa/terraform-provider-auth0#292). The whole PATCH is refused.
//
// A user whose connection no longer exists is accepted: no login will
// overwrite its attributes. The connection is read before the write: a
// change of its sync mode meanwhile counts as made after the PATCH, as
// it would had the PATCH come a moment earlier.
func (a *API) checkRootAttributesEditable(ctx context.Context, id string, patch map[string]any) error {
	var named []string
	for _, k := range userRootAttributes {
		if _, ok := patch[k]; ok {
			named = append(named, k)
		}
	}
	if len(named) == 0 {
		return nil
	}
	u, err := a.store.GetUser(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return errNoUser()
	}
	if err != nil {
		return internalError(err)
	}
	c, err := a.store.GetConnectionByName(ctx, u.Connection)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return internalError(err)
	}
	o, err := storedOptions(c)
	if err != nil {
		return err
	}
	if o.SyncMode() != connection.SyncOnEachLogin {
		return nil
	}
	slices.Sort(named)
	return &Error{Status: http.StatusBadRequest, ErrorCode: "operation_not_supported", Message: fmt.Sprintf(
		"The following user attributes cannot be updated: %s. The connection (%s) must either be a database connection (using the Auth0 store), "+
			"a passwordless connection (email or sms) or has disabled 'Sync user profile attributes at each login'. "+
			"For more information, see https://auth0.com/docs/dashboard/guides/connections/configure-connection-sync",
		strings.Join(named, ", "), c.Name)}
}

// maxMetadataBytes bounds app_metadata and user_metadata together, as
// Auth0 does: "Both app_metadata and user_metadata are together limited
// to a size of 16 MB total per user"
// (https://auth0.com/docs/best-practices/metadata-best-practices).
const maxMetadataBytes = 16 << 20

// applyUserPatch applies a checked PATCH body to the stored user. A patch
// that grows the metadata past maxMetadataBytes is refused; one that
// shrinks it is not, so that an oversized user can still be trimmed.
func applyUserPatch(u *store.User, patch map[string]any) error {
	before := len(u.AppMetadata) + len(u.UserMetadata)
	root := map[string]any{}
	if len(u.RootAttributes) > 0 {
		if err := json.Unmarshal(u.RootAttributes, &root); err != nil {
			return fmt.Errorf("root attributes: %w", err)
		}
	}
	var err error
	for k, v := range patch {
		switch k {
		case "blocked":
			u.Blocked = v.(bool)
		case "app_metadata":
			u.AppMetadata, err = mergeMetadata(u.AppMetadata, v.(map[string]any))
		case "user_metadata":
			u.UserMetadata, err = mergeMetadata(u.UserMetadata, v.(map[string]any))
		default:
			if v == nil {
				delete(root, k)
			} else {
				root[k] = v
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	if after := len(u.AppMetadata) + len(u.UserMetadata); after > maxMetadataBytes && after > before {
		return BadBody(fmt.Sprintf("Payload validation error: 'app_metadata and user_metadata together may hold at most %d bytes (16 MB)'.", maxMetadataBytes))
	}
	u.RootAttributes = nil
	if len(root) > 0 {
		if u.RootAttributes, err = json.Marshal(root); err != nil {
			return fmt.Errorf("root attributes: %w", err)
		}
	}
	return nil
}

// checkMetadataNames refuses a property name holding "." or "$" at any
// depth of the metadata v, as Auth0 does with 400 Bad Request
// (https://auth0.com/docs/users/references/metadata-field-name-rules).
func checkMetadataNames(prop string, v any) error {
	switch v := v.(type) {
	case map[string]any:
		for k, sub := range v {
			if strings.ContainsAny(k, ".$") {
				return BadBody(fmt.Sprintf("Payload validation error: 'Property name %q must not contain . or $' on property %s.", k, prop))
			}
			if err := checkMetadataNames(prop, sub); err != nil {
				return err
			}
		}
	case []any:
		for _, sub := range v {
			if err := checkMetadataNames(prop, sub); err != nil {
				return err
			}
		}
	}
	return nil
}

// mergeMetadata merges patch into the metadata object md one level deep;
// an empty patch removes the metadata, as at Auth0 ("patching the
// metadata itself with an empty object removes the metadata completely",
// https://auth0.com/docs/users/set-metadata-properties-on-creation).
func mergeMetadata(md json.RawMessage, patch map[string]any) (json.RawMessage, error) {
	if len(patch) == 0 {
		return nil, nil
	}
	cur := map[string]any{}
	if len(md) > 0 {
		// A stored null is no object: the patch starts it afresh.
		if err := json.Unmarshal(md, &cur); err != nil {
			return nil, err
		}
		if cur == nil {
			cur = map[string]any{}
		}
	}
	for k, v := range patch {
		if v == nil {
			delete(cur, k)
		} else {
			cur[k] = v
		}
	}
	return json.Marshal(cur)
}

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request) {
	err := a.store.DeleteUser(r.Context(), r.PathValue("id"))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		WriteError(w, internalError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// usersJSON renders a list of users as the caller may see them.
func (a *API) usersJSON(r *http.Request, users []*store.User) ([]map[string]any, error) {
	items := make([]map[string]any, 0, len(users))
	for _, u := range users {
		doc, err := a.userJSON(r, u)
		if err != nil {
			return nil, err
		}
		items = append(items, doc)
	}
	return items, nil
}

// usersByEmail is GET /api/v2/users-by-email?email=: an exact,
// case-insensitive match, as a bare array.
func (a *API) usersByEmail(w http.ResponseWriter, r *http.Request) {
	email := r.URL.Query().Get("email")
	if email == "" {
		WriteError(w, BadQuery("Query validation error: 'Missing required property: email' on property email."))
		return
	}
	users, _, err := a.store.ListUsers(r.Context(), store.UserFilter{Email: email}, store.ListOptions{PerPage: maxPerPage})
	if err != nil {
		WriteError(w, internalError(err))
		return
	}
	items, err := a.usersJSON(r, users)
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, items)
}
