package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Run runs the conformance suite. newStore must return a new, migrated,
// empty store that lives as long as t; it is called once per subtest, and
// subtests run in parallel.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"ClientRoundTrip", testClientRoundTrip},
		{"ClientUpdate", testClientUpdate},
		{"ClientErrors", testClientErrors},
		{"ClientList", testClientList},
		{"ConnectionRoundTrip", testConnectionRoundTrip},
		{"ConnectionErrors", testConnectionErrors},
		{"ConnectionUpdate", testConnectionUpdate},
		{"ConnectionPatch", testConnectionPatch},
		{"ConnectionPatchRace", testConnectionPatchRace},
		{"ConnectionClients", testConnectionClients},
		{"ConnectionCascade", testConnectionCascade},
		{"ConnectionList", testConnectionList},
		{"SigningKeys", testSigningKeys},
		{"SigningKeyInsertRace", testSigningKeyInsertRace},
		{"SigningKeyRotation", testSigningKeyRotation},
		{"ResourceServers", testResourceServers},
		{"ClientGrants", testClientGrants},
		{"RefreshTokenRotation", testRefreshTokenRotation},
		{"RefreshTokenWithUser", testRefreshTokenWithUser},
		{"RefreshTokenExchangeLog", testRefreshTokenExchangeLog},
		{"RefreshTokenListFilter", testRefreshTokenListFilter},
		{"RefreshTokenRevocation", testRefreshTokenRevocation},
		{"RefreshTokenReused", testRefreshTokenReused},
		{"RefreshTokenReplace", testRefreshTokenReplace},
		{"RefreshTokenReplaceRace", testRefreshTokenReplaceRace},
		{"RefreshTokenReplaceRevocationRace", testRefreshTokenReplaceRevocationRace},
		{"RefreshTokenOwnerDeleteRace", testRefreshTokenOwnerDeleteRace},
		{"OwnerDeleteRefusesAtOnce", testOwnerDeleteRefusesAtOnce},
		{"RefreshTokenRace", testRefreshTokenRace},
		{"RefreshTokenOutOfOrderClocks", testRefreshTokenOutOfOrderClocks},
		{"RefreshTokenRevocationRace", testRefreshTokenRevocationRace},
		{"RefreshTokenRevocationUnderLoad", testRefreshTokenRevocationUnderLoad},
		{"RefreshTokenPurgeKeepsFamilies", testRefreshTokenPurgeKeepsFamilies},
		{"TenantSettings", testTenantSettings},
		{"UserUpsert", testUserUpsert},
		{"UserErrors", testUserErrors},
		{"UserList", testUserList},
		{"UserListPrefix", testUserListPrefix},
		{"UserListTricky", testUserListTricky},
		{"LogEvents", testLogEvents},
		{"LogEventsConcurrent", testLogEventsConcurrent},
		{"ConnectionDeleteRevokesRefreshTokens", testConnectionDeleteRevokesRefreshTokens},
		{"DeletedConnectionUsers", testDeletedConnectionUsers},
		{"DeletedConnectionUsersTogether", testDeletedConnectionUsersTogether},
		{"LogEventIDsFollowTime", testLogEventIDsFollowTime},
		{"LogEventsPurge", testLogEventsPurge},
		{"LogEventsCheckpoint", testLogEventsCheckpoint},
		{"ClientCredentials", testClientCredentials},
		{"ClientAssertions", testClientAssertions},
		{"LogEventList", testLogEventList},
		{"LogUserNames", testLogUserNames},
		{"UserPatch", testUserPatch},
		{"UserRecordLogin", testUserRecordLogin},
		{"UserWriteRace", testUserWriteRace},
		{"UserUpstreamTenant", testUserUpstreamTenant},
		{"AttackAttempts", testAttackAttempts},
		{"AttackAttemptRace", testAttackAttemptRace},
		{"AttackTokens", testAttackTokens},
		{"AttackBucketDelete", testAttackBucketDelete},
		{"AttackTokenRace", testAttackTokenRace},
		{"AttackSettings", testAttackSettings},
		{"AttackPrune", testAttackPrune},
		{"AttackLogin", testAttackLogin},
		{"RecordLoginSettles", testRecordLoginSettles},
		{"AttackWritersTogether", testAttackWritersTogether},
		{"AttackLoginKeyOrder", testAttackLoginKeyOrder},
		{"AttackLoginCases", testAttackLoginCases},
		{"AttackLoginUsers", testAttackLoginUsers},
		{"AttackLoginUsersTakeOnce", testAttackLoginUsersTakeOnce},
		{"AttackLoginRace", testAttackLoginRace},
		{"Ping", func(t *testing.T, s store.Store) {
			if err := s.Ping(t.Context()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

// A time with sub-millisecond digits that the store must keep to the
// millisecond.
var t0 = time.Date(2024, 5, 6, 7, 8, 9, 123_456_789, time.UTC)

func ms(t time.Time) time.Time { return t.Truncate(time.Millisecond) }

func ptr[T any](v T) *T { return &v }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want %v", what, err, target)
	}
}

// equal compares two values of a store type field by field; raw JSON is
// compared by meaning, since a backend may reformat it.
func equal[T any](t *testing.T, what string, got, want *T) {
	t.Helper()
	if got == nil || want == nil {
		if got != want {
			t.Errorf("%s: got %+v, want %+v", what, got, want)
		}
		return
	}
	g, w := canonical(*got), canonical(*want)
	if !reflect.DeepEqual(g, w) {
		gv, wv := reflect.ValueOf(g), reflect.ValueOf(w)
		for i := range gv.NumField() {
			if !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
				t.Errorf("%s: %s: got %s, want %s", what, gv.Type().Field(i).Name, show(gv.Field(i)), show(wv.Field(i)))
			}
		}
	}
}

func show(v reflect.Value) string {
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		return fmt.Sprintf("&%#v", v.Elem().Interface())
	}
	if raw, ok := v.Interface().(json.RawMessage); ok && raw != nil {
		return fmt.Sprintf("json %s", raw)
	}
	return fmt.Sprintf("%#v", v.Interface())
}

func canonical[T any](v T) T {
	rv := reflect.ValueOf(&v).Elem()
	for i := range rv.NumField() {
		f := rv.Field(i)
		if f.Type() != reflect.TypeFor[json.RawMessage]() || f.Len() == 0 {
			continue
		}
		var x any
		if json.Unmarshal(f.Bytes(), &x) == nil {
			b, _ := json.Marshal(x)
			f.SetBytes(b)
		}
	}
	return v
}

