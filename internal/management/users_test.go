package management_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/server/servertest"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// seedUsers stores users through a second store on the server's
// database, as a login on another replica would.
func seedUsers(t *testing.T, env *servertest.Env, users ...*store.User) {
	t.Helper()
	other, err := sqlstore.Open(t.Context(), env.Config.Database, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, u := range users {
		if _, err := other.UpsertUser(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPatchUser changes each part an administrator owns, and nothing
// else; a refused PATCH changes nothing.
func TestPatchUser(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			env := servertest.Start(t, b)
			tok := env.ManagementToken(t, "read:users", "update:users")
			seedUsers(t, env, &store.User{
				UserID: "waad|1", Connection: "contoso", Email: "jane@contoso.example", LoginsCount: 3, LastIP: "192.0.2.1",
				Profile:        json.RawMessage(`{"user_id":"waad|1","email":"jane@contoso.example","identities":[{"provider":"waad","connection":"contoso"}]}`),
				RootAttributes: json.RawMessage(`{"name":"Jane","nickname":"jane"}`),
				AppMetadata:    json.RawMessage(`{"plan":"gold","keep":1}`),
			})
			path := "api/v2/users/" + url.PathEscape("waad|1")
			get := func() map[string]any {
				t.Helper()
				status, _, raw := env.Do(t, "GET", path, tok, nil)
				if status != http.StatusOK {
					t.Fatalf("GET: %d %s", status, raw)
				}
				return decode(t, raw)
			}
			want := get()
			for _, tc := range []struct {
				name   string
				patch  map[string]any
				change map[string]any
			}{
				{"app_metadata merges one level deep, null removes",
					map[string]any{"app_metadata": map[string]any{"plan": "silver", "keep": nil, "new": map[string]any{"a": 1}}},
					map[string]any{"app_metadata": map[string]any{"plan": "silver", "new": map[string]any{"a": float64(1)}}}},
				{"user_metadata starts empty", map[string]any{"user_metadata": map[string]any{"theme": "dark"}},
					map[string]any{"user_metadata": map[string]any{"theme": "dark"}}},
				{"root attributes", map[string]any{"name": "Janet", "picture": "https://p.example/j.png"},
					map[string]any{"name": "Janet", "picture": "https://p.example/j.png"}},
				{"blocked", map[string]any{"blocked": true}, map[string]any{"blocked": true}},
				// "Setting any value to null will remove the attribute for the user"
				// (https://auth0.com/docs/manage-users/user-accounts/user-profiles/root-attributes/update-root-attributes-for-users)
				{"null removes a root attribute", map[string]any{"nickname": nil, "given_name": "Janet"},
					map[string]any{"nickname": nil, "given_name": "Janet"}},
				{"null removes the last root attributes", map[string]any{"name": nil, "given_name": nil, "picture": nil},
					map[string]any{"name": nil, "given_name": nil, "picture": nil}},
				// "patching the metadata itself with an empty object removes
				// the metadata completely" (https://auth0.com/docs/users/set-metadata-properties-on-creation)
				{"an empty object clears metadata", map[string]any{"user_metadata": map[string]any{}}, map[string]any{"user_metadata": nil}},
			} {
				status, _, raw := env.Do(t, "PATCH", path, tok, tc.patch)
				if status != http.StatusOK {
					t.Fatalf("%s: %d %s", tc.name, status, raw)
				}
				got := decode(t, raw)
				for k, v := range tc.change {
					if v == nil {
						delete(want, k)
					} else {
						want[k] = v
					}
				}
				want["updated_at"] = got["updated_at"]
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: answer\n%v\nwant\n%v", tc.name, got, want)
				}
				if after := get(); !reflect.DeepEqual(after, want) {
					t.Errorf("%s: GET after\n%v\nwant\n%v", tc.name, after, want)
				}
			}
			for _, tc := range []struct {
				name   string
				path   string
				patch  any
				status int
				code   string
			}{
				{"wrong type", path, map[string]any{"blocked": "yes", "name": "X"}, 400, "invalid_body"},
				{"null where no root attribute", path, map[string]any{"blocked": nil, "name": "X"}, 400, "invalid_body"},
				{"wrong type beside a removal", path, map[string]any{"nickname": nil, "app_metadata": "x"}, 400, "invalid_body"},
				{"a property the IdP owns", path, map[string]any{"email": "x@example.com", "blocked": false}, 400, "invalid_body"},
				{"not an object", path, `[]`, 400, "invalid_body"},
				{"a dot in a metadata name", path, map[string]any{"app_metadata": map[string]any{"preference.color": "pink"}}, 400, "invalid_body"},
				{"a $ in a nested metadata name", path, map[string]any{"user_metadata": map[string]any{"p": map[string]any{"$set": 1}}}, 400, "invalid_body"},
				{"a dot in a metadata name in an array", path, map[string]any{"user_metadata": map[string]any{"p": []any{map[string]any{"a.b": 1}}}}, 400, "invalid_body"},
				{"unknown user", "api/v2/users/" + url.PathEscape("waad|nobody"), map[string]any{"blocked": true}, 404, "inexistent_user"},
			} {
				status, _, raw := env.Do(t, "PATCH", tc.path, tok, tc.patch)
				if status != tc.status || decode(t, raw)["errorCode"] != tc.code {
					t.Errorf("%s: %d %s, want %d %s", tc.name, status, raw, tc.status, tc.code)
				}
			}
			if after := get(); !reflect.DeepEqual(after, want) {
				t.Errorf("refused PATCHes changed the user:\n%v\nwant\n%v", after, want)
			}
		})
	}
}

