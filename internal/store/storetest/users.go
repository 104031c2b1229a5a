package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/store"
)

// loginOf is what a login of id stores. Blocked, the metadata and
// LoginsCount are the login's stale copy of what it does not own, which
// the store must never write.
func loginOf(id string) *store.User {
	return &store.User{
		UserID:         id,
		Connection:     "fabrikam",
		Email:          "Jane@Fabrikam.example",
		Profile:        json.RawMessage(`{"upn": "jane@fabrikam.example", "groups": ["staff"]}`),
		RootAttributes: json.RawMessage(`{"name": "Jane Doe", "nickname": "jane"}`),
		AppMetadata:    json.RawMessage(`{"stale": true}`),
		UserMetadata:   json.RawMessage(`{"stale": true}`),
		IdPTokensEnc:   []byte("new sealed tokens"),
		LoginsCount:    41,
		LastLogin:      ptr(t0.Add(time.Hour)),
		LastIP:         "203.0.113.5",
		CreatedAt:      t0.Add(-time.Hour),
	}
}

func testUserPatch(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.UpsertUser(ctx, fullUser("u"))
	must(t, err)
	stored, err := s.GetUser(ctx, "u")
	must(t, err)

	before := time.Now().Add(-time.Millisecond)
	got, err := s.PatchUser(ctx, "u", func(u *store.User) error {
		equal(t, "user given to patch", u, stored)
		u.Blocked = false
		u.RootAttributes = json.RawMessage(`{"name": "Janet"}`)
		u.AppMetadata = json.RawMessage(`{"plan": "silver"}`)
		u.UserMetadata = nil
		// Not an administrator's to change: not written.
		u.Email, u.Profile, u.LoginsCount, u.LastIP, u.IdPTokensEnc, u.CreatedAt = "x@example.com", json.RawMessage(`{}`), 99, "198.51.100.1", nil, t0.Add(time.Hour)
		return nil
	})
	must(t, err)
	if got.UpdatedAt.Before(before) {
		t.Errorf("PatchUser: UpdatedAt %v, want now", got.UpdatedAt)
	}
	want := *stored
	want.Blocked, want.RootAttributes, want.AppMetadata, want.UserMetadata = false, json.RawMessage(`{"name": "Janet"}`), json.RawMessage(`{"plan": "silver"}`), nil
	want.UpdatedAt = got.UpdatedAt
	equal(t, "PatchUser's answer", got, &want)
	after, err := s.GetUser(ctx, "u")
	must(t, err)
	equal(t, "GetUser after PatchUser", after, &want)

	// A refused patch writes nothing.
	refused := errors.New("refused")
	_, err = s.PatchUser(ctx, "u", func(u *store.User) error {
		u.Blocked = true
		return refused
	})
	wantErr(t, "PatchUser with a failing patch", err, refused)
	_, err = s.PatchUser(ctx, "u", func(u *store.User) error {
		u.Blocked, u.AppMetadata = true, json.RawMessage(`{"unterminated"`)
		return nil
	})
	if err == nil {
		t.Error("PatchUser accepted invalid app_metadata")
	}
	after, err = s.GetUser(ctx, "u")
	must(t, err)
	equal(t, "GetUser after refused patches", after, &want)
}