func fullClient(id string) *store.Client {
	return &store.Client{
		ClientID:                       id,
		Name:                           "App " + id,
		Description:                    "déscription <&>",
		AppType:                        "non_interactive",
		SecretEnc:                      []byte{0, 1, 2, 0xff},
		Callbacks:                      []string{"https://a.example/cb", "https://b.example/cb"},
		AllowedLogoutURLs:              []string{},
		WebOrigins:                     nil,
		GrantTypes:                     []string{"client_credentials"},
		TokenEndpointAuthMethod:        "client_secret_post",
		IsFirstParty:                   true,
		OIDCConformant:                 true,
		IsTokenEndpointIPHeaderTrusted: true,
		JWTConfiguration:               json.RawMessage(`{"alg": "RS256", "lifetime_in_seconds": 36000}`),
		RefreshToken:                   json.RawMessage(`{"rotation_type":"non-rotating","nested":{"a":[1,2,null]}}`),
		ClientMetadata:                 map[string]string{"k": "v", "empty": ""},
		Extra:                          json.RawMessage(`{"logo_uri":"https://x.example/<logo>.png"}`),
		ManagementScopes:               []string{"read:clients", "update:tenant_settings"},
		CreatedAt:                      t0,
		UpdatedAt:                      t0.Add(time.Second),
	}
}

func testClientRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		c    *store.Client
	}{
		{"full", fullClient("full")},
		{"zero", &store.Client{ClientID: "zero"}},
		{"empty collections", &store.Client{
			ClientID: "empty", Callbacks: []string{}, ClientMetadata: map[string]string{},
			ManagementScopes: []string{}, JWTConfiguration: json.RawMessage(`{}`), Extra: json.RawMessage(`null`),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := *tc.c
			before := time.Now().Add(-time.Millisecond)
			must(t, s.CreateClient(ctx, tc.c))
			if tc.c.CreatedAt.IsZero() || tc.c.UpdatedAt.IsZero() {
				t.Fatalf("CreateClient left zero timestamps: %v %v", tc.c.CreatedAt, tc.c.UpdatedAt)
			}
			if want.CreatedAt.IsZero() {
				if tc.c.CreatedAt.Before(before) || !tc.c.UpdatedAt.Equal(tc.c.CreatedAt) {
					t.Errorf("defaulted timestamps: created %v, updated %v", tc.c.CreatedAt, tc.c.UpdatedAt)
				}
				want.CreatedAt, want.UpdatedAt = tc.c.CreatedAt, tc.c.UpdatedAt
			}
			want.CreatedAt, want.UpdatedAt = ms(want.CreatedAt), ms(want.UpdatedAt)
			equal(t, "CreateClient wrote back", tc.c, &want)
			got, err := s.GetClient(ctx, tc.c.ClientID)
			must(t, err)
			equal(t, "GetClient", got, &want)
		})
	}
}

func testClientUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := fullClient("app")
	must(t, s.CreateClient(ctx, c))
	created := c.CreatedAt

	u := &store.Client{
		ClientID:         "app",
		Name:             "Renamed",
		SecretEnc:        []byte("new"),
		GrantTypes:       []string{"password"},
		ClientMetadata:   map[string]string{"x": "y"},
		RefreshToken:     json.RawMessage(`{"rotation_type":"rotating"}`),
		CreatedAt:        t0.Add(time.Hour), // ignored: creation time is immutable
		UpdatedAt:        c.UpdatedAt,       // the stored one: u is written over what was read
		ManagementScopes: nil,
	}
	before := time.Now().Add(-time.Millisecond)
	must(t, s.UpdateClient(ctx, u))
	if !u.CreatedAt.Equal(created) {
		t.Errorf("UpdateClient: CreatedAt = %v, want the stored %v", u.CreatedAt, created)
	}
	if u.UpdatedAt.Before(before) {
		t.Errorf("UpdateClient: UpdatedAt = %v, want now", u.UpdatedAt)
	}
	got, err := s.GetClient(ctx, "app")
	must(t, err)
	equal(t, "GetClient after update", got, u)

	// A nil secret keeps the stored one, which UpdateClient reads back.
	u.Name, u.SecretEnc = "Renamed again", nil
	must(t, s.UpdateClient(ctx, u))
	if string(u.SecretEnc) != "new" {
		t.Errorf("UpdateClient without a secret: SecretEnc = %q, want the stored %q", u.SecretEnc, "new")
	}
	got, err = s.GetClient(ctx, "app")
	must(t, err)
	equal(t, "GetClient after an update without a secret", got, u)

	// SetClientSecret changes the secret and nothing else.
	before = time.Now().Add(-time.Millisecond)
	must(t, s.SetClientSecret(ctx, "app", []byte("rotated")))
	got, err = s.GetClient(ctx, "app")
	must(t, err)
	if got.UpdatedAt.Before(before) {
		t.Errorf("SetClientSecret: UpdatedAt = %v, want now", got.UpdatedAt)
	}
	if !got.UpdatedAt.After(u.UpdatedAt) {
		t.Errorf("SetClientSecret: UpdatedAt = %v, not after the previous %v", got.UpdatedAt, u.UpdatedAt)
	}
	// u was read before SetClientSecret: writing it would undo the
	// rotation.
	stale := *u
	stale.Name, stale.SecretEnc = "Stale", []byte("stale")
	wantErr(t, "UpdateClient of a client written since", s.UpdateClient(ctx, &stale), store.ErrConflict)
	u.SecretEnc, u.UpdatedAt = []byte("rotated"), got.UpdatedAt
	got, err = s.GetClient(ctx, "app")
	must(t, err)
	equal(t, "GetClient after SetClientSecret and a refused update", got, u)

	// Every write moves UpdatedAt forward, several in one millisecond too,
	// so that each tells apart the client it read.
	for i := range 5 {
		prev := u.UpdatedAt
		u.Name = fmt.Sprint("quick ", i)
		must(t, s.UpdateClient(ctx, u))
		if !u.UpdatedAt.After(prev) {
			t.Fatalf("UpdateClient %d: UpdatedAt = %v, not after %v", i, u.UpdatedAt, prev)
		}
	}
}

func testClientErrors(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateClient(ctx, &store.Client{ClientID: "a"}))
	wantErr(t, "CreateClient duplicate", s.CreateClient(ctx, &store.Client{ClientID: "a"}), store.ErrConflict)
	_, err := s.GetClient(ctx, "missing")
	wantErr(t, "GetClient missing", err, store.ErrNotFound)
	wantErr(t, "UpdateClient missing", s.UpdateClient(ctx, &store.Client{ClientID: "missing"}), store.ErrNotFound)
	wantErr(t, "SetClientSecret missing", s.SetClientSecret(ctx, "missing", []byte("x")), store.ErrNotFound)
	wantErr(t, "DeleteClient missing", s.DeleteClient(ctx, "missing"), store.ErrNotFound)
	must(t, s.DeleteClient(ctx, "a"))
	_, err = s.GetClient(ctx, "a")
	wantErr(t, "GetClient deleted", err, store.ErrNotFound)
	wantErr(t, "DeleteClient twice", s.DeleteClient(ctx, "a"), store.ErrNotFound)
	must(t, s.CreateClient(ctx, &store.Client{ClientID: "a"}))
}

