package management_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"testing"

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
			} {
				status, _, raw := env.Do(t, "PATCH", path, tok, tc.patch)
				if status != http.StatusOK {
					t.Fatalf("%s: %d %s", tc.name, status, raw)
				}
				got := decode(t, raw)
				for k, v := range tc.change {
					want[k] = v
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
				{"a property the IdP owns", path, map[string]any{"email": "x@example.com", "blocked": false}, 400, "invalid_body"},
				{"not an object", path, `[]`, 400, "invalid_body"},
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