func testUserRecordLogin(t *testing.T, s store.Store) {
	ctx := t.Context()
	events := func() int {
		t.Helper()
		_, total, err := s.ListLogEvents(ctx, store.LogFilter{}, store.ListOptions{})
		must(t, err)
		return total
	}

	// A first login creates the user, with what a login owns only.
	before := time.Now().Add(-time.Millisecond)
	u := loginOf("new")
	e := &store.LogEvent{Type: "sepft", Date: t0, UserID: "new", Doc: json.RawMessage(`{"type":"sepft"}`)}
	must(t, s.RecordLogin(ctx, u, true, e, nil))
	want := loginOf("new")
	want.AppMetadata, want.UserMetadata, want.LoginsCount, want.LastLogin = nil, nil, 1, ptr(ms(t0.Add(time.Hour)))
	want.CreatedAt, want.UpdatedAt = u.CreatedAt, u.CreatedAt
	if u.CreatedAt.Before(before) || !u.UpdatedAt.Equal(u.CreatedAt) {
		t.Errorf("first login: CreatedAt %v, UpdatedAt %v; want now, twice", u.CreatedAt, u.UpdatedAt)
	}
	equal(t, "RecordLogin's user after a first login", u, want)
	got, err := s.GetUser(ctx, "new")
	must(t, err)
	equal(t, "GetUser after a first login", got, want)
	es, total, err := s.ListLogEvents(ctx, store.LogFilter{}, store.ListOptions{})
	must(t, err)
	if total != 1 || e.ID == "" {
		t.Fatalf("events after a first login: total %d, ID %q; want the one", total, e.ID)
	}
	equal(t, "logged event", es[0], &store.LogEvent{ID: e.ID, Type: "sepft", Date: ms(t0), UserID: "new", Doc: e.Doc})

	// A returning user: the administrator's parts stay, the root
	// attributes too unless asked for.
	admin := fullUser("u")
	admin.Blocked = false
	_, err = s.UpsertUser(ctx, admin)
	must(t, err)
	for i, root := range []bool{false, true} {
		before := time.Now().Add(-time.Millisecond)
		u := loginOf("u")
		must(t, s.RecordLogin(ctx, u, root, nil, nil))
		want := loginOf("u")
		want.RootAttributes, want.AppMetadata, want.UserMetadata = admin.RootAttributes, admin.AppMetadata, admin.UserMetadata
		if root {
			want.RootAttributes = loginOf("u").RootAttributes
		}
		want.LoginsCount, want.LastLogin, want.CreatedAt, want.UpdatedAt = admin.LoginsCount+i+1, ptr(ms(t0.Add(time.Hour))), ms(t0), u.UpdatedAt
		if u.UpdatedAt.Before(before) {
			t.Errorf("returning login (root %v): UpdatedAt %v, want now", root, u.UpdatedAt)
		}
		equal(t, fmt.Sprintf("RecordLogin's user (root %v)", root), u, want)
		got, err := s.GetUser(ctx, "u")
		must(t, err)
		equal(t, fmt.Sprintf("GetUser after a returning login (root %v)", root), got, want)
	}
	u = loginOf("u")
	u.RootAttributes = nil
	must(t, s.RecordLogin(ctx, u, true, nil, nil))
	if u.RootAttributes != nil || u.LoginsCount != admin.LoginsCount+3 {
		t.Errorf("login without root attributes: root %s, logins %d; want none, %d", u.RootAttributes, u.LoginsCount, admin.LoginsCount+3)
	}

	// A user deleted since the login read it is created again with the
	// root attributes it had, whatever rootAttributes says.
	kept := json.RawMessage(`{"name":"Kept Name"}`)
	gone := loginOf("gone")
	gone.RootAttributes = kept
	must(t, s.RecordLogin(ctx, gone, false, nil, nil))
	if got, err := s.GetUser(ctx, "gone"); err != nil || !bytes.Equal(got.RootAttributes, kept) || got.LoginsCount != 1 {
		t.Errorf("user created by a login without rootAttributes: %+v, %v; want its root attributes kept", got, err)
	}

	// A blocked user's login is counted but not logged as a success.
	_, err = s.PatchUser(ctx, "u", func(u *store.User) error { u.Blocked = true; return nil })
	must(t, err)
	n := events()
	u = loginOf("u")
	e = &store.LogEvent{Type: "sepft", UserID: "u", Doc: json.RawMessage(`{}`)}
	must(t, s.RecordLogin(ctx, u, false, e, nil))
	if !u.Blocked || u.LoginsCount != admin.LoginsCount+4 {
		t.Errorf("blocked user's login: blocked %v, logins %d; want true, %d", u.Blocked, u.LoginsCount, admin.LoginsCount+4)
	}
	if events() != n || e.ID != "" {
		t.Errorf("blocked user's login appended its success event (ID %q)", e.ID)
	}

	// An event that cannot be stored takes the login with it.
	_, err = s.PatchUser(ctx, "u", func(u *store.User) error { u.Blocked = false; return nil })
	must(t, err)
	err = s.RecordLogin(ctx, loginOf("u"), false, &store.LogEvent{ID: es[0].ID, Type: "sepft", Doc: json.RawMessage(`{}`)}, nil)
	wantErr(t, "RecordLogin with a duplicate event ID", err, store.ErrConflict)
	got, err = s.GetUser(ctx, "u")
	must(t, err)
	if got.LoginsCount != admin.LoginsCount+4 {
		t.Errorf("login with a refused event counted: logins %d, want %d", got.LoginsCount, admin.LoginsCount+4)
	}
}