func testClientList(t *testing.T, s store.Store) {
	ctx := t.Context()
	cs, total, err := s.ListClients(ctx, store.ListOptions{})
	must(t, err)
	if len(cs) != 0 || total != 0 {
		t.Fatalf("ListClients on empty store: %d clients, total %d", len(cs), total)
	}
	var ids []string
	for i := range 7 {
		id := fmt.Sprintf("c%d", 6-i) // creation order differs from id order
		// Equal creation times: the order must still be the creation order.
		must(t, s.CreateClient(ctx, &store.Client{ClientID: id, CreatedAt: t0.Add(time.Duration(i/2) * time.Second)}))
		ids = append(ids, id)
	}
	pageIDs := func(opts store.ListOptions) []string {
		t.Helper()
		cs, total, err := s.ListClients(ctx, opts)
		must(t, err)
		if total != 7 {
			t.Errorf("ListClients(%+v): total %d, want 7", opts, total)
		}
		out := []string{}
		for _, c := range cs {
			out = append(out, c.ClientID)
		}
		return out
	}
	for _, tc := range []struct {
		opts store.ListOptions
		want []string
	}{
		{store.ListOptions{}, ids},
		{store.ListOptions{Page: 0, PerPage: 3}, ids[0:3]},
		{store.ListOptions{Page: 1, PerPage: 3}, ids[3:6]},
		{store.ListOptions{Page: 2, PerPage: 3}, ids[6:]},
		{store.ListOptions{Page: 3, PerPage: 3}, []string{}},
		{store.ListOptions{Page: 1}, []string{}},
		// Offset starts anywhere and reads PerPage records only.
		{store.ListOptions{Offset: 3, PerPage: 2}, ids[3:5]},
		{store.ListOptions{Offset: 5, PerPage: 3}, ids[5:]},
		{store.ListOptions{Offset: 1, Page: 2, PerPage: 2}, ids[1:3]},
		{store.ListOptions{Offset: 999999999, PerPage: 2}, []string{}},
	} {
		if got := pageIDs(tc.opts); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ListClients(%+v) = %v, want %v", tc.opts, got, tc.want)
		}
	}
	got, _, err := s.ListClients(ctx, store.ListOptions{PerPage: 1})
	must(t, err)
	want, err := s.GetClient(ctx, ids[0])
	must(t, err)
	equal(t, "listed client", got[0], want)
}

func fullConnection(id, name string, clients ...string) *store.Connection {
	return &store.Connection{
		ID:                 id,
		Name:               name,
		Strategy:           "waad",
		DisplayName:        "Contoso " + name,
		Options:            json.RawMessage(`{"tenant_domain": "contoso.example", "ext_groups": true, "domain_aliases": ["a.example"]}`),
		SecretEnc:          []byte("sealed"),
		IsDomainConnection: true,
		ShowAsButton:       true,
		Realms:             []string{name},
		Metadata:           map[string]string{"team": "idp"},
		EnabledClients:     clients,
		CreatedAt:          t0,
		UpdatedAt:          t0,
	}
}

func testConnectionRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, id := range []string{"app-b", "app-a"} {
		must(t, s.CreateClient(ctx, &store.Client{ClientID: id}))
	}
	for _, tc := range []struct {
		name        string
		c           *store.Connection
		wantClients []string
	}{
		{"full", fullConnection("con_1", "contoso", "app-b", "app-a", "app-b"), []string{"app-a", "app-b"}},
		{"zero", &store.Connection{ID: "con_2", Name: "bare", Strategy: "auth0"}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := *tc.c
			must(t, s.CreateConnection(ctx, tc.c))
			if want.CreatedAt.IsZero() {
				want.CreatedAt, want.UpdatedAt = tc.c.CreatedAt, tc.c.UpdatedAt
			}
			want.CreatedAt, want.UpdatedAt = ms(want.CreatedAt), ms(want.UpdatedAt)
			want.EnabledClients = tc.wantClients
			got, err := s.GetConnection(ctx, tc.c.ID)
			must(t, err)
			equal(t, "GetConnection", got, &want)
			got, err = s.GetConnectionByName(ctx, tc.c.Name)
			must(t, err)
			equal(t, "GetConnectionByName", got, &want)
		})
	}
}

func testConnectionErrors(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateClient(ctx, &store.Client{ClientID: "app"}))
	must(t, s.CreateConnection(ctx, fullConnection("con_1", "one", "app")))
	wantErr(t, "CreateConnection same name", s.CreateConnection(ctx, fullConnection("con_2", "one")), store.ErrConflict)
	wantErr(t, "CreateConnection same id", s.CreateConnection(ctx, fullConnection("con_1", "two")), store.ErrConflict)
	wantErr(t, "CreateConnection unknown client",
		s.CreateConnection(ctx, fullConnection("con_3", "three", "app", "ghost")), store.ErrNotFound)
	_, err := s.GetConnection(ctx, "con_3")
	wantErr(t, "connection whose creation failed", err, store.ErrNotFound)
	_, err = s.GetConnectionByName(ctx, "three")
	wantErr(t, "GetConnectionByName missing", err, store.ErrNotFound)
	wantErr(t, "DeleteConnection missing", s.DeleteConnection(ctx, "con_9"), store.ErrNotFound)
	wantErr(t, "SetConnectionClients missing connection",
		s.SetConnectionClients(ctx, "con_9", map[string]bool{"app": true}), store.ErrNotFound)
	must(t, s.DeleteConnection(ctx, "con_1"))
	_, err = s.GetConnection(ctx, "con_1")
	wantErr(t, "GetConnection deleted", err, store.ErrNotFound)
}

func testConnectionUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, id := range []string{"a", "b", "c"} {
		must(t, s.CreateClient(ctx, &store.Client{ClientID: id}))
	}
	orig := fullConnection("con_1", "one", "a", "b")
	must(t, s.CreateConnection(ctx, orig))

	before, err := s.GetConnection(ctx, "con_1")
	must(t, err)
	options := json.RawMessage(`{"tenant_domain":"fabrikam.example"}`)
	u, err := s.PatchConnection(ctx, "con_1", func(c *store.Connection, _ store.ClientLookup) error {
		c.Name, c.Strategy = "renamed", "oidc" // immutable
		c.DisplayName, c.Options, c.Realms, c.EnabledClients = "New", options, []string{}, nil
		return nil
	})
	must(t, err)
	// What the patch leaves is kept: secret, metadata, flags.
	want := *before
	want.DisplayName, want.Options, want.Realms, want.UpdatedAt = "New", options, []string{}, u.UpdatedAt
	if !u.CreatedAt.Equal(ms(t0)) {
		t.Errorf("PatchConnection: CreatedAt = %v, want %v", u.CreatedAt, ms(t0))
	}
	got, err := s.GetConnection(ctx, "con_1")
	must(t, err)
	equal(t, "nil EnabledClients keeps enablements", got, &want)

	for _, tc := range []struct {
		set, want []string
	}{
		{[]string{"c", "a"}, []string{"a", "c"}},
		{[]string{}, []string{}},
		{[]string{"b"}, []string{"b"}},
	} {
		_, err := s.PatchConnection(ctx, "con_1", func(c *store.Connection, _ store.ClientLookup) error {
			c.EnabledClients = tc.set
			return nil
		})
		must(t, err)
		got, err := s.GetConnection(ctx, "con_1")
		must(t, err)
		if !reflect.DeepEqual(got.EnabledClients, tc.want) {
			t.Errorf("PatchConnection(EnabledClients %v): stored %v, want %v", tc.set, got.EnabledClients, tc.want)
		}
	}
	if _, err := s.GetConnectionByName(ctx, "renamed"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PatchConnection renamed the connection: %v", err)
	}
}

