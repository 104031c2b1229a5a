package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

func testResourceServers(t *testing.T, s store.Store) {
	ctx := t.Context()
	rs := &store.ResourceServer{
		ID: "rs1", Identifier: "https://api.example/", Name: "API <1>",
		Scopes:     []store.ResourceServerScope{{Value: "read:x", Description: "Read x"}, {Value: "write:x"}},
		SigningAlg: "RS256", TokenLifetime: 7200, TokenLifetimeForWeb: 3600, AllowOfflineAccess: true,
		SkipConsentForVerifiableFirstPartyClients: true, CreatedAt: t0,
	}
	must(t, s.CreateResourceServer(ctx, rs))
	wantErr(t, "CreateResourceServer same identifier",
		s.CreateResourceServer(ctx, &store.ResourceServer{ID: "rs2", Identifier: rs.Identifier}), store.ErrConflict)
	got, err := s.GetResourceServer(ctx, "rs1")
	must(t, err)
	equal(t, "GetResourceServer", got, rs)
	got, err = s.GetResourceServerByIdentifier(ctx, rs.Identifier)
	must(t, err)
	equal(t, "GetResourceServerByIdentifier", got, rs)
	_, err = s.GetResourceServerByIdentifier(ctx, "https://other/")
	wantErr(t, "GetResourceServerByIdentifier unknown", err, store.ErrNotFound)

	rs.Name, rs.Scopes, rs.TokenLifetime = "renamed", nil, 60
	must(t, s.UpdateResourceServer(ctx, rs))
	got, err = s.GetResourceServer(ctx, "rs1")
	must(t, err)
	equal(t, "after UpdateResourceServer", got, rs)
	wantErr(t, "UpdateResourceServer unknown", s.UpdateResourceServer(ctx, &store.ResourceServer{ID: "nope"}), store.ErrNotFound)
	// got was read before this write: writing it would undo the write.
	rs.AllowOfflineAccess = false
	must(t, s.UpdateResourceServer(ctx, rs))
	got.TokenLifetime = 120
	wantErr(t, "UpdateResourceServer of an API written since", s.UpdateResourceServer(ctx, got), store.ErrConflict)
	got, err = s.GetResourceServer(ctx, "rs1")
	must(t, err)
	equal(t, "GetResourceServer after a refused update", got, rs)
	// Every write moves UpdatedAt forward, several in one millisecond too.
	for i := range 5 {
		prev := rs.UpdatedAt
		rs.Name = fmt.Sprint("quick ", i)
		must(t, s.UpdateResourceServer(ctx, rs))
		if !rs.UpdatedAt.After(prev) {
			t.Fatalf("UpdateResourceServer %d: UpdatedAt = %v, not after %v", i, rs.UpdatedAt, prev)
		}
	}

	must(t, s.CreateResourceServer(ctx, &store.ResourceServer{ID: "rs3", Identifier: "urn:three", CreatedAt: t0.Add(time.Second)}))
	list, total, err := s.ListResourceServers(ctx, store.ListOptions{PerPage: 1, Page: 1})
	must(t, err)
	if total != 2 || len(list) != 1 || list[0].ID != "rs3" {
		t.Errorf("ListResourceServers page 1: total %d, %d items", total, len(list))
	}

	// Deleting an API deletes its grants.
	must(t, s.CreateClient(ctx, fullClient("c1")))
	must(t, s.CreateClientGrant(ctx, &store.ClientGrant{ID: "g1", ClientID: "c1", Audience: rs.Identifier, Scope: []string{"read:x"}}))
	must(t, s.DeleteResourceServer(ctx, "rs1"))
	_, err = s.GetClientGrant(ctx, "g1")
	wantErr(t, "grant after DeleteResourceServer", err, store.ErrNotFound)
	wantErr(t, "DeleteResourceServer again", s.DeleteResourceServer(ctx, "rs1"), store.ErrNotFound)

	// A grant that outlived its API (created while the API was deleted)
	// grants nothing on a new API of the same identifier.
	must(t, s.CreateClientGrant(ctx, &store.ClientGrant{ID: "g2", ClientID: "c1", Audience: rs.Identifier, Scope: []string{"read:x"}}))
	must(t, s.CreateResourceServer(ctx, &store.ResourceServer{ID: "rs4", Identifier: rs.Identifier, CreatedAt: t0.Add(2 * time.Second)}))
	_, err = s.FindClientGrant(ctx, "c1", rs.Identifier)
	wantErr(t, "grant left from an earlier API after CreateResourceServer", err, store.ErrNotFound)
	must(t, s.CreateClientGrant(ctx, &store.ClientGrant{ID: "g3", ClientID: "c1", Audience: "urn:three"}))
	wantErr(t, "CreateResourceServer taken identifier",
		s.CreateResourceServer(ctx, &store.ResourceServer{ID: "rs5", Identifier: "urn:three"}), store.ErrConflict)
	_, err = s.GetClientGrant(ctx, "g3")
	must(t, err)
}