// TestPatchUserSyncedRootAttributes: the root attributes of a user whose
// connection writes them at each login are refused with Auth0's answer
// (rfcx/arbimon#1397), even unchanged or null
// (alexkappa/terraform-provider-auth0#292), and the whole PATCH with
// them; elsewhere they are accepted.
func TestPatchUserSyncedRootAttributes(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			env := servertest.Start(t, b)
			tok := env.ManagementToken(t, "read:users", "update:users")
			other, err := sqlstore.Open(t.Context(), env.Config.Database, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			for name, opts := range map[string]string{
				"each-default":  `{}`,
				"each-explicit": `{"set_user_root_attributes":"on_each_login"}`,
				"first":         `{"set_user_root_attributes":"on_first_login"}`,
				"never":         `{"set_user_root_attributes":"never_on_login"}`,
			} {
				if err := other.CreateConnection(t.Context(), &store.Connection{ID: "con_" + name, Name: name, Strategy: "waad", Options: json.RawMessage(opts)}); err != nil {
					t.Fatal(err)
				}
			}
			var users []*store.User
			for _, c := range []string{"each-default", "each-explicit", "first", "never", "deleted"} {
				users = append(users, &store.User{UserID: "waad|" + c, Connection: c, Email: c + "@contoso.example",
					RootAttributes: json.RawMessage(`{"name":"Jane","nickname":"jane"}`), AppMetadata: json.RawMessage(`{"plan":"gold"}`)})
			}
			seedUsers(t, env, users...)
			path := func(c string) string { return "api/v2/users/" + url.PathEscape("waad|"+c) }
			get := func(c string) string {
				t.Helper()
				status, _, raw := env.Do(t, "GET", path(c), tok, nil)
				if status != http.StatusOK {
					t.Fatalf("GET %s: %d %s", c, status, raw)
				}
				return string(raw)
			}
			refused := func(attrs, conn string) string {
				return `{"statusCode":400,"error":"Bad Request","message":"The following user attributes cannot be updated: ` + attrs +
					`. The connection (` + conn + `) must either be a database connection (using the Auth0 store), a passwordless connection (email or sms) ` +
					`or has disabled 'Sync user profile attributes at each login'. For more information, see https://auth0.com/docs/dashboard/guides/connections/configure-connection-sync",` +
					`"errorCode":"operation_not_supported"}`
			}
			for _, c := range []string{"each-default", "each-explicit"} {
				before := get(c)
				for _, tc := range []struct {
					name  string
					patch map[string]any
					attrs string
				}{
					{"named in alphabetical order, metadata refused with them",
						map[string]any{"picture": "https://p.example/j.png", "given_name": "Janet", "family_name": "Doe", "app_metadata": map[string]any{"plan": "silver"}},
						"family_name, given_name, picture"},
					{"the stored value", map[string]any{"name": "Jane"}, "name"},
					{"a removal", map[string]any{"nickname": nil, "blocked": true}, "nickname"},
				} {
					status, _, raw := env.Do(t, "PATCH", path(c), tok, tc.patch)
					if want := refused(tc.attrs, c); status != http.StatusBadRequest || strings.TrimSpace(string(raw)) != want {
						t.Errorf("%s, %s: %d %s\nwant 400 %s", c, tc.name, status, raw, want)
					}
				}
				if after := get(c); after != before {
					t.Errorf("%s: refused PATCHes changed the user:\n%s\nwant\n%s", c, after, before)
				}
				status, _, raw := env.Do(t, "PATCH", path(c), tok, map[string]any{"app_metadata": map[string]any{"plan": "silver"}, "blocked": true})
				if status != http.StatusOK || decode(t, raw)["blocked"] != true {
					t.Errorf("%s: PATCH without root attributes: %d %s", c, status, raw)
				}
			}
			for _, c := range []string{"first", "never", "deleted"} {
				status, _, raw := env.Do(t, "PATCH", path(c), tok, map[string]any{"name": "Janet", "nickname": nil})
				if got := decode(t, raw); status != http.StatusOK || got["name"] != "Janet" || got["nickname"] != nil {
					t.Errorf("%s: %d %s", c, status, raw)
				}
			}
			status, _, raw := env.Do(t, "PATCH", path("nobody"), tok, map[string]any{"name": "X"})
			if status != http.StatusNotFound || decode(t, raw)["errorCode"] != "inexistent_user" {
				t.Errorf("unknown user: %d %s", status, raw)
			}
		})
	}
}