// testUserUpstreamTenant: a user is keyed on its upstream tenant and
// user id. Every read returns the stored tenant; a login of another
// tenant writes nothing and logs nothing, however it races; a user stored
// without a tenant takes the next login's.
func testUserUpstreamTenant(t *testing.T, s store.Store) {
	ctx := t.Context()
	const tenantA, tenantB = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b", "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
	loginIn := func(id, tenant string) *store.User {
		u := loginOf(id)
		u.UpstreamTenant = tenant
		return u
	}
	events := func() int {
		t.Helper()
		_, total, err := s.ListLogEvents(ctx, store.LogFilter{}, store.ListOptions{})
		must(t, err)
		return total
	}

	u := loginIn("a", tenantA)
	must(t, s.RecordLogin(ctx, u, true, nil, nil))
	if u.UpstreamTenant != tenantA {
		t.Errorf("RecordLogin's user: tenant %q, want %q", u.UpstreamTenant, tenantA)
	}
	stored, err := s.GetUser(ctx, "a")
	must(t, err)
	if stored.UpstreamTenant != tenantA {
		t.Errorf("GetUser: tenant %q, want %q", stored.UpstreamTenant, tenantA)
	}
	taken, err := s.TakeLogin(ctx, store.LoginTake{Now: t0, Users: &store.UsersByEmail{Connection: "fabrikam", Email: "jane@fabrikam.example"}})
	must(t, err)
	// A store may ignore LoginTake.Users (nil); one that reads them reads the tenant.
	if taken.Users != nil && (len(taken.Users) != 1 || taken.Users[0].UpstreamTenant != tenantA) {
		t.Errorf("TakeLogin's users: %+v, want the one of tenant %s", taken.Users, tenantA)
	}
	list, _, err := s.ListUsers(ctx, store.UserFilter{}, store.ListOptions{})
	must(t, err)
	if len(list) != 1 || list[0].UpstreamTenant != tenantA {
		t.Errorf("ListUsers: %+v, want the one of tenant %s", list, tenantA)
	}

	for _, tc := range []struct {
		name   string
		tenant string
		err    error
	}{
		{"same tenant", tenantA, nil},
		{"no tenant (a provider without one)", "", nil},
		{"another tenant", tenantB, store.ErrUpstreamTenantMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := s.GetUser(ctx, "a")
			must(t, err)
			n := events()
			u := loginIn("a", tc.tenant)
			u.Email = "other@fabrikam.example"
			e := &store.LogEvent{Type: "sepft", UserID: "a", Doc: json.RawMessage(`{}`)}
			err = s.RecordLogin(ctx, u, true, e, nil)
			wantErr(t, "RecordLogin", err, tc.err)
			after, gerr := s.GetUser(ctx, "a")
			must(t, gerr)
			if after.UpstreamTenant != tenantA {
				t.Errorf("stored tenant %q, want %q kept", after.UpstreamTenant, tenantA)
			}
			if tc.err == nil {
				if after.LoginsCount != before.LoginsCount+1 || events() != n+1 {
					t.Errorf("login not stored: logins %d, events %d", after.LoginsCount, events()-n)
				}
				return
			}
			equal(t, "user after a login of another tenant", after, before)
			if events() != n || e.ID != "" {
				t.Errorf("a refused login appended its event (ID %q)", e.ID)
			}
			if u.Email != "other@fabrikam.example" {
				t.Errorf("a refused login changed u: %+v", u)
			}
		})
	}

	// A user stored before tenants were kept takes the next login's.
	_, err = s.UpsertUser(ctx, &store.User{UserID: "old", Connection: "fabrikam", Email: "old@fabrikam.example"})
	must(t, err)
	if got, err := s.GetUser(ctx, "old"); err != nil || got.UpstreamTenant != "" {
		t.Fatalf("user stored without a tenant: %+v, %v", got, err)
	}
	must(t, s.RecordLogin(ctx, loginIn("old", tenantB), false, nil, nil))
	wantErr(t, "login of another tenant after the adoption", s.RecordLogin(ctx, loginIn("old", tenantA), false, nil, nil),
		store.ErrUpstreamTenantMismatch)
	if got, err := s.GetUser(ctx, "old"); err != nil || got.UpstreamTenant != tenantB || got.LoginsCount != 1 {
		t.Errorf("user without a tenant after logins of %s then %s: %+v, %v; want %s, one login", tenantB, tenantA, got, err, tenantB)
	}

	// First logins of one user id from two tenants at once: one tenant
	// creates it, every login of the other is refused, none merges.
	const logins = 16
	var (
		wg     sync.WaitGroup
		counts [2]struct{ stored, refused atomic.Int64 }
	)
	tenants := [2]string{tenantA, tenantB}
	errs := make(chan error, 2*logins)
	for i := range 2 * logins {
		wg.Go(func() {
			c := &counts[i%2]
			switch err := s.RecordLogin(ctx, loginIn("race", tenants[i%2]), true, nil, nil); {
			case err == nil:
				c.stored.Add(1)
			case errors.Is(err, store.ErrUpstreamTenantMismatch):
				c.refused.Add(1)
			default:
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := s.GetUser(ctx, "race")
	must(t, err)
	won := slices.Index(tenants[:], got.UpstreamTenant)
	if won < 0 {
		t.Fatalf("concurrent first logins of two tenants stored tenant %q", got.UpstreamTenant)
	}
	w, l := &counts[won], &counts[1-won]
	if w.stored.Load() != logins || w.refused.Load() != 0 || l.stored.Load() != 0 || l.refused.Load() != logins || got.LoginsCount != logins {
		t.Errorf("concurrent first logins of two tenants: %s stored with %d logins; its logins %d stored, %d refused; "+
			"the other's %d stored, %d refused; want all of one stored, all of the other refused",
			got.UpstreamTenant, got.LoginsCount, w.stored.Load(), w.refused.Load(), l.stored.Load(), l.refused.Load())
	}
}

// testUserWriteRace runs logins of one user against each other and
// against administrators' changes, as parallel requests do.
func testUserWriteRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	const logins = 16

	// First logins at once: one user, every login counted.
	var wg sync.WaitGroup
	errs := make(chan error, 8*logins)
	for range logins {
		wg.Go(func() {
			if err := s.RecordLogin(ctx, loginOf("first"), true, nil, nil); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	got, err := s.GetUser(ctx, "first")
	must(t, err)
	if got.LoginsCount != logins {
		t.Errorf("concurrent first logins: LoginsCount %d, want %d", got.LoginsCount, logins)
	}

	// Logins while two administrators count in app_metadata and one
	// blocks the user: no change is lost, and every login stored after
	// the block committed sees it.
	_, err = s.UpsertUser(ctx, &store.User{UserID: "u", Connection: "fabrikam", Email: "jane@fabrikam.example",
		AppMetadata: json.RawMessage(`{"n": 0}`), UserMetadata: json.RawMessage(`{"theme": "dark"}`)})
	must(t, err)
	const edits = 10
	var (
		blocked          atomic.Bool
		total, succeeded atomic.Int64
	)
	for range logins {
		wg.Go(func() {
			// Until two logins of this goroutine began after the block.
			for after := 0; after < 2; {
				if blocked.Load() {
					after++
				}
				u := loginOf("u")
				err := s.RecordLogin(ctx, u, false, &store.LogEvent{Type: "sepft", UserID: "u", Doc: json.RawMessage(`{}`)}, nil)
				if err != nil {
					errs <- err
					return
				}
				total.Add(1)
				if !u.Blocked {
					succeeded.Add(1)
					if after > 0 {
						errs <- errors.New("a login stored after the block committed did not see it")
					}
				}
			}
		})
	}
	count := func(u *store.User) error {
		var md struct{ N int }
		if err := json.Unmarshal(u.AppMetadata, &md); err != nil {
			return err
		}
		u.AppMetadata = json.RawMessage(fmt.Sprintf(`{"n": %d}`, md.N+1))
		return nil
	}
	var admins sync.WaitGroup
	for range 2 {
		admins.Go(func() {
			for range edits {
				if _, err := s.PatchUser(ctx, "u", count); err != nil {
					errs <- err
				}
			}
		})
	}
	admins.Go(func() {
		if _, err := s.PatchUser(ctx, "u", func(u *store.User) error { u.Blocked = true; return nil }); err != nil {
			errs <- err
		}
		blocked.Store(true)
	})
	admins.Wait()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err = s.GetUser(ctx, "u")
	must(t, err)
	var md struct{ N int }
	_ = json.Unmarshal(got.AppMetadata, &md)
	if !got.Blocked || md.N != 2*edits || string(canonical(*got).UserMetadata) != `{"theme":"dark"}` || int64(got.LoginsCount) != total.Load() {
		t.Errorf("after the race: blocked %v, app_metadata %s (want n %d), user_metadata %s, logins %d (want %d)",
			got.Blocked, got.AppMetadata, 2*edits, got.UserMetadata, got.LoginsCount, total.Load())
	}
	_, n, err := s.ListLogEvents(ctx, store.LogFilter{UserID: "u"}, store.ListOptions{PerPage: 1})
	must(t, err)
	if int64(n) != succeeded.Load() {
		t.Errorf("%d success events for %d logins that found the user not blocked", n, succeeded.Load())
	}
}

func testUserListPrefix(t *testing.T, s store.Store) {
	ctx := t.Context()
	for id, email := range map[string]string{
		"u0": "Alice@Example.com", "u1": "alice.b@example.org", "u2": "bob@example.com", "u3": "ÉMILE@example.com",
		"u4": "a_b%c@example.com", "u5": "axb@example.com", "u6": `a\b@example.com`, "u7": "",
	} {
		_, err := s.UpsertUser(ctx, &store.User{UserID: id, Connection: "contoso", Email: email})
		must(t, err)
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"ALICE", []string{"u0", "u1"}},
		{"alice@", []string{"u0"}},
		{"émile", []string{"u3"}},
		{"a_", []string{"u4"}},
		{"a_b%", []string{"u4"}},
		{"a%", []string{}},
		{`a\`, []string{"u6"}},
		{"nobody", []string{}},
	} {
		us, total, err := s.ListUsers(ctx, store.UserFilter{Email: tc.prefix, EmailPrefix: true}, store.ListOptions{})
		must(t, err)
		got := []string{}
		for _, u := range us {
			got = append(got, u.UserID)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) || total != len(tc.want) {
			t.Errorf("prefix %q: got %v total %d, want %v", tc.prefix, got, total, tc.want)
		}
	}
}

// trickyEmails are addresses around the byte values where a prefix's
// range of the email index ends (a store may search a prefix that way):
// the last ASCII byte, UTF-8's continuation and lead bytes, the last code
// point, LIKE's pattern characters, and letters that lower-case across
// scripts (the Kelvin sign becomes ASCII k).
var trickyEmails = []string{
	"a", "A@x", "ab@x", "a\x7f@x", "a\u0080@x", "a\u00bf@x", "a\u00c0@x", "\u00e0@x", "a\u07ff@x", "a\u0800@x",
	"a\uffff@x", "a\U0010FFFF", "a\U0010FFFF@x", "a\U0010FFFF\U0010FFFF", "b", "\u212Aate@x", "kate@x",
	"ÉMILE@x", "émile2@x", "a%b@x", "a_b@x", `a\b@x`, "a.b@x", "%@x", "_@x", `\@x`, "",
}

// testUserListTricky: an email, or its beginning, finds exactly the
// users whose lower-cased address is it or begins with it, alone or with
// a connection, however its last bytes fall.
func testUserListTricky(t *testing.T, s store.Store) {
	ctx := t.Context()
	connections := []string{"contoso", "fabrikam"}
	for i, email := range trickyEmails {
		_, err := s.UpsertUser(ctx, &store.User{UserID: fmt.Sprint("u", i), Connection: connections[i%2], Email: email})
		must(t, err)
	}
	prefixes := []string{"%", "_", `\`, "a%", "a_", "a\\", "a\x7f", "a\u00bf", "a\U0010FFFF", "a\U0010FFFF\U0010FFFF",
		"\u212A", "K", "É", "é", "\uffff", "zz", "A@X"}
	for _, email := range trickyEmails {
		for i := range email {
			if i > 0 {
				prefixes = append(prefixes, email[:i])
			}
		}
		prefixes = append(prefixes, email, strings.ToUpper(email))
	}
	for _, connection := range []string{"", "contoso"} {
		for _, prefix := range prefixes {
			if !utf8.ValidString(prefix) || prefix == "" {
				continue
			}
			for _, f := range []store.UserFilter{
				{Email: prefix, EmailPrefix: true, Connection: connection},
				{Email: prefix, Connection: connection},
			} {
				want := []string{}
				for i, email := range trickyEmails {
					e, p := strings.ToLower(email), strings.ToLower(prefix)
					if (e == p || (f.EmailPrefix && strings.HasPrefix(e, p))) && (connection == "" || connections[i%2] == connection) {
						want = append(want, fmt.Sprint("u", i))
					}
				}
				us, total, err := s.ListUsers(ctx, f, store.ListOptions{PerPage: 100})
				must(t, err)
				got := []string{}
				for _, u := range us {
					got = append(got, u.UserID)
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) || total != len(want) {
					t.Errorf("email %+q prefix %v connection %q: got %v total %d, want %v", f.Email, f.EmailPrefix, f.Connection, got, total, want)
				}
			}
		}
	}
}