func testClientGrants(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateClient(ctx, fullClient("c1")))
	must(t, s.CreateClient(ctx, fullClient("c2")))
	g := &store.ClientGrant{ID: "g1", ClientID: "c1", Audience: "urn:a", Scope: []string{"read:a", "write:a"}, CreatedAt: t0}
	must(t, s.CreateClientGrant(ctx, g))
	for _, tc := range []struct {
		name string
		g    *store.ClientGrant
		want error
	}{
		{"same client and audience", &store.ClientGrant{ID: "g2", ClientID: "c1", Audience: "urn:a"}, store.ErrConflict},
		{"same id", &store.ClientGrant{ID: "g1", ClientID: "c2", Audience: "urn:b"}, store.ErrConflict},
		{"unknown client", &store.ClientGrant{ID: "g3", ClientID: "nope", Audience: "urn:a"}, store.ErrNotFound},
	} {
		wantErr(t, "CreateClientGrant "+tc.name, s.CreateClientGrant(ctx, tc.g), tc.want)
	}
	must(t, s.CreateClientGrant(ctx, &store.ClientGrant{ID: "g4", ClientID: "c2", Audience: "urn:a", CreatedAt: t0.Add(time.Second)}))
	must(t, s.CreateClientGrant(ctx, &store.ClientGrant{ID: "g5", ClientID: "c1", Audience: "urn:b", CreatedAt: t0.Add(2 * time.Second)}))

	got, err := s.FindClientGrant(ctx, "c1", "urn:a")
	must(t, err)
	equal(t, "FindClientGrant", got, g)
	_, err = s.FindClientGrant(ctx, "c2", "urn:b")
	wantErr(t, "FindClientGrant missing", err, store.ErrNotFound)
	got, err = s.GetClientGrant(ctx, "g4")
	must(t, err)
	if got.Scope == nil || len(got.Scope) != 0 {
		t.Errorf("empty scope: got %#v, want []", got.Scope)
	}

	for _, tc := range []struct {
		f    store.ClientGrantFilter
		want []string
	}{
		{store.ClientGrantFilter{}, []string{"g1", "g4", "g5"}},
		{store.ClientGrantFilter{ClientID: "c1"}, []string{"g1", "g5"}},
		{store.ClientGrantFilter{Audience: "urn:a"}, []string{"g1", "g4"}},
		{store.ClientGrantFilter{ClientID: "c2", Audience: "urn:b"}, nil},
	} {
		list, total, err := s.ListClientGrants(ctx, tc.f, store.ListOptions{})
		must(t, err)
		var ids []string
		for _, g := range list {
			ids = append(ids, g.ID)
		}
		if fmt.Sprint(ids) != fmt.Sprint(tc.want) || total != len(tc.want) {
			t.Errorf("ListClientGrants(%+v) = %v (total %d), want %v", tc.f, ids, total, tc.want)
		}
	}

	g.Scope = []string{"read:a"}
	must(t, s.UpdateClientGrant(ctx, g))
	got, err = s.GetClientGrant(ctx, "g1")
	must(t, err)
	equal(t, "after UpdateClientGrant", got, g)
	wantErr(t, "UpdateClientGrant unknown", s.UpdateClientGrant(ctx, &store.ClientGrant{ID: "nope"}), store.ErrNotFound)

	must(t, s.DeleteClientGrant(ctx, "g4"))
	wantErr(t, "DeleteClientGrant again", s.DeleteClientGrant(ctx, "g4"), store.ErrNotFound)
	must(t, s.DeleteClient(ctx, "c1"))
	_, total, err := s.ListClientGrants(ctx, store.ClientGrantFilter{ClientID: "c1"}, store.ListOptions{})
	must(t, err)
	if total != 0 {
		t.Errorf("%d grants left after DeleteClient", total)
	}
}

// refreshFixture creates a client and a user and returns a token factory.
func refreshFixture(t *testing.T, s store.Store) func(id, family string, at time.Time) *store.RefreshToken {
	ctx := t.Context()
	must(t, s.CreateClient(ctx, fullClient("c1")))
	_, err := s.UpsertUser(ctx, fullUser("u1"))
	must(t, err)
	return func(id, family string, at time.Time) *store.RefreshToken {
		return &store.RefreshToken{
			ID: id, FamilyID: family, SecretHash: []byte("hash-" + id), ClientID: "c1", UserID: "u1",
			Audience: "urn:a", Scope: "openid offline_access", Rotating: true, CreatedAt: at,
			ExpiresAt: ptr(at.Add(24 * time.Hour)), IdleExpiresAt: ptr(at.Add(time.Hour)),
			InitialIP: "192.0.2.1", InitialUA: "ua", LastIP: "192.0.2.1", LastUA: "ua", Connection: "conn-" + family,
			TenantGeneration: 3,
		}
	}
}

// testConnectionDeleteRevokesRefreshTokens: deleting a connection deletes
// the refresh tokens issued through it, and those stored without their
// connection whose user's is it; a connection made again under the name
// finds none.
func testConnectionDeleteRevokesRefreshTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	tok := refreshFixture(t, s)
	u2 := fullUser("u2")
	u2.Connection = "other"
	_, err := s.UpsertUser(ctx, u2)
	must(t, err)
	must(t, s.CreateConnection(ctx, fullConnection("con_1", "contoso", "c1")))
	now := time.Now().UTC()
	add := func(id, connection, user string) {
		rt := tok(id, "", now)
		rt.Connection, rt.UserID = connection, user
		must(t, s.CreateRefreshToken(ctx, rt))
	}
	add("issued-through", "contoso", "u1")
	add("legacy-of-its-user", "", "u1")
	add("other-connection", "other", "u1")
	add("legacy-of-another-user", "", "u2")
	add("issued-through-other-user", "contoso", "u2")
	must(t, s.DeleteConnection(ctx, "con_1"))
	for id, kept := range map[string]bool{"issued-through": false, "legacy-of-its-user": false, "issued-through-other-user": false,
		"other-connection": true, "legacy-of-another-user": true} {
		_, err := s.GetRefreshToken(ctx, id)
		switch {
		case kept:
			must(t, err)
		default:
			wantErr(t, "token "+id+" after its connection's deletion", err, store.ErrNotFound)
		}
	}
	must(t, s.CreateConnection(ctx, fullConnection("con_2", "contoso", "c1")))
	_, err = s.GetRefreshToken(ctx, "issued-through")
	wantErr(t, "token of a deleted connection made again", err, store.ErrNotFound)
}

func testRefreshTokenWithUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	tok := refreshFixture(t, s)
	must(t, s.CreateRefreshToken(ctx, tok("a", "", time.Now().UTC())))
	wantToken, err := s.GetRefreshToken(ctx, "a")
	must(t, err)
	wantUser, err := s.GetUser(ctx, "u1")
	must(t, err)
	gotToken, gotUser, err := s.GetRefreshTokenWithUser(ctx, "a")
	must(t, err)
	equal(t, "GetRefreshTokenWithUser token", gotToken, wantToken)
	equal(t, "GetRefreshTokenWithUser user", gotUser, wantUser)

	_, _, err = s.GetRefreshTokenWithUser(ctx, "nope")
	wantErr(t, "GetRefreshTokenWithUser unknown", err, store.ErrNotFound)
	must(t, s.DeleteUser(ctx, "u1"))
	_, _, err = s.GetRefreshTokenWithUser(ctx, "a")
	wantErr(t, "GetRefreshTokenWithUser after DeleteUser", err, store.ErrNotFound)
}