// TestUserSearch covers the q Gatehouse supports, and refuses what it
// would match wrongly: an empty value (email:"$EMAIL" with an empty
// variable must not list every user), a field given twice with different
// values, and Lucene syntax it does not implement.
func TestUserSearch(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			env := servertest.Start(t, b)
			tok := env.ManagementToken(t, "read:users")
			seedUsers(t, env,
				&store.User{UserID: "u1", Connection: "contoso", Email: "alice@contoso.example"},
				&store.User{UserID: "u2", Connection: "contoso", Email: "Alice.B@contoso.example"},
				&store.User{UserID: "u3", Connection: "fabrikam", Email: "bob@fabrikam.example"},
				&store.User{UserID: "u4", Connection: "contoso", Email: "a_b%c@contoso.example"},
				&store.User{UserID: "u5", Connection: "contoso", Email: "axb@contoso.example"},
			)
			search := func(query string) (int, []byte) {
				t.Helper()
				status, _, raw := env.Do(t, "GET", "api/v2/users?search_engine=v3&include_totals=true&"+query, tok, nil)
				return status, raw
			}
			for _, tc := range []struct {
				q, connection string
				want          []string
			}{
				{`email:"alice@contoso.example"`, "", []string{"u1"}},
				{`email:"ALICE@Contoso.example"`, "", []string{"u1"}},
				{`email:alice@contoso.example`, "", []string{"u1"}},
				{`email:alice*`, "", []string{"u1", "u2"}},
				{`email:ALI*`, "", []string{"u1", "u2"}},
				{`email:a_*`, "", []string{"u4"}},
				{`email:"a_b%c@contoso.example"`, "", []string{"u4"}},
				{`email:alice* AND identities.connection:"contoso"`, "", []string{"u1", "u2"}},
				{`email:"bob@fabrikam.example" AND email:"bob@fabrikam.example"`, "", []string{"u3"}},
				{`identities.connection:"fabrikam"`, "", []string{"u3"}},
				{`identities.connection:fabrikam`, "fabrikam", []string{"u3"}},
				{`email:"alice*"`, "", []string{}},
				{`email:"nobody@contoso.example"`, "", []string{}},
				{"", "fabrikam", []string{"u3"}},
			} {
				query := url.Values{"q": {tc.q}}
				if tc.connection != "" {
					query.Set("connection", tc.connection)
				}
				status, raw := search(query.Encode())
				var page struct {
					Total int              `json:"total"`
					Users []map[string]any `json:"users"`
				}
				_ = json.Unmarshal(raw, &page)
				got := []string{}
				for _, u := range page.Users {
					got = append(got, u["user_id"].(string))
				}
				if status != http.StatusOK || !reflect.DeepEqual(got, tc.want) || page.Total != len(tc.want) {
					t.Errorf("q=%s connection=%s: %d %s, want %v", tc.q, tc.connection, status, raw, tc.want)
				}
			}
			for _, tc := range []struct {
				q, connection, reason string
			}{
				{`email:""`, "", "email must not be empty"},
				{`identities.connection:""`, "", "identities.connection must not be empty"},
				{`email:`, "", "email must not be empty"},
				{`email:*`, "", "email must not be empty"},
				{`email:"alice@contoso.example" AND email:""`, "", "email must not be empty"},
				{`email: AND identities.connection:"contoso"`, "", "email must not be empty"},
				{`identities.connection: AND email:"alice@contoso.example"`, "", "identities.connection must not be empty"},
				{`email:"alice@contoso.example" AND email:"bob@fabrikam.example"`, "", "email is given twice with different values"},
				{`email:alice* AND email:"alice"`, "", "email is given twice with different values"},
				{`identities.connection:contoso AND identities.connection:fabrikam`, "", "given twice"},
				{`identities.connection:contoso`, "fabrikam", "with the connection parameter"},
				{`email:*alice`, "", "trailing *"},
				{`email:al?ce@contoso.example`, "", "trailing *"},
				{`email:a*e@contoso.example`, "", "trailing *"},
				{`email:alice**`, "", "trailing *"},
				{`identities.connection:cont*`, "", "trailing *"},
				{`email:-alice@contoso.example`, "", "trailing *"},
				{`email:(alice)`, "", "trailing *"},
				{`email:alice~`, "", "trailing *"},
				{`email:"a\\b@contoso.example"`, "", "escapes are not supported"},
				{`email:a OR email:b`, "", "joined by AND"},
				{`email:a email:b`, "", "joined by AND"},
				{`NOT email:a`, "", "joined by AND"},
				{`email:a AND`, "", "joined by AND"},
				{`email:"a" and email:"a"`, "", "joined by AND"},
				{`alice`, "", "joined by AND"},
				{`name:john*`, "", "cannot search users by name"},
			} {
				query := url.Values{"q": {tc.q}}
				if tc.connection != "" {
					query.Set("connection", tc.connection)
				}
				status, raw := search(query.Encode())
				e := decode(t, raw)
				msg, _ := e["message"].(string)
				if status != http.StatusBadRequest || e["errorCode"] != "invalid_query_string" || !strings.Contains(msg, tc.reason) ||
					!strings.HasPrefix(msg, "Query validation error: '") || !strings.HasSuffix(msg, "' on property q.") {
					t.Errorf("q=%s connection=%s: %d %s, want 400 invalid_query_string with %q", tc.q, tc.connection, status, raw, tc.reason)
				}
			}
		})
	}
}