func testConnectionClients(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, id := range []string{"a", "b", "c"} {
		must(t, s.CreateClient(ctx, &store.Client{ClientID: id}))
	}
	must(t, s.CreateConnection(ctx, fullConnection("con_1", "one", "a")))
	must(t, s.CreateConnection(ctx, fullConnection("con_2", "two")))

	enabled := func(conn, client string) bool {
		t.Helper()
		ok, err := s.ConnectionEnabledForClient(ctx, conn, client)
		must(t, err)
		return ok
	}
	for _, tc := range []struct {
		name   string
		status map[string]bool
		err    error
		want   map[string]bool
	}{
		{"enable", map[string]bool{"b": true, "c": true}, nil, map[string]bool{"a": true, "b": true, "c": true}},
		{"enable again", map[string]bool{"b": true}, nil, map[string]bool{"a": true, "b": true, "c": true}},
		{"mixed", map[string]bool{"a": false, "c": true, "b": false}, nil, map[string]bool{"c": true}},
		{"disable not enabled", map[string]bool{"a": false}, nil, map[string]bool{"c": true}},
		{"unknown client", map[string]bool{"a": true, "ghost": true}, store.ErrNotFound, map[string]bool{"c": true}},
		{"disable unknown client", map[string]bool{"ghost": false}, nil, map[string]bool{"c": true}},
		{"empty", map[string]bool{}, nil, map[string]bool{"c": true}},
	} {
		err := s.SetConnectionClients(ctx, "con_1", tc.status)
		if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
			t.Errorf("%s: SetConnectionClients = %v, want %v", tc.name, err, tc.err)
		}
		for _, id := range []string{"a", "b", "c", "ghost"} {
			if got := enabled("con_1", id); got != tc.want[id] {
				t.Errorf("%s: enabled(con_1, %s) = %v, want %v", tc.name, id, got, tc.want[id])
			}
			if enabled("con_2", id) {
				t.Errorf("%s: con_2 enabled for %s", tc.name, id)
			}
		}
	}
	if enabled("con_missing", "c") {
		t.Error("unknown connection reported enabled")
	}
}

func testConnectionCascade(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, id := range []string{"a", "b"} {
		must(t, s.CreateClient(ctx, &store.Client{ClientID: id}))
	}
	must(t, s.CreateConnection(ctx, fullConnection("con_1", "one", "a", "b")))
	must(t, s.CreateConnection(ctx, fullConnection("con_2", "two", "a")))

	must(t, s.DeleteClient(ctx, "a"))
	c, err := s.GetConnection(ctx, "con_1")
	must(t, err)
	if !reflect.DeepEqual(c.EnabledClients, []string{"b"}) {
		t.Errorf("after deleting client a: con_1 enabled for %v, want [b]", c.EnabledClients)
	}
	must(t, s.CreateClient(ctx, &store.Client{ClientID: "a"}))
	if ok, _ := s.ConnectionEnabledForClient(ctx, "con_2", "a"); ok {
		t.Error("a re-created client inherited the enablement of the deleted one")
	}

	must(t, s.DeleteConnection(ctx, "con_1"))
	must(t, s.CreateConnection(ctx, &store.Connection{ID: "con_1", Name: "one", Strategy: "waad"}))
	c, err = s.GetConnection(ctx, "con_1")
	must(t, err)
	if len(c.EnabledClients) != 0 {
		t.Errorf("a re-created connection inherited enablements %v", c.EnabledClients)
	}
	must(t, s.DeleteClient(ctx, "b")) // its enablements went with con_1
}

func testConnectionList(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateClient(ctx, &store.Client{ClientID: "app"}))
	strategies := []string{"waad", "auth0", "waad", "oidc", "waad"}
	for i, st := range strategies {
		c := &store.Connection{ID: fmt.Sprintf("con_%d", i), Name: fmt.Sprintf("n%d", i), Strategy: st}
		if i == 0 {
			c.EnabledClients = []string{"app"}
		}
		must(t, s.CreateConnection(ctx, c))
	}
	for _, tc := range []struct {
		name string
		f    store.ConnectionFilter
		opts store.ListOptions
		want []string
		tot  int
	}{
		{"all", store.ConnectionFilter{}, store.ListOptions{}, []string{"con_0", "con_1", "con_2", "con_3", "con_4"}, 5},
		{"one strategy", store.ConnectionFilter{Strategies: []string{"waad"}}, store.ListOptions{}, []string{"con_0", "con_2", "con_4"}, 3},
		{"two strategies", store.ConnectionFilter{Strategies: []string{"oidc", "auth0"}}, store.ListOptions{}, []string{"con_1", "con_3"}, 2},
		{"name", store.ConnectionFilter{Name: "n2"}, store.ListOptions{}, []string{"con_2"}, 1},
		{"name and other strategy", store.ConnectionFilter{Name: "n2", Strategies: []string{"oidc"}}, store.ListOptions{}, []string{}, 0},
		{"paged", store.ConnectionFilter{Strategies: []string{"waad"}}, store.ListOptions{Page: 1, PerPage: 2}, []string{"con_4"}, 3},
		{"from an offset", store.ConnectionFilter{Strategies: []string{"waad"}}, store.ListOptions{Offset: 1, PerPage: 1}, []string{"con_2"}, 3},
		{"none", store.ConnectionFilter{Strategies: []string{"saml"}}, store.ListOptions{}, []string{}, 0},
	} {
		cs, total, err := s.ListConnections(ctx, tc.f, tc.opts)
		must(t, err)
		got := []string{}
		for _, c := range cs {
			got = append(got, c.ID)
			want := []string{}
			if c.ID == "con_0" {
				want = []string{"app"}
			}
			if !reflect.DeepEqual(c.EnabledClients, want) {
				t.Errorf("%s: %s enabled for %v, want %v", tc.name, c.ID, c.EnabledClients, want)
			}
		}
		if !reflect.DeepEqual(got, tc.want) || total != tc.tot {
			t.Errorf("%s: got %v total %d, want %v total %d", tc.name, got, total, tc.want, tc.tot)
		}
	}
}

func testSigningKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	keys, err := s.ListSigningKeys(ctx)
	must(t, err)
	if len(keys) != 0 {
		t.Fatalf("ListSigningKeys on empty store: %d keys", len(keys))
	}
	insert := func(k *store.SigningKey, want bool) {
		t.Helper()
		ok, err := s.InsertSigningKeyIfNone(ctx, k)
		must(t, err)
		if ok != want {
			t.Errorf("InsertSigningKeyIfNone(%s, %s) = %v, want %v", k.KID, k.State, ok, want)
		}
	}
	cur := &store.SigningKey{
		KID: "k1", PrivateEnc: []byte("sealed-1"), CertDER: []byte{0x30, 0x82, 0},
		State: store.KeyCurrent, CreatedAt: t0, CurrentSince: ptr(t0.Add(time.Minute)),
	}
	insert(cur, true)
	insert(&store.SigningKey{KID: "k2", PrivateEnc: []byte("x"), CertDER: []byte("x"), State: store.KeyCurrent, CreatedAt: t0.Add(time.Hour)}, false)
	next := &store.SigningKey{KID: "k3", PrivateEnc: []byte("sealed-3"), CertDER: []byte("der-3"), State: store.KeyNext, CreatedAt: t0.Add(time.Hour)}
	insert(next, true)
	insert(&store.SigningKey{KID: "k4", PrivateEnc: []byte("x"), CertDER: []byte("x"), State: store.KeyNext}, false)

	// Rotate: current becomes previous, next becomes current; a new next
	// may then be inserted.
	cur.State, cur.CurrentUntil = store.KeyPrevious, ptr(t0.Add(2*time.Hour))
	must(t, s.UpdateSigningKey(ctx, cur))
	next.State, next.CurrentSince = store.KeyCurrent, ptr(t0.Add(2*time.Hour))
	must(t, s.UpdateSigningKey(ctx, next))
	next2 := &store.SigningKey{KID: "k5", PrivateEnc: []byte("sealed-5"), CertDER: []byte("der-5"), State: store.KeyNext, CreatedAt: t0.Add(3 * time.Hour)}
	insert(next2, true)
	cur.State, cur.RevokedAt = store.KeyRevoked, ptr(t0.Add(4*time.Hour))
	must(t, s.UpdateSigningKey(ctx, cur))
	wantErr(t, "UpdateSigningKey missing", s.UpdateSigningKey(ctx, &store.SigningKey{KID: "nope", State: store.KeyRevoked}), store.ErrNotFound)

	keys, err = s.ListSigningKeys(ctx)
	must(t, err)
	want := []*store.SigningKey{
		{KID: "k5", PrivateEnc: []byte("sealed-5"), CertDER: []byte("der-5"), State: store.KeyNext, CreatedAt: ms(t0.Add(3 * time.Hour))},
		{KID: "k3", PrivateEnc: []byte("sealed-3"), CertDER: []byte("der-3"), State: store.KeyCurrent, CreatedAt: ms(t0.Add(time.Hour)), CurrentSince: ptr(ms(t0.Add(2 * time.Hour)))},
		{KID: "k1", PrivateEnc: []byte("sealed-1"), CertDER: []byte{0x30, 0x82, 0}, State: store.KeyRevoked, CreatedAt: ms(t0),
			CurrentSince: ptr(ms(t0.Add(time.Minute))), CurrentUntil: ptr(ms(t0.Add(2 * time.Hour))), RevokedAt: ptr(ms(t0.Add(4 * time.Hour)))},
	}
	if len(keys) != len(want) {
		t.Fatalf("ListSigningKeys: %d keys, want %d", len(keys), len(want))
	}
	for i := range want {
		equal(t, "ListSigningKeys["+want[i].KID+"]", keys[i], want[i])
	}
	wantErr(t, "InsertSigningKeyIfNone duplicate kid", func() error {
		_, err := s.InsertSigningKeyIfNone(ctx, &store.SigningKey{KID: "k1", PrivateEnc: []byte("x"), CertDER: []byte("x"), State: store.KeyPrevious})
		return err
	}(), store.ErrConflict)
}

func testSigningKeyInsertRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Several rounds widen the window a missing lock would leave open;
	// revoking the winner makes room for the next round.
	const rounds, n = 5, 16
	for r := range rounds {
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			inserted []*store.SigningKey
			errs     []error
		)
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				k := &store.SigningKey{KID: fmt.Sprintf("race-%d-%d", r, i), PrivateEnc: []byte("p"), CertDER: []byte("c"), State: store.KeyCurrent}
				<-start
				ok, err := s.InsertSigningKeyIfNone(ctx, k)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				}
				if ok {
					inserted = append(inserted, k)
				}
			})
		}
		close(start)
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("round %d: InsertSigningKeyIfNone errors: %v", r, errors.Join(errs...))
		}
		if len(inserted) != 1 {
			t.Fatalf("round %d: %d racing inserts succeeded, want exactly 1", r, len(inserted))
		}
		keys, err := s.ListSigningKeys(ctx)
		must(t, err)
		if len(keys) != r+1 || keys[0].KID != inserted[0].KID {
			t.Fatalf("round %d: %d keys stored, newest %s; want %d, newest %s", r, len(keys), keys[0].KID, r+1, inserted[0].KID)
		}
		inserted[0].State, inserted[0].RevokedAt = store.KeyRevoked, ptr(time.Now())
		must(t, s.UpdateSigningKey(ctx, inserted[0]))
	}
}

func testTenantSettings(t *testing.T, s store.Store) {
	ctx := t.Context()
	ts, err := s.GetTenantSettings(ctx)
	must(t, err)
	equal(t, "empty settings", ts, &store.TenantSettings{Doc: json.RawMessage(`{}`)})

	// A first write over settings read as none stored, then over the ones
	// read, in the same millisecond too: each moves UpdatedAt forward.
	for _, doc := range []string{
		`{"friendly_name":"Acme","flags":{"x":true},"unknown_field":[1,"two",null]}`,
		`{"friendly_name":"Acme 2"}`,
		`{"friendly_name":"Acme 3"}`,
	} {
		put := &store.TenantSettings{Doc: json.RawMessage(doc), UpdatedAt: ts.UpdatedAt}
		before := time.Now().Add(-time.Millisecond)
		must(t, s.PutTenantSettings(ctx, put))
		if put.UpdatedAt.Before(before) || !put.UpdatedAt.After(ts.UpdatedAt) {
			t.Errorf("PutTenantSettings: UpdatedAt = %v, want now and after %v", put.UpdatedAt, ts.UpdatedAt)
		}
		got, err := s.GetTenantSettings(ctx)
		must(t, err)
		equal(t, "GetTenantSettings", got, put)
		ts = got
	}
	// Writes over settings read before the last write would undo it: the
	// first write's read (none stored) and a later one's.
	for _, read := range []time.Time{{}, ts.UpdatedAt.Add(-time.Millisecond)} {
		stale := &store.TenantSettings{Doc: json.RawMessage(`{"friendly_name":"Stale"}`), UpdatedAt: read}
		wantErr(t, "PutTenantSettings over settings written since", s.PutTenantSettings(ctx, stale), store.ErrConflict)
	}
	got, err := s.GetTenantSettings(ctx)
	must(t, err)
	equal(t, "GetTenantSettings after refused writes", got, ts)
	if err := s.PutTenantSettings(ctx, &store.TenantSettings{Doc: json.RawMessage(`{not json`)}); err == nil {
		t.Error("PutTenantSettings accepted invalid JSON")
	}
}