// testRefreshTokenExchangeLog checks that an exchange's log event is
// stored with the exchange when it succeeds, and never when it is refused.
func testRefreshTokenExchangeLog(t *testing.T, s store.Store) {
	ctx := t.Context()
	tok := refreshFixture(t, s)
	now := time.Now().UTC()
	event := func(n int) *store.LogEvent {
		return &store.LogEvent{Type: "sertft", UserID: "u1", Doc: json.RawMessage(fmt.Sprintf(`{"n": %d}`, n))}
	}
	logged := func(what string, want int) {
		t.Helper()
		_, total, err := s.ListLogEvents(ctx, store.LogFilter{Type: "sertft"}, store.ListOptions{})
		must(t, err)
		if total != want {
			t.Errorf("%s: %d events stored, want %d", what, total, want)
		}
	}

	must(t, s.CreateRefreshToken(ctx, tok("a", "", now)))
	e := event(1)
	must(t, s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: "a", Now: now, Next: tok("b", "a", now), Log: e}))
	if e.ID == "" || e.Date.IsZero() {
		t.Errorf("stored event without ID or date: %+v", e)
	}
	logged("rotation", 1)
	if got, err := s.GetRefreshToken(ctx, "b"); err != nil || got.Connection != "conn-a" {
		t.Errorf("successor of a logged rotation: %+v, %v; want its connection stored", got, err)
	}

	nr := tok("n", "", now)
	nr.Rotating = false
	must(t, s.CreateRefreshToken(ctx, nr))
	must(t, s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: "n", Now: now, IdleExpiresAt: ptr(now.Add(time.Hour)), Log: event(2)}))
	logged("non-rotating exchange", 2)

	err := s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: "a", Now: now.Add(time.Minute), Next: tok("c", "a", now), Log: event(3)})
	wantErr(t, "reuse", err, store.ErrRefreshTokenReused)
	err = s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: "n", Now: now.Add(2 * time.Hour), IdleExpiresAt: ptr(now.Add(3 * time.Hour)), Log: event(4)})
	wantErr(t, "expired", err, store.ErrNotFound)
	err = s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: "nope", Now: now, Next: tok("d", "nope", now), Log: event(5)})
	wantErr(t, "unknown", err, store.ErrNotFound)
	logged("refused exchanges", 2)
}

func testRefreshTokenListFilter(t *testing.T, s store.Store) {
	ctx := t.Context()
	tok := refreshFixture(t, s)
	must(t, s.CreateClient(ctx, fullClient("c2")))
	now := time.Now().UTC()
	r1, n1, r2 := tok("r1", "", now), tok("n1", "", now.Add(time.Millisecond)), tok("r2", "", now.Add(2*time.Millisecond))
	n1.Rotating, r2.ClientID = false, "c2"
	for _, rt := range []*store.RefreshToken{r1, n1, r2} {
		must(t, s.CreateRefreshToken(ctx, rt))
	}
	yes, no := true, false
	for _, c := range []struct {
		f    store.RefreshTokenFilter
		want []string
	}{
		{store.RefreshTokenFilter{UserID: "u1"}, []string{"r1", "n1", "r2"}},
		{store.RefreshTokenFilter{UserID: "u1", ClientID: "c1"}, []string{"r1", "n1"}},
		{store.RefreshTokenFilter{UserID: "u1", Rotating: &no}, []string{"n1"}},
		{store.RefreshTokenFilter{UserID: "u1", ClientID: "c2", Rotating: &yes}, []string{"r2"}},
		{store.RefreshTokenFilter{UserID: "u1", ClientID: "c2", Rotating: &no}, nil},
		{store.RefreshTokenFilter{UserID: "nobody"}, nil},
		{store.RefreshTokenFilter{ID: "n1"}, []string{"n1"}},
		{store.RefreshTokenFilter{ID: "n1", UserID: "u1", ClientID: "c2"}, nil},
		{store.RefreshTokenFilter{ID: "nothing"}, nil},
	} {
		list, total, err := s.ListRefreshTokens(ctx, c.f, store.ListOptions{})
		must(t, err)
		var got []string
		for _, rt := range list {
			got = append(got, rt.ID)
		}
		if total != len(c.want) || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ListRefreshTokens(%+v) = %v (total %d), want %v", c.f, got, total, c.want)
		}
	}
}