// TestUserSort: sort orders the list by the fields Gatehouse stores, a
// user without the field last either way; another field is refused
// rather than ignored.
func TestUserSort(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			env := servertest.Start(t, b)
			tok := env.ManagementToken(t, "read:users")
			base := time.Now().Add(-time.Hour)
			at := func(m int) *time.Time { v := base.Add(time.Duration(m) * time.Minute); return &v }
			seedUsers(t, env,
				&store.User{UserID: "u1", Connection: "c", Email: "carol@example.com", LoginsCount: 5, LastLogin: at(2), CreatedAt: *at(0)},
				&store.User{UserID: "u2", Connection: "c", Email: "Alice@example.com", LoginsCount: 1, CreatedAt: *at(1)},
				&store.User{UserID: "u3", Connection: "c", Email: "bob@example.com", LoginsCount: 9, LastLogin: at(1), CreatedAt: *at(2)},
			)
			for sort, want := range map[string][]string{
				"":                {"u1", "u2", "u3"},
				"created_at:1":    {"u1", "u2", "u3"},
				"created_at:-1":   {"u3", "u2", "u1"},
				"email:1":         {"u2", "u3", "u1"},
				"email:-1":        {"u1", "u3", "u2"},
				"logins_count:-1": {"u3", "u1", "u2"},
				"last_login:1":    {"u3", "u1", "u2"},
				"last_login:-1":   {"u1", "u3", "u2"},
			} {
				status, _, raw := env.Do(t, "GET", "api/v2/users?sort="+url.QueryEscape(sort), tok, nil)
				var users []map[string]any
				if err := json.Unmarshal(raw, &users); status != http.StatusOK || err != nil {
					t.Fatalf("sort=%s: %d %s", sort, status, raw)
				}
				got := []string{}
				for _, u := range users {
					got = append(got, u["user_id"].(string))
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("sort=%s: %v, want %v", sort, got, want)
				}
			}
			for _, sort := range []string{"name:1", "email", "email:0", "created_at:1,email:1"} {
				status, _, raw := env.Do(t, "GET", "api/v2/users?sort="+url.QueryEscape(sort), tok, nil)
				if e := decode(t, raw); status != http.StatusBadRequest || e["errorCode"] != "invalid_query_string" || !strings.Contains(e["message"].(string), "on property sort") {
					t.Errorf("sort=%s: %d %s, want 400 invalid_query_string on property sort", sort, status, raw)
				}
			}
		})
	}
}

