package sqlstore_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestMigrateSplitsUsers upgrades users stored as one document before
// migration 5: the root attributes and the metadata move to their own
// columns, the rest stays the profile.
func TestMigrateSplitsUsers(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			ctx := t.Context()
			s := openRaw(t, storetest.DSN(t, b))
			if err := sqlstore.MigrateTo(ctx, s, 4); err != nil {
				t.Fatal(err)
			}
			for _, u := range []struct{ id, profile string }{
				{"full", `{"user_id":"full","name":"Jane","given_name":"Jane","family_name":"Doe","nickname":"jane","picture":"https://p.example/j.png",
					"email":"jane@contoso.example","groups":["a","b"],"email_verified":true,"app_metadata":{"plan":"gold","n":{"x":null}},"user_metadata":{"theme":"dark"}}`},
				{"bare", `{"user_id":"bare","identities":[{"provider":"waad"}]}`},
				{"nulls", `{"name":null,"app_metadata":null}`},
				// jsonb refuses \u0000; the profile was TEXT and may hold it.
				{"nul", `{"user_id":"nul","name":"N\u0000","user_metadata":{"note":"a\u0000b","path":"C:\\u0000"}}`},
				{"scalar", `"odd"`},
			} {
				if err := sqlstore.Exec(ctx, s, `INSERT INTO users (user_id, connection, email, email_lower, profile, blocked, logins_count, last_ip, created_at, updated_at)
					VALUES ($1, 'contoso', '', '', $2, FALSE, 0, '', 0, 0)`, u.id, u.profile); err != nil {
					t.Fatal(err)
				}
			}
			if err := sqlstore.Exec(ctx, s, `INSERT INTO users (user_id, connection, email, email_lower, blocked, logins_count, last_ip, created_at, updated_at)
				VALUES ('none', 'contoso', '', '', FALSE, 0, '', 0, 0)`); err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct{ id, profile, root, app, user string }{
				{"full", `{"user_id":"full","email":"jane@contoso.example","groups":["a","b"],"email_verified":true}`,
					`{"name":"Jane","given_name":"Jane","family_name":"Doe","nickname":"jane","picture":"https://p.example/j.png"}`,
					`{"plan":"gold","n":{"x":null}}`, `{"theme":"dark"}`},
				{"bare", `{"user_id":"bare","identities":[{"provider":"waad"}]}`, ``, ``, ``},
				{"nulls", `{}`, ``, `null`, ``},
				{"nul", `{"user_id":"nul"}`, `{"name":"N\u0000"}`, ``, `{"note":"a\u0000b","path":"C:\\u0000"}`},
				{"scalar", `"odd"`, ``, ``, ``},
				{"none", ``, ``, ``, ``},
			} {
				u, err := s.GetUser(ctx, tc.id)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range []struct {
					name string
					got  json.RawMessage
					want string
				}{{"profile", u.Profile, tc.profile}, {"root attributes", u.RootAttributes, tc.root}, {"app_metadata", u.AppMetadata, tc.app}, {"user_metadata", u.UserMetadata, tc.user}} {
					if !sameJSON(f.got, f.want) {
						t.Errorf("%s: %s %s, want %s", tc.id, f.name, f.got, f.want)
					}
				}
			}
		})
	}
}

// sameJSON compares JSON by meaning; empty is NULL.
func sameJSON(got json.RawMessage, want string) bool {
	if len(got) == 0 || want == "" {
		return len(got) == 0 && want == ""
	}
	var g, w any
	return json.Unmarshal(got, &g) == nil && json.Unmarshal([]byte(want), &w) == nil && reflect.DeepEqual(g, w)
}