func testRefreshTokenRotation(t *testing.T, s store.Store) {
	ctx := t.Context()
	tok := refreshFixture(t, s)
	now := time.Now().UTC()
	a := tok("a", "", now)
	must(t, s.CreateRefreshToken(ctx, a))
	got, err := s.GetRefreshToken(ctx, "a")
	must(t, err)
	equal(t, "GetRefreshToken", got, &store.RefreshToken{
		ID: "a", FamilyID: "a", SecretHash: []byte("hash-a"), ClientID: "c1", UserID: "u1", Audience: "urn:a",
		Scope: "openid offline_access", Rotating: true, CreatedAt: ms(now), ExpiresAt: ptr(ms(now.Add(24 * time.Hour))),
		IdleExpiresAt: ptr(ms(now.Add(time.Hour))), InitialIP: "192.0.2.1", InitialUA: "ua", LastIP: "192.0.2.1", LastUA: "ua",
		Connection: "conn-", TenantGeneration: 3,
	})

	leeway := 10 * time.Second
	exchange := func(id, next string, at time.Time) error {
		return s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: id, Now: at, Leeway: leeway, Next: tok(next, "a", at), IP: "192.0.2.9", UA: "ua2"})
	}
	t1 := now.Add(time.Minute)
	must(t, exchange("a", "b", t1))
	got, err = s.GetRefreshToken(ctx, "a")
	must(t, err)
	if got.RotatedAt == nil || !got.RotatedAt.Equal(ms(t1)) || got.LastIP != "192.0.2.9" {
		t.Errorf("rotated token: RotatedAt %v LastIP %q", got.RotatedAt, got.LastIP)
	}
	if got, err := s.GetRefreshToken(ctx, "b"); err != nil || got.Connection != "conn-a" || got.TenantGeneration != 3 {
		t.Errorf("successor: %+v, %v; want its connection and tenant generation stored", got, err)
	}
	// Within the leeway the previous token may be exchanged again (two
	// concurrent requests of one app).
	must(t, exchange("a", "c", t1.Add(leeway/2)))
	list, total, err := s.ListRefreshTokens(ctx, store.RefreshTokenFilter{UserID: "u1"}, store.ListOptions{})
	must(t, err)
	if total != 2 || len(list) != 2 || list[0].ID != "b" || list[1].ID != "c" {
		t.Errorf("ListRefreshTokens after leeway reuse: total %d %v", total, list)
	}
	// Once a later token of the family was rotated, the old one is no
	// longer the previous one: reuse, even within its leeway.
	must(t, exchange("b", "d", t1.Add(leeway/2)))
	wantErr(t, "reuse of second-to-last", exchange("a", "e", t1.Add(leeway/2)), store.ErrRefreshTokenReused)
	for _, id := range []string{"a", "b", "c", "d"} {
		_, err := s.GetRefreshToken(ctx, id)
		wantErr(t, "family member "+id+" after reuse", err, store.ErrNotFound)
	}

	// Reuse after the leeway revokes the family too.
	must(t, s.CreateRefreshToken(ctx, tok("f", "", now)))
	must(t, s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: "f", Now: t1, Leeway: leeway, Next: tok("g", "f", t1)}))
	err = s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: "f", Now: t1.Add(leeway + time.Second), Leeway: leeway, Next: tok("h", "f", t1)})
	wantErr(t, "reuse after leeway", err, store.ErrRefreshTokenReused)
	_, err = s.GetRefreshToken(ctx, "g")
	wantErr(t, "successor after reuse", err, store.ErrNotFound)

	// Expired tokens, absolute or idle, are refused and left alone.
	must(t, s.CreateRefreshToken(ctx, tok("x", "", now)))
	for _, at := range []time.Time{now.Add(time.Hour), now.Add(25 * time.Hour)} {
		err := s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: "x", Now: at, Next: tok("y", "x", at)})
		wantErr(t, "exchange expired", err, store.ErrNotFound)
	}
	wantErr(t, "exchange unknown", s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: "nope", Now: now}), store.ErrNotFound)

	// Non-rotating: the idle expiry moves.
	nr := tok("n", "", now)
	nr.Rotating = false
	must(t, s.CreateRefreshToken(ctx, nr))
	idle := now.Add(2 * time.Hour)
	must(t, s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: "n", Now: t1, IdleExpiresAt: &idle}))
	must(t, s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: "n", Now: now.Add(90 * time.Minute), IdleExpiresAt: &idle}))
	got, err = s.GetRefreshToken(ctx, "n")
	must(t, err)
	if got.RotatedAt != nil || !got.IdleExpiresAt.Equal(ms(idle)) {
		t.Errorf("non-rotating token after exchange: %+v", got)
	}
}

// testRefreshTokenReused checks that RefreshTokenReused answers as an
// exchange at the same time would, and changes nothing.
func testRefreshTokenReused(t *testing.T, s store.Store) {
	ctx := t.Context()
	tok := refreshFixture(t, s)
	now := time.Now().UTC()
	leeway := 10 * time.Second
	t1 := now.Add(time.Minute)
	must(t, s.CreateRefreshToken(ctx, tok("a", "", now)))
	must(t, s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: "a", Now: t1, Leeway: leeway, Next: tok("b", "a", t1)}))
	check := func(what, id string, at time.Time, leeway time.Duration, want bool) {
		t.Helper()
		got, err := s.RefreshTokenReused(ctx, id, at, leeway)
		must(t, err)
		if got != want {
			t.Errorf("RefreshTokenReused %s = %v, want %v", what, got, want)
		}
	}
	check("never rotated", "b", t1, leeway, false)
	check("rotated, within the leeway", "a", t1.Add(leeway/2), leeway, false)
	check("rotated, after the leeway", "a", t1.Add(leeway+time.Second), leeway, true)
	check("rotated, no leeway", "a", t1, 0, true)
	must(t, s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: "b", Now: t1.Add(time.Second), Leeway: leeway, Next: tok("c", "a", t1)}))
	check("second-to-last, within the leeway", "a", t1.Add(leeway/2), leeway, true)
	check("last rotated, within the leeway", "b", t1.Add(leeway/2), leeway, false)
	_, err := s.RefreshTokenReused(ctx, "nope", t1, leeway)
	wantErr(t, "RefreshTokenReused unknown", err, store.ErrNotFound)
	for _, id := range []string{"a", "b", "c"} {
		if _, err := s.GetRefreshToken(ctx, id); err != nil {
			t.Errorf("%s after RefreshTokenReused: %v", id, err)
		}
	}
}

func testRefreshTokenRevocation(t *testing.T, s store.Store) {
	ctx := t.Context()
	tok := refreshFixture(t, s)
	now := time.Now().UTC()
	must(t, s.CreateRefreshToken(ctx, tok("a", "", now)))
	must(t, s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: "a", Now: now, Next: tok("b", "a", now)}))
	must(t, s.CreateRefreshToken(ctx, tok("c", "", now)))
	// A family is named by its id, not by any of its tokens.
	wantErr(t, "RevokeRefreshTokenFamily by a later token's id", s.RevokeRefreshTokenFamily(ctx, "b"), store.ErrNotFound)
	must(t, s.RevokeRefreshTokenFamily(ctx, "a"))
	for _, id := range []string{"a", "b"} {
		_, err := s.GetRefreshToken(ctx, id)
		wantErr(t, "after RevokeRefreshTokenFamily "+id, err, store.ErrNotFound)
	}
	wantErr(t, "RevokeRefreshTokenFamily unknown", s.RevokeRefreshTokenFamily(ctx, "a"), store.ErrNotFound)
	n, err := s.RevokeUserRefreshTokens(ctx, "u1")
	must(t, err)
	if n != 1 {
		t.Errorf("RevokeUserRefreshTokens = %d, want 1", n)
	}

	// Deleting the user deletes the tokens.
	must(t, s.CreateRefreshToken(ctx, tok("d", "", now)))
	must(t, s.DeleteUser(ctx, "u1"))
	_, err = s.GetRefreshToken(ctx, "d")
	wantErr(t, "token of deleted user", err, store.ErrNotFound)

	// Purge works in bounded batches.
	_, err = s.UpsertUser(ctx, fullUser("u1"))
	must(t, err)
	old := now.Add(-48 * time.Hour)
	for i := range 5 {
		must(t, s.CreateRefreshToken(ctx, tok(fmt.Sprintf("old%d", i), "", old)))
	}
	must(t, s.CreateRefreshToken(ctx, tok("live", "", now)))
	for _, want := range []int{2, 2, 1, 0} {
		n, err := s.PurgeExpiredRefreshTokens(ctx, now, 2)
		must(t, err)
		if n != want {
			t.Errorf("PurgeExpiredRefreshTokens = %d, want %d", n, want)
		}
	}
	if _, err := s.GetRefreshToken(ctx, "live"); err != nil {
		t.Errorf("live token purged: %v", err)
	}
}