// TestPatchUserMetadataLimit: app_metadata and user_metadata together
// hold at most 16 MB, as at Auth0; a PATCH growing them past it is
// refused and changes nothing, one shrinking them is accepted.
func TestPatchUserMetadataLimit(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			env := servertest.Start(t, b)
			tok := env.ManagementToken(t, "read:users", "update:users")
			big, err := json.Marshal(map[string]string{"big": strings.Repeat("x", 16<<20-100)})
			if err != nil {
				t.Fatal(err)
			}
			seedUsers(t, env, &store.User{UserID: "waad|big", Connection: "c", Email: "big@example.com", AppMetadata: big})
			path := "api/v2/users/" + url.PathEscape("waad|big")
			status, _, raw := env.Do(t, "PATCH", path, tok, map[string]any{"user_metadata": map[string]any{"more": strings.Repeat("y", 200)}})
			if e := decode(t, raw); status != http.StatusBadRequest || e["errorCode"] != "invalid_body" {
				t.Errorf("growing past 16 MB: %d %.300s, want 400 invalid_body", status, raw)
			}
			status, _, raw = env.Do(t, "GET", path+"?fields=user_metadata,user_id", tok, nil)
			if u := decode(t, raw); status != http.StatusOK || u["user_metadata"] != nil {
				t.Errorf("after the refused PATCH: %d %.300s", status, raw)
			}
			status, _, raw = env.Do(t, "PATCH", path+"?fields=app_metadata", tok, map[string]any{"app_metadata": map[string]any{"big": nil, "small": 1}})
			if u := decode(t, raw); status != http.StatusOK || !reflect.DeepEqual(u["app_metadata"], map[string]any{"small": float64(1)}) {
				t.Errorf("shrinking: %d %.300s", status, raw)
			}
		})
	}
}