func fullUser(id string) *store.User {
	return &store.User{
		UserID:         id,
		Connection:     "contoso",
		Email:          "Jane.Doe@Contoso.example",
		Profile:        json.RawMessage(`{"upn": "jane@contoso.example", "identities": [{"provider": "waad", "user_id": "x"}]}`),
		RootAttributes: json.RawMessage(`{"name": "Jane"}`),
		AppMetadata:    json.RawMessage(`{"plan": "gold"}`),
		UserMetadata:   json.RawMessage(`{"theme": "dark"}`),
		IdPTokensEnc:   []byte("sealed tokens"),
		Blocked:        true,
		LoginsCount:    3,
		LastLogin:      ptr(t0.Add(time.Minute)),
		LastIP:         "192.0.2.1",
		CreatedAt:      t0,
		UpdatedAt:      t0,
	}
}

func testUserUpsert(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := fullUser("waad|1")
	created, err := s.UpsertUser(ctx, u)
	must(t, err)
	if !created {
		t.Error("UpsertUser of a new user reported an update")
	}
	want := fullUser("waad|1")
	want.CreatedAt, want.UpdatedAt, want.LastLogin = ms(t0), ms(t0), ptr(ms(t0.Add(time.Minute)))
	got, err := s.GetUser(ctx, "waad|1")
	must(t, err)
	equal(t, "GetUser after create", got, want)

	u2 := &store.User{UserID: "waad|1", Connection: "contoso", Email: "jane@contoso.example", LoginsCount: 4, CreatedAt: t0.Add(time.Hour)}
	before := time.Now().Add(-time.Millisecond)
	created, err = s.UpsertUser(ctx, u2)
	must(t, err)
	if created {
		t.Error("UpsertUser of an existing user reported a creation")
	}
	if !u2.CreatedAt.Equal(ms(t0)) || u2.UpdatedAt.Before(before) {
		t.Errorf("UpsertUser update: CreatedAt %v (want %v), UpdatedAt %v (want now)", u2.CreatedAt, ms(t0), u2.UpdatedAt)
	}
	got, err = s.GetUser(ctx, "waad|1")
	must(t, err)
	equal(t, "GetUser after upsert", got, u2)

	// Concurrent first logins of one user: one creation, no error.
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		creates int
		errs    []error
	)
	for range 8 {
		wg.Go(func() {
			c, err := s.UpsertUser(ctx, &store.User{UserID: "waad|race", Connection: "contoso", Email: "r@contoso.example"})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if c {
				creates++
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 || creates != 1 {
		t.Errorf("concurrent UpsertUser: %d creations, errors %v; want 1 creation", creates, errs)
	}
}

func testUserErrors(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.GetUser(ctx, "missing")
	wantErr(t, "GetUser missing", err, store.ErrNotFound)
	_, err = s.PatchUser(ctx, "missing", func(*store.User) error {
		t.Error("PatchUser called patch for a missing user")
		return nil
	})
	wantErr(t, "PatchUser missing", err, store.ErrNotFound)
	wantErr(t, "DeleteUser missing", s.DeleteUser(ctx, "missing"), store.ErrNotFound)
	_, err = s.UpsertUser(ctx, fullUser("u"))
	must(t, err)
	must(t, s.DeleteUser(ctx, "u"))
	_, err = s.GetUser(ctx, "u")
	wantErr(t, "GetUser deleted", err, store.ErrNotFound)
	bad := fullUser("bad")
	bad.Profile = json.RawMessage(`{"unterminated"`)
	if _, err := s.UpsertUser(ctx, bad); err == nil {
		t.Error("UpsertUser accepted an invalid profile")
	}
	if err := s.RecordLogin(ctx, bad, true, nil, nil); err == nil {
		t.Error("RecordLogin accepted an invalid profile")
	}
	if _, err := s.GetUser(ctx, "bad"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetUser after refused writes: %v, want ErrNotFound", err)
	}
}

func testUserList(t *testing.T, s store.Store) {
	ctx := t.Context()
	users := []struct{ id, conn, email string }{
		{"u0", "contoso", "Alice@Example.com"},
		{"u1", "fabrikam", "alice@example.com"},
		{"u2", "contoso", "bob@example.com"},
		{"u3", "contoso", "ÉMILE@example.com"},
		{"u4", "contoso", ""},
	}
	for _, u := range users {
		_, err := s.UpsertUser(ctx, &store.User{UserID: u.id, Connection: u.conn, Email: u.email})
		must(t, err)
	}
	for _, tc := range []struct {
		name string
		f    store.UserFilter
		opts store.ListOptions
		want []string
		tot  int
	}{
		{"all", store.UserFilter{}, store.ListOptions{}, []string{"u0", "u1", "u2", "u3", "u4"}, 5},
		{"email any case", store.UserFilter{Email: "ALICE@example.COM"}, store.ListOptions{}, []string{"u0", "u1"}, 2},
		{"email non-ASCII case", store.UserFilter{Email: "émile@EXAMPLE.com"}, store.ListOptions{}, []string{"u3"}, 1},
		{"email is not a prefix match", store.UserFilter{Email: "alice"}, store.ListOptions{}, []string{}, 0},
		{"connection", store.UserFilter{Connection: "contoso"}, store.ListOptions{}, []string{"u0", "u2", "u3", "u4"}, 4},
		{"email and connection", store.UserFilter{Email: "alice@example.com", Connection: "fabrikam"}, store.ListOptions{}, []string{"u1"}, 1},
		{"paged", store.UserFilter{Connection: "contoso"}, store.ListOptions{Page: 1, PerPage: 3}, []string{"u4"}, 4},
	} {
		us, total, err := s.ListUsers(ctx, tc.f, tc.opts)
		must(t, err)
		got := []string{}
		for _, u := range us {
			got = append(got, u.UserID)
		}
		if !reflect.DeepEqual(got, tc.want) || total != tc.tot {
			t.Errorf("%s: got %v total %d, want %v total %d", tc.name, got, total, tc.want, tc.tot)
		}
	}
	us, _, err := s.ListUsers(ctx, store.UserFilter{Email: "alice@example.com", Connection: "contoso"}, store.ListOptions{})
	must(t, err)
	if len(us) != 1 || us[0].Email != "Alice@Example.com" {
		t.Errorf("listed user lost the case of its email: %+v", us)
	}
}

func testLogEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	e := &store.LogEvent{ID: "log-1", Type: "s", Date: t0, UserID: "waad|1", Doc: json.RawMessage(`{"type": "s", "details": {"x": [1]}}`)}
	must(t, s.AppendLogEvent(ctx, e))
	wantErr(t, "AppendLogEvent duplicate id", s.AppendLogEvent(ctx, &store.LogEvent{ID: "log-1", Type: "s"}), store.ErrConflict)

	gen := &store.LogEvent{Type: "seccft"}
	before := time.Now().Add(-time.Millisecond)
	must(t, s.AppendLogEvent(ctx, gen))
	if gen.ID == "" || gen.Date.Before(before) {
		t.Errorf("AppendLogEvent defaults: ID %q, Date %v", gen.ID, gen.Date)
	}
	es, total, err := s.ListLogEvents(ctx, store.LogFilter{}, store.ListOptions{})
	must(t, err)
	if total != 2 || len(es) != 2 {
		t.Fatalf("ListLogEvents: %d events, total %d; want 2", len(es), total)
	}
	equal(t, "newest event", es[0], gen)
	equal(t, "oldest event", es[1], &store.LogEvent{ID: "log-1", Type: "s", Date: ms(t0), UserID: "waad|1", Doc: e.Doc})
}

// testLogEventIDsFollowTime: IDs the store gives are ordered by the
// events' dates, so new events append to log_id's unique index instead
// of landing on a random page of it (sqlstore's TestLogIDsInIndexOrder
// checks the databases' own order). Events of one millisecond differ.
func testLogEventIDsFollowTime(t *testing.T, s store.Store) {
	ctx := t.Context()
	var ids []string
	for i := range 40 {
		// Steps of 1 ms to 17 years: every 5-bit digit of the time.
		e := &store.LogEvent{Type: "s", Date: t0.Add(time.Duration(1<<i) * time.Millisecond)}
		must(t, s.AppendLogEvent(ctx, e))
		if len(e.ID) != 26 {
			t.Fatalf("generated ID %q: %d characters, want 26", e.ID, len(e.ID))
		}
		ids = append(ids, e.ID)
	}
	same := map[string]bool{}
	for range 100 {
		e := &store.LogEvent{Type: "s", Date: t0}
		must(t, s.AppendLogEvent(ctx, e))
		same[e.ID] = true
	}
	if len(same) != 100 {
		t.Errorf("100 events of one millisecond got %d distinct IDs", len(same))
	}
	if !slices.IsSorted(ids) {
		t.Errorf("IDs not in byte order of their dates: %q", ids)
	}
}

// testLogEventsConcurrent appends from many goroutines at once, as
// concurrent requests do; some reuse one ID. Each caller hears of its own
// event only.
func testLogEventsConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 40
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			e := &store.LogEvent{Type: "seccft", Doc: json.RawMessage(fmt.Sprintf(`{"i": %d}`, i))}
			if i%10 == 0 {
				e.ID = "dup"
			}
			errs[i] = s.AppendLogEvent(ctx, e)
		})
	}
	close(start)
	wg.Wait()
	conflicts := 0
	for i, err := range errs {
		switch {
		case errors.Is(err, store.ErrConflict) && i%10 == 0:
			conflicts++
		case err != nil:
			t.Errorf("append %d: %v", i, err)
		}
	}
	_, total, err := s.ListLogEvents(ctx, store.LogFilter{}, store.ListOptions{})
	must(t, err)
	if conflicts != n/10-1 || total != n-conflicts {
		t.Errorf("%d conflicts and %d events stored; want %d and %d", conflicts, total, n/10-1, n-n/10+1)
	}
}