// concurrentExchanges runs exchange(0) … exchange(n-1) at once and counts
// the successes; reuse and not-found are the losers' expected answers,
// anything else fails t.
func concurrentExchanges(t *testing.T, n int, exchange func(i int) error) int {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
		errs []error
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			err := exchange(i)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, store.ErrRefreshTokenReused), errors.Is(err, store.ErrNotFound):
			default:
				errs = append(errs, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}
	return wins
}

// testRefreshTokenRace exchanges one token from many goroutines without
// leeway: one wins, the others are reuse and revoke the family.
func testRefreshTokenRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	tok := refreshFixture(t, s)
	now := time.Now().UTC()
	must(t, s.CreateRefreshToken(ctx, tok("a", "", now)))
	wins := concurrentExchanges(t, 8, func(i int) error {
		return s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: "a", Now: now.Add(time.Second), Next: tok(fmt.Sprintf("n%d", i), "a", now)})
	})
	if wins != 1 {
		t.Fatalf("%d concurrent exchanges of one token succeeded, want 1", wins)
	}
	if _, total, err := s.ListRefreshTokens(ctx, store.RefreshTokenFilter{UserID: "u1"}, store.ListOptions{}); err != nil || total != 0 {
		t.Errorf("after reuse: %d tokens left (%v), want the family revoked", total, err)
	}
}

func testSigningKeyRotation(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := func(kid string, state store.KeyState) *store.SigningKey {
		return &store.SigningKey{KID: kid, PrivateEnc: []byte("p-" + kid), CertDER: []byte("c-" + kid), State: state, CreatedAt: t0}
	}
	_, err := s.InsertSigningKeyIfNone(ctx, key("k1", store.KeyCurrent))
	must(t, err)
	_, err = s.InsertSigningKeyIfNone(ctx, key("k2", store.KeyNext))
	must(t, err)

	const n = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []string
	)
	start := make(chan struct{})
	at := t0.Add(time.Hour)
	for i := range n {
		wg.Go(func() {
			k := key(fmt.Sprintf("r%d", i), store.KeyNext)
			<-start
			ok, err := s.RotateSigningKeys(ctx, "k1", k, at)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins = append(wins, k.KID)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("%d concurrent rotations succeeded, want 1", len(wins))
	}
	keys, err := s.ListSigningKeys(ctx)
	must(t, err)
	states := map[string]store.KeyState{}
	for _, k := range keys {
		states[k.KID] = k.State
		switch k.KID {
		case "k1":
			if k.CurrentUntil == nil || !k.CurrentUntil.Equal(ms(at)) {
				t.Errorf("previous key current_until = %v", k.CurrentUntil)
			}
		case "k2":
			if k.CurrentSince == nil || !k.CurrentSince.Equal(ms(at)) {
				t.Errorf("new current key current_since = %v", k.CurrentSince)
			}
		}
	}
	want := map[string]store.KeyState{"k1": store.KeyPrevious, "k2": store.KeyCurrent, wins[0]: store.KeyNext}
	if fmt.Sprint(states) != fmt.Sprint(want) {
		t.Errorf("after rotation: %v, want %v", states, want)
	}

	for _, tc := range []struct {
		kid  string
		want error
	}{
		{"k2", store.ErrKeyInUse},
		{wins[0], store.ErrKeyInUse},
		{"nope", store.ErrNotFound},
	} {
		_, err := s.RevokeSigningKey(ctx, tc.kid, at)
		wantErr(t, "RevokeSigningKey "+tc.kid, err, tc.want)
	}
	k, err := s.RevokeSigningKey(ctx, "k1", at.Add(time.Minute))
	must(t, err)
	if k.State != store.KeyRevoked || k.RevokedAt == nil || !k.RevokedAt.Equal(ms(at.Add(time.Minute))) {
		t.Errorf("revoked key: %+v", k)
	}
}

// testRefreshTokenOutOfOrderClocks: a request reads its clock before it
// signs its tokens, so the exchange that rotates first may carry the later
// time, and replicas' clocks differ. Neither may let a rotated token be
// exchanged again outside the leeway rules.
func testRefreshTokenOutOfOrderClocks(t *testing.T, s store.Store) {
	ctx := t.Context()
	tok := refreshFixture(t, s)
	now := time.Now().UTC()
	exchange := func(id, family, next string, at time.Time, leeway time.Duration) error {
		return s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: id, Now: at, Leeway: leeway, Next: tok(next, family, at)})
	}
	gone := func(what string, ids ...string) {
		t.Helper()
		for _, id := range ids {
			_, err := s.GetRefreshToken(ctx, id)
			wantErr(t, what+": "+id, err, store.ErrNotFound)
		}
	}

	// Without leeway a rotated token is never exchanged again, even by a
	// request whose clock read precedes the rotation.
	must(t, s.CreateRefreshToken(ctx, tok("a", "", now)))
	must(t, exchange("a", "a", "b", now.Add(time.Millisecond), 0))
	wantErr(t, "leeway 0, earlier clock", exchange("a", "a", "c", now, 0), store.ErrRefreshTokenReused)
	gone("leeway 0, family after reuse", "a", "b", "c")

	// With a leeway, such a request counts as concurrent with the
	// rotation, which is what the leeway is for.
	must(t, s.CreateRefreshToken(ctx, tok("d", "", now)))
	must(t, exchange("d", "d", "e", now.Add(time.Millisecond), 10*time.Second))
	must(t, exchange("d", "d", "f", now, 10*time.Second))

	// The successor was rotated by a replica whose clock lags: the old
	// token is no longer the family's latest rotated one, whatever the
	// timestamps say.
	must(t, s.CreateRefreshToken(ctx, tok("g", "", now)))
	must(t, exchange("g", "g", "h", now, 10*time.Second))
	must(t, exchange("h", "g", "i", now.Add(-time.Second), 10*time.Second))
	wantErr(t, "second-to-last, lagging clock", exchange("g", "g", "j", now, 10*time.Second), store.ErrRefreshTokenReused)
	gone("lagging clock, family after reuse", "g", "h", "i", "j")

	// Concurrent exchanges of one token without leeway, each request with
	// its own clock reading: exactly one wins.
	for round := range 20 {
		root := fmt.Sprintf("r%d", round)
		must(t, s.CreateRefreshToken(ctx, tok(root, "", now)))
		const n = 6
		wins := concurrentExchanges(t, n, func(i int) error {
			return exchange(root, root, fmt.Sprintf("%s-%d", root, i), now.Add(time.Duration(n-i)*time.Millisecond), 0)
		})
		if wins != 1 {
			t.Fatalf("round %d: %d concurrent exchanges of one token succeeded without leeway, want 1", round, wins)
		}
	}
}