// TestUserSortEmailBytewise: sort=email orders addresses by their bytes
// on both backends, also on a PostgreSQL database whose locale collates
// otherwise (there "a_b@" comes before "a-b@" and "é" beside "e").
func TestUserSortEmailBytewise(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			env := servertest.Start(t, b)
			if b == storetest.Postgres {
				// The collation a database created with an en_US
				// locale gives the column.
				db, err := sql.Open("pgx", env.Config.Database)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				if _, err := db.ExecContext(t.Context(), `ALTER TABLE users ALTER COLUMN email_lower TYPE TEXT COLLATE "en-US-x-icu"`); err != nil {
					t.Fatal(err)
				}
			}
			tok := env.ManagementToken(t, "read:users")
			emails := []string{"f@example.com", "a_b@example.com", "éa@example.com", "a.b@example.com", "a-b@example.com", "ab@example.com"}
			for i, e := range emails {
				seedUsers(t, env, &store.User{UserID: fmt.Sprintf("u%d", i), Connection: "c", Email: e,
					Profile: json.RawMessage(fmt.Sprintf(`{"email":%q}`, e))})
			}
			want := slices.Sorted(slices.Values(emails))
			for _, dir := range []string{"1", "-1"} {
				status, _, raw := env.Do(t, "GET", "api/v2/users?fields=email&sort=email:"+dir, tok, nil)
				var users []map[string]any
				if err := json.Unmarshal(raw, &users); status != http.StatusOK || err != nil {
					t.Fatalf("sort=email:%s: %d %s", dir, status, raw)
				}
				got := []string{}
				for _, u := range users {
					got = append(got, u["email"].(string))
				}
				if !slices.Equal(got, want) {
					t.Errorf("sort=email:%s: %q, want %q", dir, got, want)
				}
				slices.Reverse(want)
			}
		})
	}
}

// TestIncludeFieldsBoolean: include_fields is true or false; another
// value is refused as Auth0 refuses a parameter that is not a boolean,
// not read as true, which would answer only the fields the caller meant
// to leave out (include_fields=False is how Python spells false).
func TestIncludeFieldsBoolean(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			env := servertest.Start(t, b)
			tok := env.ManagementToken(t, "read:users", "update:users", "read:logs")
			seedUsers(t, env, &store.User{UserID: "waad|1", Connection: "c", Email: "jane@example.com",
				AppMetadata: json.RawMessage(`{"secret_plan":"gold"}`)})
			user := "api/v2/users/" + url.PathEscape("waad|1")
			status, _, raw := env.Do(t, "GET", user+"?fields=app_metadata&include_fields=false", tok, nil)
			if u := decode(t, raw); status != http.StatusOK || u["app_metadata"] != nil || u["user_id"] != "waad|1" {
				t.Errorf("include_fields=false: %d %s", status, raw)
			}
			status, _, raw = env.Do(t, "GET", user+"?fields=user_id&include_fields=true", tok, nil)
			if u := decode(t, raw); status != http.StatusOK || len(u) != 1 || u["user_id"] != "waad|1" {
				t.Errorf("include_fields=true: %d %s", status, raw)
			}
			for _, tc := range []struct{ method, path string }{
				{"GET", user + "?fields=app_metadata&include_fields=False"},
				{"GET", user + "?fields=app_metadata&include_fields=0"},
				{"GET", "api/v2/users?fields=app_metadata&include_fields=no"},
				{"GET", "api/v2/users-by-email?email=jane@example.com&fields=app_metadata&include_fields=FALSE"},
				{"GET", "api/v2/logs?fields=details&include_fields=False"},
				{"PATCH", user + "?fields=app_metadata&include_fields=False"},
			} {
				var body any
				if tc.method == "PATCH" {
					body = map[string]any{"blocked": true}
				}
				status, _, raw := env.Do(t, tc.method, tc.path, tok, body)
				var e map[string]any
				_ = json.Unmarshal(raw, &e)
				if status != http.StatusBadRequest || e["errorCode"] != "invalid_query_string" ||
					e["message"] != "Query validation error: 'Expected type boolean but found type string' on property include_fields." {
					t.Errorf("%s %s: %d %s, want 400 invalid_query_string", tc.method, tc.path, status, raw)
				}
			}
			status, _, raw = env.Do(t, "GET", user, tok, nil)
			if u := decode(t, raw); status != http.StatusOK || u["blocked"] != false {
				t.Errorf("the refused PATCH changed the user: %d %s", status, raw)
			}
		})
	}
}