// testLogEventsCheckpoint reads events in the order they were stored,
// whatever their dates, as log exporters do.
func testLogEventsCheckpoint(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Stored in this order; the dates disagree, as two replicas' clocks
	// may. d is not settled at cut, so the read stops there: e, settled
	// but stored after d, is not read before d is.
	dates := map[string]time.Time{"a": t0, "b": t0.Add(2 * time.Second), "c": t0.Add(time.Second), "d": t0.Add(time.Hour), "e": t0.Add(30 * time.Second)}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		must(t, s.AppendLogEvent(ctx, &store.LogEvent{ID: id, Type: "s", Date: dates[id], UserID: "u-" + id}))
	}
	cut := t0.Add(time.Minute)
	ids := func(es []*store.LogEvent) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	for _, c := range []struct {
		after string
		limit int
		want  []string
	}{
		{"a", 10, []string{"b", "c"}},
		{"a", 1, []string{"b"}},
		{"b", 10, []string{"c"}},
		{"c", 10, nil},
	} {
		es, err := s.ListLogEventsAfter(ctx, c.after, cut, c.limit)
		must(t, err)
		if got := ids(es); !reflect.DeepEqual(got, c.want) {
			t.Errorf("ListLogEventsAfter(%q, limit %d) = %v, want %v", c.after, c.limit, got, c.want)
		}
	}
	_, err := s.ListLogEventsAfter(ctx, "nope", cut, 10)
	wantErr(t, "ListLogEventsAfter unknown", err, store.ErrNotFound)

	got, err := s.GetLogEvent(ctx, "c")
	must(t, err)
	equal(t, "GetLogEvent", got, &store.LogEvent{ID: "c", Type: "s", Date: ms(dates["c"]), UserID: "u-c"})
	_, err = s.GetLogEvent(ctx, "nope")
	wantErr(t, "GetLogEvent unknown", err, store.ErrNotFound)
}

func testClientCredentials(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateClient(ctx, fullClient("c1")))
	exp := t0.Add(24 * time.Hour)
	a := &store.ClientCredential{ID: "cred_a", ClientID: "c1", Name: "A", CredentialType: "public_key", KID: "kid-a", Alg: "RS256", PEM: "-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n", ExpiresAt: &exp}
	b := &store.ClientCredential{ID: "cred_b", ClientID: "c1", CredentialType: "public_key", KID: "kid-b", Alg: "PS256", PEM: "pem-b"}
	must(t, s.CreateClientCredential(ctx, a))
	must(t, s.CreateClientCredential(ctx, b))
	if a.CreatedAt.IsZero() || !a.UpdatedAt.Equal(a.CreatedAt) {
		t.Errorf("CreateClientCredential times: %v %v", a.CreatedAt, a.UpdatedAt)
	}
	wantErr(t, "CreateClientCredential duplicate id", s.CreateClientCredential(ctx, &store.ClientCredential{ID: "cred_a", ClientID: "c1", PEM: "x"}), store.ErrConflict)
	wantErr(t, "CreateClientCredential unknown client", s.CreateClientCredential(ctx, &store.ClientCredential{ID: "cred_x", ClientID: "nope", PEM: "x"}), store.ErrNotFound)

	got, err := s.GetClientCredential(ctx, "c1", "cred_a")
	must(t, err)
	equal(t, "GetClientCredential", got, a)
	_, err = s.GetClientCredential(ctx, "other", "cred_a")
	wantErr(t, "GetClientCredential of another client", err, store.ErrNotFound)
	list, err := s.ListClientCredentials(ctx, "c1")
	must(t, err)
	if len(list) != 2 || list[0].ID != "cred_a" || list[1].ID != "cred_b" || list[1].ExpiresAt != nil {
		t.Errorf("ListClientCredentials: %+v", list)
	}

	a.ExpiresAt = nil
	must(t, s.UpdateClientCredential(ctx, a))
	if got, err = s.GetClientCredential(ctx, "c1", "cred_a"); err != nil || got.ExpiresAt != nil || got.Name != "A" {
		t.Errorf("after UpdateClientCredential: %+v %v", got, err)
	}
	wantErr(t, "UpdateClientCredential unknown", s.UpdateClientCredential(ctx, &store.ClientCredential{ID: "nope", ClientID: "c1"}), store.ErrNotFound)

	// The client names the credentials it accepts; an empty list (accept
	// none) is not the same as no list (private_key_jwt not configured).
	for _, ids := range [][]string{{"cred_a", "cred_b"}, {}, nil} {
		c, err := s.GetClient(ctx, "c1")
		must(t, err)
		c.PrivateKeyJWTCredentials = ids
		must(t, s.UpdateClient(ctx, c))
		c, err = s.GetClient(ctx, "c1")
		must(t, err)
		if !reflect.DeepEqual(c.PrivateKeyJWTCredentials, ids) {
			t.Errorf("PrivateKeyJWTCredentials stored %#v, read %#v", ids, c.PrivateKeyJWTCredentials)
		}
	}

	must(t, s.DeleteClientCredential(ctx, "c1", "cred_b"))
	wantErr(t, "DeleteClientCredential again", s.DeleteClientCredential(ctx, "c1", "cred_b"), store.ErrNotFound)
	must(t, s.DeleteClient(ctx, "c1"))
	if list, err := s.ListClientCredentials(ctx, "c1"); err != nil || len(list) != 0 {
		t.Errorf("credentials left after DeleteClient: %d %v", len(list), err)
	}
}