// testRefreshTokenRevocationRace revokes a family while its token is
// being exchanged, round after round: once a revocation has reported
// success, no token of the family may be usable, including the one the
// concurrent rotation created.
func testRefreshTokenRevocationRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	tok := refreshFixture(t, s)
	now := time.Now().UTC()
	for _, c := range []struct {
		name   string
		revoke func(family string) error
	}{
		{"family", func(family string) error { return s.RevokeRefreshTokenFamily(ctx, family) }},
		{"user", func(string) error {
			_, err := s.RevokeUserRefreshTokens(ctx, "u1")
			return err
		}},
	} {
		name, revoke := c.name, c.revoke
		for round := range 60 {
			family := fmt.Sprintf("%s%d", name, round)
			next := family + "-next"
			must(t, s.CreateRefreshToken(ctx, tok(family, "", now)))
			var exErr, revErr error
			var wg sync.WaitGroup
			start := make(chan struct{})
			wg.Go(func() {
				<-start
				exErr = s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: family, Now: now, Next: tok(next, family, now)})
			})
			wg.Go(func() {
				<-start
				revErr = revoke(family)
			})
			close(start)
			wg.Wait()
			if exErr != nil && !errors.Is(exErr, store.ErrNotFound) {
				t.Fatalf("%s round %d: exchange: %v", name, round, exErr)
			}
			if revErr != nil {
				t.Fatalf("%s round %d: revoke: %v", name, round, revErr)
			}
			for _, id := range []string{family, next} {
				if _, err := s.GetRefreshToken(ctx, id); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("%s round %d: token %s survived its family's revocation (exchange: %v): %v", name, round, id, exErr, err)
				}
			}
		}
	}
}

// testRefreshTokenPurgeKeepsFamilies: a rotated token is kept as long as
// its family lives, past its own idle expiry, so that its reuse is still
// detected and the family can still be revoked by its id; once the family
// is dead, all of it goes.
func testRefreshTokenPurgeKeepsFamilies(t *testing.T, s store.Store) {
	ctx := t.Context()
	tok := refreshFixture(t, s)
	now := time.Now().UTC()
	// Tokens idle out after an hour; each family is rotated after half an
	// hour, so its first token is past its own idle expiry at +70m while
	// its successor lives until +90m.
	rotated := func(family string) string {
		must(t, s.CreateRefreshToken(ctx, tok(family, "", now)))
		at := now.Add(30 * time.Minute)
		must(t, s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: family, Now: at, Next: tok(family+"-2", family, at)}))
		return family + "-2"
	}
	purge := func(at time.Time, limit int) int {
		t.Helper()
		total := 0
		for range 100 {
			n, err := s.PurgeExpiredRefreshTokens(ctx, at, limit)
			must(t, err)
			if n > limit {
				t.Errorf("PurgeExpiredRefreshTokens(limit %d) = %d", limit, n)
			}
			if n == 0 {
				return total
			}
			total += n
		}
		t.Fatal("PurgeExpiredRefreshTokens never ran out of work")
		return 0
	}
	live := func(what string, ids ...string) {
		t.Helper()
		for _, id := range ids {
			if _, err := s.GetRefreshToken(ctx, id); err != nil {
				t.Errorf("%s: %s: %v", what, id, err)
			}
		}
	}
	gone := func(what string, ids ...string) {
		t.Helper()
		for _, id := range ids {
			_, err := s.GetRefreshToken(ctx, id)
			wantErr(t, what+": "+id, err, store.ErrNotFound)
		}
	}

	a2, c2, e2 := rotated("a"), rotated("c"), rotated("e")
	at := now.Add(70 * time.Minute)
	if n := purge(at, 1); n != 0 {
		t.Errorf("purge at +70m deleted %d tokens of live families", n)
	}
	live("after purge at +70m", "a", a2, "c", c2, "e", e2)

	// Reuse past the token's own idle expiry is still reuse.
	err := s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: "a", Now: at, Next: tok("a-3", "a", at)})
	wantErr(t, "reuse past the idle expiry", err, store.ErrRefreshTokenReused)
	gone("family after reuse", "a", a2, "a-3")

	// The family is revoked by its id, the id of its first token.
	must(t, s.RevokeRefreshTokenFamily(ctx, "c"))
	gone("after RevokeRefreshTokenFamily", "c", c2)

	// Once the latest token has idled out the family is dead, and purged
	// whole, even one token per batch.
	if n := purge(now.Add(100*time.Minute), 1); n != 2 {
		t.Errorf("purge of a dead family deleted %d tokens, want 2", n)
	}
	gone("dead family after purge", "e", e2)
}

