package sqlstore_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
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

// TestDeletedConnectionForgotten: a deletion whose users are gone is
// remembered while a login under way at the time may still store one,
// then forgotten: a user stored under the name after that stays.
func TestDeletedConnectionForgotten(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			ctx := t.Context()
			s := storetest.Open(t, b)
			now := time.Now()
			if err := s.CreateConnection(ctx, &store.Connection{ID: "con_1", Name: "contoso", Strategy: "waad", CreatedAt: now, UpdatedAt: now}); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteConnection(ctx, "con_1"); err != nil {
				t.Fatal(err)
			}
			if err := sqlstore.Exec(ctx, s, "UPDATE deleted_connections SET deleted_at = deleted_at - $1", time.Hour.Milliseconds()); err != nil {
				t.Fatal(err)
			}
			if n, _, err := s.PurgeDeletedConnectionUsers(ctx, 10); err != nil || n != 0 {
				t.Fatalf("purge without users: %d, %v", n, err)
			}
			stale := now.Add(-2 * time.Hour)
			if _, err := s.UpsertUser(ctx, &store.User{UserID: "waad|later", Connection: "contoso", Email: "later@contoso.example", LastLogin: &stale}); err != nil {
				t.Fatal(err)
			}
			if n, _, err := s.PurgeDeletedConnectionUsers(ctx, 10); err != nil || n != 0 {
				t.Errorf("purge after the deletion was forgotten deleted %d users (%v), want 0", n, err)
			}
			if _, err := s.GetUser(ctx, "waad|later"); err != nil {
				t.Errorf("user stored after the deletion was forgotten: %v", err)
			}
		})
	}
}

// TestDeletedConnectionForgottenByTheDatabaseClock: whether the purge
// still remembers a deletion depends on the deletion's age by the
// database's clock alone. A replica whose clock is an hour ahead or behind,
// whether it deletes the connection or purges, neither forgets a fresh
// deletion, which a login under way may still need, nor keeps an old one.
func TestDeletedConnectionForgottenByTheDatabaseClock(t *testing.T) {
	const skew = time.Hour
	cases := []struct {
		name                  string
		deleteSkew, purgeSkew time.Duration
		age                   time.Duration
		remembered            bool
	}{
		{"fresh, right clocks", 0, 0, 0, true},
		{"fresh, purging clock ahead", 0, skew, 0, true},
		{"fresh, deleting clock behind", -skew, 0, 0, true},
		{"old, right clocks", 0, 0, skew, false},
		{"old, purging clock behind", 0, -skew, skew, false},
		{"old, deleting clock ahead", skew, 0, skew, false},
	}
	for _, b := range storetest.Backends() {
		for _, tc := range cases {
			t.Run(b+"/"+tc.name, func(t *testing.T) {
				ctx := t.Context()
				s := storetest.Open(t, b)
				now := time.Now()
				if err := s.CreateConnection(ctx, &store.Connection{ID: "con_1", Name: "contoso", Strategy: "waad", CreatedAt: now, UpdatedAt: now}); err != nil {
					t.Fatal(err)
				}
				sqlstore.SkewClock(t, tc.deleteSkew)
				if err := s.DeleteConnection(ctx, "con_1"); err != nil {
					t.Fatal(err)
				}
				if err := sqlstore.Exec(ctx, s, "UPDATE deleted_connections SET deleted_at = deleted_at - $1", tc.age.Milliseconds()); err != nil {
					t.Fatal(err)
				}
				sqlstore.SkewClock(t, tc.purgeSkew)
				if n, _, err := s.PurgeDeletedConnectionUsers(ctx, 10); err != nil || n != 0 {
					t.Fatalf("purge without users: %d, %v", n, err)
				}
				// A user of the deleted connection stored now, as a login
				// under way at the deletion stores it: the next purge
				// deletes it only if it still remembers the deletion.
				if _, err := s.UpsertUser(ctx, &store.User{UserID: "waad|late", Connection: "contoso", Email: "late@contoso.example", LastLogin: &now}); err != nil {
					t.Fatal(err)
				}
				n, _, err := s.PurgeDeletedConnectionUsers(ctx, 10)
				if err != nil {
					t.Fatal(err)
				}
				if remembered := n == 1; remembered != tc.remembered {
					t.Errorf("deletion remembered: %v, want %v", remembered, tc.remembered)
				}
			})
		}
	}
}

// TestSQLitePrefixMatchesLike: on SQLite an email prefix is a range of
// the index where it was a LIKE; it finds exactly the users the LIKE
// found, for addresses and prefixes drawn from the characters where the
// two could part: LIKE's pattern and escape characters, ASCII letters
// (LIKE ignores their case), the bytes around UTF-8's boundaries and the
// last code point, and bytes that are no UTF-8.
func TestSQLitePrefixMatchesLike(t *testing.T) {
	ctx := t.Context()
	s := storetest.Open(t, storetest.SQLite)
	alphabet := []string{"a", "A", "b", "%", "_", `\`, "@", "\x7f", "\u0080", "\u00bf", "\u00c0", "é", "É", "\u212a", "k",
		"\uffff", "\U0010ffff", "\xc3", "\xff"}
	r := rand.New(rand.NewPCG(1, 2))
	draw := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	emails := map[string]bool{}
	for i := range 400 {
		email := draw(r.IntN(5))
		emails[email] = true
		connection := []string{"contoso", "fabrikam"}[i%2]
		if _, err := s.UpsertUser(ctx, &store.User{UserID: fmt.Sprint("u", i), Connection: connection, Email: email}); err != nil {
			t.Fatal(err)
		}
	}
	prefixes := map[string]bool{}
	for email := range emails {
		for i := 1; i <= len(email); i++ {
			prefixes[email[:i]] = true
		}
	}
	for range 300 {
		prefixes[draw(1+r.IntN(3))] = true
	}
	escape := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	like := func(prefix, connection string) []string {
		q := `SELECT user_id FROM users WHERE email_lower LIKE $1 ESCAPE '\' AND ($2 = '' OR connection = $2) ORDER BY user_id`
		rows, err := sqlstore.ReadPool(s).QueryContext(ctx, q, escape.Replace(strings.ToLower(prefix))+"%", connection)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		ids := []string{}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	matched := 0
	for prefix := range prefixes {
		for _, connection := range []string{"", "contoso"} {
			us, total, err := s.ListUsers(ctx, store.UserFilter{Email: prefix, EmailPrefix: true, Connection: connection}, store.ListOptions{PerPage: 100})
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, u := range us {
				got = append(got, u.UserID)
			}
			slices.Sort(got)
			want := like(prefix, connection)
			if !slices.Equal(got, want) || total != len(want) {
				t.Errorf("prefix %+q connection %q: got %v (total %d), LIKE found %v", prefix, connection, got, total, want)
			}
			matched += len(want)
		}
	}
	if matched == 0 {
		t.Fatal("no prefix matched a user")
	}
}