func testClientAssertions(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.UseClientAssertion(ctx, "c1", "j1", t0))
	wantErr(t, "UseClientAssertion replayed", s.UseClientAssertion(ctx, "c1", "j1", t0), store.ErrConflict)
	must(t, s.UseClientAssertion(ctx, "c2", "j1", t0))
	must(t, s.UseClientAssertion(ctx, "c1", "j2", t0.Add(time.Hour)))
	n, err := s.PurgeClientAssertions(ctx, t0.Add(time.Minute), 10)
	must(t, err)
	if n != 2 {
		t.Errorf("PurgeClientAssertions = %d, want 2", n)
	}
	wantErr(t, "UseClientAssertion not yet purged", s.UseClientAssertion(ctx, "c1", "j2", t0), store.ErrConflict)
}

func testLogEventsPurge(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i, typ := range []string{"a", "b", "c"} {
		must(t, s.AppendLogEvent(ctx, &store.LogEvent{Type: typ, Date: t0.Add(time.Duration(i) * time.Hour)}))
	}
	cut := t0.Add(90 * time.Minute)
	for _, want := range []int{1, 1, 0} {
		n, err := s.PurgeLogEvents(ctx, cut, 1)
		must(t, err)
		if n != want {
			t.Errorf("PurgeLogEvents = %d, want %d", n, want)
		}
	}
	es, _, err := s.ListLogEvents(ctx, store.LogFilter{}, store.ListOptions{})
	must(t, err)
	if len(es) != 1 || es[0].Type != "c" {
		t.Errorf("left after purge: %+v, want only the event after the cut-off", es)
	}
}

func testLogEventList(t *testing.T, s store.Store) {
	ctx := t.Context()
	types := []string{"s", "f", "s", "seccft"}
	const n = 60
	for i := range n {
		must(t, s.AppendLogEvent(ctx, &store.LogEvent{
			ID:     fmt.Sprintf("e%02d", i),
			Type:   types[i%len(types)],
			Date:   t0.Add(time.Duration(i/3) * time.Second), // ties keep insertion order
			UserID: fmt.Sprintf("user%d", i%2),
		}))
	}
	ids := func(f store.LogFilter, opts store.ListOptions) ([]string, int) {
		t.Helper()
		es, total, err := s.ListLogEvents(ctx, f, opts)
		must(t, err)
		out := []string{}
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out, total
	}
	got, total := ids(store.LogFilter{}, store.ListOptions{})
	if len(got) != 50 || total != n || got[0] != "e59" || got[49] != "e10" {
		t.Errorf("default page: %d events from %v to %v, total %d; want 50 from e59 to e10, total %d", len(got), got[0], got[len(got)-1], total, n)
	}
	got, total = ids(store.LogFilter{}, store.ListOptions{Page: 1})
	if len(got) != 10 || got[0] != "e09" || got[9] != "e00" || total != n {
		t.Errorf("second default page: %v, total %d", got, total)
	}
	got, total = ids(store.LogFilter{Type: "f"}, store.ListOptions{PerPage: 3})
	if !reflect.DeepEqual(got, []string{"e57", "e53", "e49"}) || total != 15 {
		t.Errorf("type filter: %v, total %d", got, total)
	}
	got, total = ids(store.LogFilter{Type: "s", UserID: "user0"}, store.ListOptions{PerPage: 2, Page: 1})
	if !reflect.DeepEqual(got, []string{"e54", "e52"}) || total != 30 {
		t.Errorf("type and user filter: %v, total %d", got, total)
	}
	got, total = ids(store.LogFilter{UserID: "nobody"}, store.ListOptions{})
	if len(got) != 0 || total != 0 {
		t.Errorf("unknown user: %v, total %d", got, total)
	}
}

// testLogUserNames: the names a user signed in with, newest first, once
// each, from the user's newest events of the type only.
func testLogUserNames(t *testing.T, s store.Store) {
	ctx := t.Context()
	add := func(id, typ, user, name string, sec int) {
		t.Helper()
		doc := json.RawMessage(fmt.Sprintf(`{"type": %q, "user_name": %q}`, typ, name))
		if name == "" {
			doc = json.RawMessage(fmt.Sprintf(`{"type": %q}`, typ))
		}
		must(t, s.AppendLogEvent(ctx, &store.LogEvent{ID: id, Type: typ, Date: t0.Add(time.Duration(sec) * time.Second), UserID: user, Doc: doc}))
	}
	add("n1", "sepft", "waad|jo", "oldest@contoso.example", 1)
	add("n2", "sepft", "waad|jo", "Jo@Contoso.onmicrosoft.com", 2)
	add("n3", "sepft", "waad|jo", "jo@contoso.example", 3)
	add("n4", "sepft", "waad|jo", "Jo@Contoso.onmicrosoft.com", 4)
	add("n5", "sepft", "waad|jo", "", 5)
	add("n6", "fp", "waad|jo", "attacker-typed@contoso.example", 6)
	add("n7", "sertft", "waad|jo", "", 7)
	add("n8", "sepft", "waad|other", "other@contoso.example", 8)

	for _, c := range []struct {
		user, typ string
		limit     int
		want      []string
	}{
		{"waad|jo", "sepft", 100, []string{"Jo@Contoso.onmicrosoft.com", "jo@contoso.example", "oldest@contoso.example"}},
		// The newest four sign-ins; the failed and refresh events between
		// them do not count.
		{"waad|jo", "sepft", 4, []string{"Jo@Contoso.onmicrosoft.com", "jo@contoso.example"}},
		{"waad|other", "sepft", 100, []string{"other@contoso.example"}},
		{"waad|nobody", "sepft", 100, []string{}},
	} {
		got, err := s.LogUserNames(ctx, c.user, c.typ, c.limit)
		must(t, err)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("LogUserNames(%q, %q, %d) = %q, want %q", c.user, c.typ, c.limit, got, c.want)
		}
	}
}