// testRefreshTokenRevocationUnderLoad revokes a family while goroutines
// rotate its newest token back to back, with no pause between rotations
// (faster than any client over HTTP): the revocation, by the family's id
// or by the reuse of its first token, must complete and leave no token.
func testRefreshTokenRevocationUnderLoad(t *testing.T, s store.Store) {
	ctx := t.Context()
	tok := refreshFixture(t, s)
	now := time.Now().UTC()
	for _, c := range []struct {
		name   string
		revoke func(family string) error
		want   error
	}{
		{"family", func(family string) error { return s.RevokeRefreshTokenFamily(ctx, family) }, nil},
		// Rotated at now, presented 10 s later with a 5 s leeway: reuse.
		{"reuse", func(family string) error {
			return s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: family, Now: now.Add(10 * time.Second), Leeway: 5 * time.Second,
				Next: tok(family+"-thief", family, now)})
		}, store.ErrRefreshTokenReused},
	} {
		for round := range 5 {
			family := fmt.Sprintf("load-%s%d", c.name, round)
			must(t, s.CreateRefreshToken(ctx, tok(family, "", now)))
			var (
				mu      sync.Mutex
				head    = family
				created = []string{family}
				n       int
				wg      sync.WaitGroup
				// The rotators race each other too: one that presents a
				// head another has rotated since is reuse, and ends the
				// family before the revocation under test.
				sawReuse atomic.Bool
			)
			stop := make(chan struct{})
			rotated := make(chan struct{})
			var once sync.Once
			for range 6 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						mu.Lock()
						cur := head
						n++
						next := fmt.Sprintf("%s-%d", family, n)
						created = append(created, next)
						mu.Unlock()
						err := s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: cur, Now: now, Leeway: 5 * time.Second, Next: tok(next, family, now)})
						switch {
						case err == nil:
							mu.Lock()
							head = next
							mu.Unlock()
							once.Do(func() { close(rotated) })
						case errors.Is(err, store.ErrRefreshTokenReused):
							sawReuse.Store(true)
						case errors.Is(err, store.ErrNotFound):
						default:
							t.Error(err)
							return
						}
					}
				})
			}
			<-rotated
			err := c.revoke(family)
			close(stop)
			wg.Wait()
			revokedBefore := errors.Is(err, store.ErrNotFound) && sawReuse.Load()
			if !revokedBefore && (c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("%s round %d: revocation under load: %v, want %v", c.name, round, err, c.want)
			}
			for _, id := range append(created, family+"-thief") {
				if _, err := s.GetRefreshToken(ctx, id); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("%s round %d: token %s of the revoked family is still stored (%v)", c.name, round, id, err)
				}
			}
		}
	}
}

// testRefreshTokenReplace: an exchange with Replace (the client's rotation
// setting changed) deletes every token of the presented token's rotation
// type, client, audience and user, rotating families whole, and stores
// the next token; other clients', audiences' and types' tokens stay. An
// unusable token is refused as by any exchange, changing nothing.
func testRefreshTokenReplace(t *testing.T, s store.Store) {
	ctx := t.Context()
	tok := refreshFixture(t, s)
	must(t, s.CreateClient(ctx, fullClient("c2")))
	now := time.Now().UTC()
	leeway := 10 * time.Second
	nonRotating := func(id string) *store.RefreshToken {
		rt := tok(id, "", now)
		rt.Rotating = false
		return rt
	}
	n1, n2, otherClient, otherAudience := nonRotating("n1"), nonRotating("n2"), nonRotating("n3"), nonRotating("n4")
	otherClient.ClientID, otherAudience.Audience = "c2", "urn:b"
	for _, rt := range []*store.RefreshToken{n1, n2, otherClient, otherAudience, tok("r1", "", now), tok("r3", "", now)} {
		must(t, s.CreateRefreshToken(ctx, rt))
	}
	t1 := now.Add(time.Minute)
	must(t, s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: "r1", Now: t1, Leeway: leeway, Next: tok("r2", "r1", t1)}))
	ids := func() []string {
		t.Helper()
		list, _, err := s.ListRefreshTokens(ctx, store.RefreshTokenFilter{UserID: "u1"}, store.ListOptions{})
		must(t, err)
		var out []string
		for _, rt := range list {
			out = append(out, rt.ID)
		}
		slices.Sort(out)
		return out
	}

	// Rotation turned on: n1 goes over to a rotating token of its own
	// family; the other non-rotating token of c1 and urn:a goes with it.
	must(t, s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: "n1", Now: t1, Leeway: leeway, Replace: true, Next: tok("x1", "x1", t1)}))
	if got, want := ids(), []string{"n3", "n4", "r2", "r3", "x1"}; !slices.Equal(got, want) {
		t.Errorf("after replacing n1: %v, want %v", got, want)
	}
	for _, id := range []string{"n1", "n2"} {
		_, err := s.GetRefreshToken(ctx, id)
		wantErr(t, "replaced "+id, err, store.ErrNotFound)
	}
	wantErr(t, "n1 exchanged again", s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: "n1", Now: t1, Replace: true,
		Next: tok("x2", "x2", t1)}), store.ErrNotFound)

	// Rotation turned off: the previous token of r1's family, within the
	// leeway, goes over to a non-rotating token; every rotating family of
	// c1, urn:a and u1 goes, rotated members included.
	y := nonRotating("y")
	must(t, s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: "r1", Now: t1.Add(leeway / 2), Leeway: leeway, Replace: true, Next: y}))
	if got, want := ids(), []string{"n3", "n4", "y"}; !slices.Equal(got, want) {
		t.Errorf("after replacing r1: %v, want %v", got, want)
	}
	for _, id := range []string{"r1", "r2", "r3", "x1"} {
		_, err := s.GetRefreshToken(ctx, id)
		wantErr(t, "replaced "+id, err, store.ErrNotFound)
	}

	// Refused as any exchange: expired, then reused after the leeway.
	late := now.Add(2 * time.Hour)
	wantErr(t, "idle-expired token", s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: "n3", Now: late, Replace: true,
		Next: tok("z", "z", late)}), store.ErrNotFound)
	must(t, s.CreateRefreshToken(ctx, tok("f", "", now)))
	must(t, s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: "f", Now: t1, Leeway: leeway, Next: tok("g", "f", t1)}))
	wantErr(t, "reuse after the leeway", s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: "f", Now: t1.Add(leeway + time.Second),
		Leeway: leeway, Replace: true, Next: nonRotating("w")}), store.ErrRefreshTokenReused)
	if got, want := ids(), []string{"n3", "n4", "y"}; !slices.Equal(got, want) {
		t.Errorf("after the refusals: %v, want %v", got, want)
	}
}

// createNonRotating stores a non-rotating token of refreshFixture's
// client, audience and user for each id.
func createNonRotating(t *testing.T, s store.Store, tok func(id, family string, at time.Time) *store.RefreshToken, at time.Time, ids ...string) {
	t.Helper()
	for _, id := range ids {
		rt := tok(id, "", at)
		rt.Rotating = false
		must(t, s.CreateRefreshToken(t.Context(), rt))
	}
}

// testRefreshTokenReplaceRace replaces two tokens of one client,
// audience and user at once, as two devices of a user do after rotation
// was turned on: one wins and the other finds its token gone, neither
// failing otherwise (each locks the presented token, then deletes the
// other's).
func testRefreshTokenReplaceRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	tok := refreshFixture(t, s)
	now := time.Now().UTC()
	for round := range 30 {
		a, b := fmt.Sprintf("a%d", round), fmt.Sprintf("b%d", round)
		createNonRotating(t, s, tok, now, a, b)
		wins := concurrentExchanges(t, 2, func(i int) error {
			id := []string{a, b}[i]
			return s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: id, Now: now, Replace: true, Next: tok(id+"-next", "", now)})
		})
		if wins != 1 {
			t.Fatalf("round %d: %d of two concurrent replacements of one user's tokens succeeded, want 1", round, wins)
		}
	}
}

// testRefreshTokenReplaceRevocationRace revokes a user's tokens while one
// of them is being replaced: once the revocation has reported success no
// token of the user may be left, including the one the exchange created,
// although the exchange deleted the token the revocation waited for.
func testRefreshTokenReplaceRevocationRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	tok := refreshFixture(t, s)
	now := time.Now().UTC()
	for round := range 60 {
		ids := []string{fmt.Sprintf("old%d", round), fmt.Sprintf("n%d", round)}
		createNonRotating(t, s, tok, now, ids...)
		next := fmt.Sprintf("x%d", round)
		var exErr, revErr error
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			exErr = s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: ids[1], Now: now, Replace: true, Next: tok(next, "", now)})
		})
		wg.Go(func() {
			<-start
			_, revErr = s.RevokeUserRefreshTokens(ctx, "u1")
		})
		close(start)
		wg.Wait()
		if exErr != nil && !errors.Is(exErr, store.ErrNotFound) {
			t.Fatalf("round %d: exchange: %v", round, exErr)
		}
		if revErr != nil {
			t.Fatalf("round %d: revoke: %v", round, revErr)
		}
		for _, id := range append(ids, next) {
			if _, err := s.GetRefreshToken(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("round %d: token %s survived the revocation of its user's tokens (exchange: %v): %v", round, id, exErr, err)
			}
		}
	}
}

// testRefreshTokenOwnerDeleteRace deletes a user, or a client, while its
// refresh tokens are being revoked: both must succeed and leave no token.
// On PostgreSQL a revocation locks the tokens in seq order; tokens whose
// creation times fall as seq rises, and whose rows (refreshed in reverse)
// lie in the table and its indexes in reverse, are met in reverse by any
// plan that follows an index or the table, as an ON DELETE CASCADE's
// does, and such a deletion deadlocked with the revocation (40P01), on
// about half the runs; sqlstore's TestOwnerDeleteLocksRefreshTokensInSeqOrder
// shows the order on every run.
func testRefreshTokenOwnerDeleteRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := time.Now().UTC()
	const tokens = 100
	for _, c := range []struct {
		owner string
		del   func(user, client string) error
	}{
		{"user", func(user, _ string) error { return s.DeleteUser(ctx, user) }},
		{"client", func(_, client string) error { return s.DeleteClient(ctx, client) }},
	} {
		for round := range 8 {
			user, client := fmt.Sprintf("u-%s%d", c.owner, round), fmt.Sprintf("c-%s%d", c.owner, round)
			must(t, s.CreateClient(ctx, fullClient(client)))
			_, err := s.UpsertUser(ctx, fullUser(user))
			must(t, err)
			id := func(i int) string { return fmt.Sprintf("%s-%d", user, i) }
			for i := range tokens {
				at := now.Add(-time.Duration(i) * time.Second)
				must(t, s.CreateRefreshToken(ctx, &store.RefreshToken{
					ID: id(i), SecretHash: []byte("hash"), ClientID: client, UserID: user, Audience: "urn:a",
					Scope: "offline_access", CreatedAt: at, IdleExpiresAt: ptr(at.Add(time.Hour)),
				}))
			}
			for i := tokens - 1; i >= 0; i-- {
				must(t, s.ExchangeRefreshToken(ctx, store.RefreshExchange{ID: id(i), Now: now, IdleExpiresAt: ptr(now.Add(time.Hour))}))
			}
			// Revocations started a little apart, so that one of them is
			// under way whenever the deletion reaches the tokens.
			var delErr error
			revErrs := make([]error, 4)
			var wg sync.WaitGroup
			start := make(chan struct{})
			wg.Go(func() {
				<-start
				delErr = c.del(user, client)
			})
			for i := range revErrs {
				wg.Go(func() {
					<-start
					time.Sleep(time.Duration(i) * 300 * time.Microsecond)
					_, revErrs[i] = s.RevokeUserRefreshTokens(ctx, user)
				})
			}
			close(start)
			wg.Wait()
			if err := errors.Join(revErrs...); delErr != nil || err != nil {
				t.Fatalf("%s round %d: delete the %s: %v; revoke its tokens: %v", c.owner, round, c.owner, delErr, err)
			}
			for i := range tokens {
				if _, err := s.GetRefreshToken(ctx, id(i)); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("%s round %d: token %s survived: %v", c.owner, round, id(i), err)
				}
			}
		}
	}
}
