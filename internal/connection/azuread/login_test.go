package azuread_test

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/emulator/entra"
	"github.com/gatehouse/gatehouse/emulator/entra/entratest"
	"github.com/gatehouse/gatehouse/internal/connection"
	"github.com/gatehouse/gatehouse/internal/connection/azuread"
	entraclient "github.com/gatehouse/gatehouse/internal/entra"
	"github.com/gatehouse/gatehouse/internal/store"
)

const (
	nativeApp = "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b"
	webAPIURI = "api://8c3d9e2f-1a4b-4c5d-8e6f-7a8b9c0d1e2f"
	contoso   = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
)

// plainSecrets stores secrets in clear: the test is about the login, not
// about sealing.
type plainSecrets struct{}

func (plainSecrets) Open(b, _ []byte) ([]byte, error) { return b, nil }

func newEmulator(t *testing.T) (*entra.Server, string) {
	t.Helper()
	return entratest.Start(t, entratest.Example(t), entra.Options{}, nil)
}

// newConnector returns a connector that the operator has allowed to call
// the emulator at base.
func newConnector(t *testing.T, opts entraclient.Options, base string) *azuread.Connector {
	t.Helper()
	hosts, err := azuread.NewUpstreamHosts([]string{base})
	if err != nil {
		t.Fatal(err)
	}
	return azuread.NewConnector(entraclient.NewClient(opts), plainSecrets{}, hosts, nil)
}

func conn(t *testing.T, base string, opts map[string]any) *store.Connection {
	t.Helper()
	o := map[string]any{
		"client_id":      nativeApp,
		"tenant_domain":  "contoso.onmicrosoft.com",
		"authority_host": base,
		"graph_host":     base,
	}
	for k, v := range opts {
		o[k] = v
	}
	raw, _ := json.Marshal(o)
	return &store.Connection{ID: "con_test", Name: "contoso", Strategy: "waad", Options: raw, SecretEnc: []byte("native-secret-value")}
}

func TestLoginV1AppIDURIRecordsWhyGroupsAreMissing(t *testing.T) {
	_, base := newEmulator(t)
	c := newConnector(t, entraclient.Options{}, base)
	tr := &connection.Trace{}
	ctx := connection.WithTrace(context.Background(), tr)
	id, err := c.Login(ctx, conn(t, base, map[string]any{
		"identity_api": azuread.IdentityAPIV1, "app_id": webAPIURI, "ext_groups": true, "ext_profile": true,
	}), "alice@contoso.com", "Alice-Passw0rd!", "203.0.113.9")
	if err != nil {
		t.Fatal(err)
	}
	if id.UserID != "waad|a0000000-0000-4000-8000-000000000001" || id.Profile["tenantid"] != contoso || id.Profile["upn"] != "alice@contoso.com" {
		t.Fatalf("identity %+v", id)
	}
	if _, ok := id.Profile["groups"]; ok {
		t.Errorf("groups loaded with a token for %s", webAPIURI)
	}
	want := "upstream token audience is " + webAPIURI + ", not Microsoft Graph"
	if len(id.Notes) != 1 || !strings.Contains(id.Notes[0], want) {
		t.Errorf("notes %q, want %q", id.Notes, want)
	}
	var names []string
	for _, s := range tr.Steps() {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, []string{"metadata", "token", "id_token"}) {
		t.Errorf("steps %v", names)
	}
}

func TestLoginV2GraphNestedGroupsOverPages(t *testing.T) {
	_, base := newEmulator(t)
	c := newConnector(t, entraclient.Options{GraphPageSize: 3}, base)
	id, err := c.Login(context.Background(), conn(t, base, map[string]any{
		"ext_groups": true, "ext_nested_groups": true, "ext_profile": true,
		"should_trust_email_verified_connection": azuread.TrustAlways,
	}), "alice@contoso.com", "Alice-Passw0rd!", "")
	if err != nil {
		t.Fatal(err)
	}
	groups, _ := id.Profile["groups"].([]string)
	for _, g := range []string{"Identity Team", "Platform", "Engineering", "All Staff", "Privileged Access"} {
		if !slices.Contains(groups, g) {
			t.Errorf("groups %v lack nested group %q", groups, g)
		}
	}
	if len(groups) < 10 {
		t.Errorf("%d groups, want at least 10 (several pages of 3)", len(groups))
	}
	if id.Profile["job_title"] != "Identity Engineer" || id.Profile["department"] != "Platform" || id.EmailVerified != true {
		t.Errorf("profile %v", id.Profile)
	}
	if len(id.Notes) != 0 || len(id.Unset) != 0 {
		t.Errorf("notes %v, unset %v", id.Notes, id.Unset)
	}
}

// With only User.Read, the least privileged permission of /me/memberOf,
// Graph lists the user's groups with their id and a null displayName
// ("limited information returned for inaccessible member objects",
// permissions-overview.md; Microsoft Q&A 1825421). Nameless groups must not
// end up in the profile as empty strings, and the admin must learn why.
func TestLoginGroupsWithoutReadPermission(t *testing.T) {
	dir := entratest.Example(t)
	for i, g := range dir.Tenants[0].OAuth2PermissionGrants {
		if g.ClientID == nativeApp && g.ResourceID == "https://graph.microsoft.com" {
			dir.Tenants[0].OAuth2PermissionGrants[i].Scope = "User.Read openid profile email offline_access"
		}
	}
	_, base := entratest.Start(t, dir, entra.Options{}, nil)
	c := newConnector(t, entraclient.Options{}, base)
	// v1 carries the permissions consented in advance; v2 would ask for
	// Directory.Read.All and be refused (AADSTS65001) instead.
	id, err := c.Login(context.Background(), conn(t, base, map[string]any{"identity_api": azuread.IdentityAPIV1, "app_id": "https://graph.microsoft.com", "ext_groups": true}),
		"alice@contoso.com", "Alice-Passw0rd!", "")
	if err != nil {
		t.Fatal(err)
	}
	if groups, ok := id.Profile["groups"]; ok {
		t.Errorf("groups %q loaded without their names", groups)
	}
	if len(id.Notes) != 1 || !strings.Contains(id.Notes[0], "GroupMember.Read.All") {
		t.Errorf("notes %q", id.Notes)
	}
}

func TestLoginFailureKinds(t *testing.T) {
	_, base := newEmulator(t)
	c := newConnector(t, entraclient.Options{}, base)
	cn := conn(t, base, nil)
	for _, tc := range []struct {
		user, password string
		kind           connection.Kind
		code, realm    string
	}{
		{"alice@contoso.com", "wrong", connection.KindInvalidCredentials, "AADSTS50126", "Managed"},
		{"nobody@contoso.com", "x", connection.KindInvalidCredentials, "AADSTS50034", "Managed"},
		{"grace@corp.contoso.com", "Grace-Passw0rd!", connection.KindInvalidCredentials, "AADSTS50126", "Federated"},
		{"nobody@corp.contoso.com", "x", connection.KindInvalidCredentials, "AADSTS50034", "Federated"},
		{"heidi@contoso.com", "x", connection.KindPasswordless, "AADSTS50056", ""},
		{"bob@contoso.com", "Bob-Passw0rd!", connection.KindAccountLocked, "AADSTS50053", ""},
		{"carol@contoso.com", "Carol-Passw0rd!", connection.KindPasswordExpired, "AADSTS50055", ""},
		{"dave@contoso.com", "Dave-Passw0rd!", connection.KindMFARequired, "AADSTS50076", ""},
		{"erin@contoso.com", "Erin-Passw0rd!", connection.KindMFARequired, "AADSTS50079", ""},
		{"frank@contoso.com", "Frank-Passw0rd!", connection.KindPolicyBlocked, "AADSTS53003", ""},
		{"ivan@contoso.com", "Ivan-Passw0rd!", connection.KindAccountDisabled, "AADSTS50057", ""},
	} {
		_, err := c.Login(context.Background(), cn, tc.user, tc.password, "")
		var ce *connection.Error
		if !errors.As(err, &ce) || ce.Kind != tc.kind || ce.Code != tc.code || ce.Realm != tc.realm {
			t.Errorf("%s: %v (realm %q), want %s %s realm %q", tc.user, err, ce.Realm, tc.kind, tc.code, tc.realm)
			continue
		}
		if federated := ce.Realm == connection.RealmFederated; federated != strings.Contains(ce.Hint, "user realm discovery says the user's domain is federated") ||
			federated && tc.code == "AADSTS50126" && ce.Hint != azuread.FederatedHint {
			t.Errorf("%s: hint %q", tc.user, ce.Hint)
		}
		if strings.Contains(ce.Error(), tc.password) || strings.Contains(ce.Error(), tc.user) {
			t.Errorf("%s: error %q carries credentials", tc.user, ce.Error())
		}
	}
}

// TestLoginFederatedRealm: a refused password is looked up at Entra's user
// realm discovery, once per domain, with the user name and never the
// password; `try` shows the lookup; an unavailable realm endpoint leaves the
// plain refusal.
func TestLoginFederatedRealm(t *testing.T) {
	canary := "canary-Passw0rd-" + time.Now().Format("150405.000000")
	var realmCalls atomic.Int32
	var leaked atomic.Bool
	emu, base := entratest.Start(t, entratest.Example(t), entra.Options{}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(strings.ToLower(r.URL.Path), "/userrealm/") {
				realmCalls.Add(1)
				var hdr strings.Builder
				_ = r.Header.Write(&hdr)
				if strings.Contains(r.URL.String(), canary) || strings.Contains(hdr.String(), canary) || r.ContentLength > 0 {
					leaked.Store(true)
				}
				if r.URL.Query().Get("api-version") != "1.0" {
					t.Errorf("realm request %s", r.URL)
				}
			}
			h.ServeHTTP(w, r)
		})
	})
	c := newConnector(t, entraclient.Options{}, base)
	cn := conn(t, base, nil)

	tr := &connection.Trace{}
	_, err := c.Login(connection.WithTrace(context.Background(), tr), cn, "grace@corp.contoso.com", canary, "")
	var ce *connection.Error
	if !errors.As(err, &ce) || ce.Kind != connection.KindInvalidCredentials || ce.Realm != connection.RealmFederated {
		t.Fatalf("federated user: %v", err)
	}
	steps := tr.Steps()
	if last := steps[len(steps)-1]; last.Name != "user realm" || !last.OK || last.Detail != "account type Federated" {
		t.Errorf("trace %+v", steps)
	}
	for range 3 {
		_, _ = c.Login(context.Background(), cn, "nobody@corp.contoso.com", canary, "")
	}
	if n := realmCalls.Load(); n != 1 || leaked.Load() {
		t.Fatalf("%d realm lookups for one domain (password sent: %t)", n, leaked.Load())
	}

	// A realm endpoint that fails keeps Entra's answer as it was.
	if err := emu.SetFault("userrealm", entra.Fault{Status: 503}); err != nil {
		t.Fatal(err)
	}
	tr = &connection.Trace{}
	_, err = c.Login(connection.WithTrace(context.Background(), tr), cn, "alice@contoso.com", canary, "")
	if !errors.As(err, &ce) || ce.Kind != connection.KindInvalidCredentials || ce.Code != "AADSTS50126" || ce.Realm != "" ||
		strings.Contains(ce.Hint, "user realm") {
		t.Fatalf("realm lookup failed: %v (realm %q, hint %q)", err, ce.Realm, ce.Hint)
	}
	if steps := tr.Steps(); steps[len(steps)-1].Name != "user realm" || steps[len(steps)-1].OK {
		t.Errorf("trace %+v", steps)
	}
	// Only refused passwords are looked up.
	emu.ClearFaults()
	before := realmCalls.Load()
	for _, u := range []string{"heidi@contoso.com", "bob@contoso.com"} {
		_, _ = c.Login(context.Background(), cn, u, canary, "")
	}
	if _, err := c.Login(context.Background(), cn, "alice@contoso.com", "Alice-Passw0rd!", ""); err != nil {
		t.Fatal(err)
	}
	if n := realmCalls.Load(); n != before {
		t.Fatalf("%d realm lookups for logins Entra did not refuse for their password", n-before)
	}
}

func TestCommonEndpointNeedsAllowedTenants(t *testing.T) {
	_, base := newEmulator(t)
	c := newConnector(t, entraclient.Options{}, base)
	common := map[string]any{"useCommonEndpoint": true, "userid_attribute": "sub"}
	_, err := c.Login(context.Background(), conn(t, base, common), "alice@contoso.com", "Alice-Passw0rd!", "")
	var ce *connection.Error
	if !errors.As(err, &ce) || ce.Kind != connection.KindMisconfigured || !strings.Contains(ce.Hint, azuread.AllowAnyTenantOption) {
		t.Fatalf("common endpoint without allow-list: %v", err)
	}
	common["allowed_tenants"] = []string{"9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"}
	_, err = c.Login(context.Background(), conn(t, base, common), "alice@contoso.com", "Alice-Passw0rd!", "")
	if !errors.As(err, &ce) || ce.Kind != connection.KindTenantNotAllowed {
		t.Fatalf("tenant outside allow-list: %v", err)
	}
	// allow_any_tenant is for a connection without an allow-list; it does
	// not widen one.
	common[azuread.AllowAnyTenantOption] = true
	_, err = c.Login(context.Background(), conn(t, base, common), "alice@contoso.com", "Alice-Passw0rd!", "")
	if !errors.As(err, &ce) || ce.Kind != connection.KindTenantNotAllowed {
		t.Fatalf("tenant outside allow-list, allow_any_tenant set too: %v", err)
	}
	delete(common, azuread.AllowAnyTenantOption)
	common["allowed_tenants"] = []string{contoso}
	id, err := c.Login(context.Background(), conn(t, base, common), "alice@contoso.com", "Alice-Passw0rd!", "")
	if err != nil || !strings.HasPrefix(id.UserID, "waad|") || id.UserID == "waad|a0000000-0000-4000-8000-000000000001" {
		t.Fatalf("allowed tenant, keyed on sub: %v %+v", err, id)
	}
}

// TestLoginRefusesHostNotAllowed: a stored connection whose authority_host
// or graph_host the operator has not allowed (a database edited directly,
// GATEHOUSE_UPSTREAM_HOSTS narrowed since) fails as misconfigured and
// sends nothing, neither the password nor the client secret, to that host.
func TestLoginRefusesHostNotAllowed(t *testing.T) {
	_, base := newEmulator(t)
	var hits atomic.Int64
	relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "relay", http.StatusTeapot)
	}))
	t.Cleanup(relay.Close)
	c := newConnector(t, entraclient.Options{}, base)
	for _, tc := range []struct {
		name, prop string
		opts       map[string]any
	}{
		{"authority_host", "authority_host", map[string]any{"authority_host": relay.URL}},
		{"graph_host", "graph_host", map[string]any{"graph_host": relay.URL, "ext_profile": true}},
		{"authority_host with a path", "authority_host", map[string]any{"authority_host": base + "/relay"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &connection.Trace{}
			_, err := c.Login(connection.WithTrace(context.Background(), tr), conn(t, base, tc.opts), "alice@contoso.com", "Alice-Passw0rd!", "")
			var ce *connection.Error
			if !errors.As(err, &ce) || ce.Kind != connection.KindMisconfigured ||
				!strings.Contains(ce.Error(), "options."+tc.prop) || !strings.Contains(ce.Hint, azuread.UpstreamHostsSetting) {
				t.Fatalf("login: %v (hint %q), want misconfigured naming options.%s with a hint at %s", err, hintOf(err), tc.prop, azuread.UpstreamHostsSetting)
			}
			if steps := tr.Steps(); len(steps) != 1 || steps[0].Name != "configuration" {
				t.Errorf("steps %+v, want only the configuration step", steps)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the host that is not allowed received %d requests", n)
	}
	// The same connection works once the operator allows the host: the
	// count above is not zero merely because nothing was ever sent.
	allowed := newConnector(t, entraclient.Options{}, relay.URL)
	if _, err := allowed.Login(context.Background(), conn(t, relay.URL, nil), "alice@contoso.com", "Alice-Passw0rd!", ""); err == nil {
		t.Fatal("the relay answered a login")
	}
	if hits.Load() == 0 {
		t.Fatal("an allowed host received nothing")
	}
}

func hintOf(err error) string {
	var ce *connection.Error
	if errors.As(err, &ce) {
		return ce.Hint
	}
	return ""
}

// TestSyncModeMatchesLogin: the broker asks SyncMode before a login to
// decide whether to read the user with its attack-protection check; it
// must be what the login then reports.
func TestSyncModeMatchesLogin(t *testing.T) {
	_, base := newEmulator(t)
	c := newConnector(t, entraclient.Options{}, base)
	for _, mode := range []string{"", connection.SyncOnEachLogin, connection.SyncOnFirstLogin, connection.SyncNeverOnLogin} {
		t.Run(cmp.Or(mode, "unset"), func(t *testing.T) {
			opts := map[string]any{}
			if mode != "" {
				opts["set_user_root_attributes"] = mode
			}
			cn := conn(t, base, opts)
			want := cmp.Or(mode, connection.SyncOnEachLogin)
			if got := c.SyncMode(cn); got != want {
				t.Errorf("SyncMode before login = %q, want %q", got, want)
			}
			id, err := c.Login(context.Background(), cn, "alice@contoso.com", "Alice-Passw0rd!", "")
			if err != nil {
				t.Fatal(err)
			}
			if id.SyncMode != want {
				t.Errorf("login's SyncMode = %q, want %q", id.SyncMode, want)
			}
		})
	}
	bad := conn(t, base, map[string]any{"set_user_root_attributes": "sometimes"})
	if got := c.SyncMode(bad); got != "" {
		t.Errorf("SyncMode of an unusable connection = %q, want empty", got)
	}
}

// TestLoginSlowGraphKeepsItsBudget: Graph only adds optional data to a
// login that already succeeded. A hung Graph costs each call its own
// timeout (30 s by default); /me and memberOf one after the other would
// hold the answer past the server's 60 s write timeout, failing every
// login. All the Graph calls of a login share one budget instead.
func TestLoginSlowGraphKeepsItsBudget(t *testing.T) {
	srv, base := newEmulator(t)
	c := newConnector(t, entraclient.Options{}, base)
	azuread.SetGraphBudget(t, 300*time.Millisecond)
	if err := srv.SetFault("graph", entra.Fault{Delay: entra.Duration(2 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	id, err := c.Login(context.Background(), conn(t, base, map[string]any{"ext_profile": true, "ext_groups": true}),
		"alice@contoso.com", "Alice-Passw0rd!", "")
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("login failed because Graph is slow: %v", err)
	}
	if elapsed > 1500*time.Millisecond {
		t.Errorf("login took %s with a Graph budget of 300ms", elapsed)
	}
	if len(id.Notes) != 2 || !strings.Contains(id.Notes[0], "/me failed") || !strings.Contains(id.Notes[1], "memberOf failed") {
		t.Errorf("notes %q, want /me and memberOf failures", id.Notes)
	}
	if _, ok := id.Profile["groups"]; ok {
		t.Errorf("groups %v set although Graph did not answer", id.Profile["groups"])
	}
}

// TestLoginGraphThrottled: Graph answering 429 (with Retry-After) fails
// neither the login nor, as an outage, the broker: the user authenticated,
// and the note says which call Graph refused and how.
func TestLoginGraphThrottled(t *testing.T) {
	srv, base := newEmulator(t)
	c := newConnector(t, entraclient.Options{}, base)
	if err := srv.SetFault("graph", entra.Fault{Status: http.StatusTooManyRequests, RetryAfter: 7}); err != nil {
		t.Fatal(err)
	}
	id, err := c.Login(context.Background(), conn(t, base, map[string]any{"ext_profile": true, "ext_groups": true}),
		"alice@contoso.com", "Alice-Passw0rd!", "")
	if err != nil {
		t.Fatalf("login failed because Graph throttles: %v", err)
	}
	if id.UserID != "waad|a0000000-0000-4000-8000-000000000001" {
		t.Errorf("identity %+v", id)
	}
	if len(id.Notes) != 2 || !strings.Contains(id.Notes[0], "HTTP 429") || !strings.Contains(id.Notes[1], "HTTP 429") {
		t.Errorf("notes %q, want both Graph calls throttled", id.Notes)
	}
	// The stored user must not keep groups an earlier login loaded.
	if !slices.Equal(id.Unset, []string{"groups"}) {
		t.Errorf("unset %q, want [groups]", id.Unset)
	}
}

// TestLoginMaxGroups: max_groups_to_retrieve caps the groups, and the
// listing asks Graph for no more than that.
func TestLoginMaxGroups(t *testing.T) {
	srv, base := newEmulator(t)
	c := newConnector(t, entraclient.Options{}, base)
	srv.ResetCounters()
	id, err := c.Login(context.Background(), conn(t, base, map[string]any{
		"ext_groups": true, "ext_nested_groups": true, "max_groups_to_retrieve": "2",
	}), "alice@contoso.com", "Alice-Passw0rd!", "")
	if err != nil {
		t.Fatal(err)
	}
	if groups, _ := id.Profile["groups"].([]string); len(groups) != 2 {
		t.Errorf("groups %v, want 2", id.Profile["groups"])
	}
	if n := srv.Count("graph"); n != 1 {
		t.Errorf("%d Graph requests, want 1 page of 2", n)
	}
}

// TestLoginV1UnsignedIDToken: the seed's v1 connection signs users in
// with the id_token of the v1 token endpoint, which Entra does not sign
// (alg none; AD v1-protocols-oauth-code.md: id_token "An unsigned JSON Web
// Token (JWT)") and the emulator sends the same way.
func TestLoginV1UnsignedIDToken(t *testing.T) {
	var idToken atomic.Value
	_, base := entratest.Start(t, entratest.Example(t), entra.Options{}, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			var body struct {
				IDToken string `json:"id_token"`
			}
			if strings.HasSuffix(r.URL.Path, "/oauth2/token") && json.Unmarshal(rec.Body.Bytes(), &body) == nil && body.IDToken != "" {
				idToken.Store(body.IDToken)
			}
			maps.Copy(w.Header(), rec.Header())
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
		})
	})
	c := newConnector(t, entraclient.Options{}, base)
	id, err := c.Login(context.Background(), conn(t, base, map[string]any{
		"identity_api": azuread.IdentityAPIV1, "app_id": webAPIURI,
	}), "alice@contoso.com", "Alice-Passw0rd!", "")
	if err != nil {
		t.Fatalf("v1 login with Entra's unsigned id_token: %v", err)
	}
	if id.UserID != "waad|a0000000-0000-4000-8000-000000000001" || id.Profile["tenantid"] != contoso {
		t.Fatalf("identity %+v", id)
	}
	tok, _ := idToken.Load().(string)
	header, _, _ := strings.Cut(tok, ".")
	if h, _ := base64.RawURLEncoding.DecodeString(header); string(h) != `{"typ":"JWT","alg":"none"}` || !strings.HasSuffix(tok, ".") {
		t.Fatalf("the login did not receive an unsigned id_token: %q", tok)
	}
}

// TestLoginIgnoresMetadataHosts: the tenant metadata names the token
// endpoint and Graph host, but the password goes only to authority_host and
// the access token only to graph_host: metadata naming another host (a
// compromised or misdirected document) receives nothing.
func TestLoginIgnoresMetadataHosts(t *testing.T) {
	var hits atomic.Int64
	relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "relay", http.StatusTeapot)
	}))
	t.Cleanup(relay.Close)
	redirect := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration") {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			var doc map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
				t.Errorf("metadata: %v", err)
			}
			doc["token_endpoint"] = relay.URL + "/token"
			doc["msgraph_host"] = strings.TrimPrefix(relay.URL, "http://")
			json.NewEncoder(w).Encode(doc)
		})
	}
	_, base := entratest.Start(t, entratest.Example(t), entra.Options{}, redirect)
	c := newConnector(t, entraclient.Options{}, base)
	id, err := c.Login(context.Background(), conn(t, base, map[string]any{"ext_profile": true, "ext_groups": true}),
		"alice@contoso.com", "Alice-Passw0rd!", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := id.Profile["groups"]; !ok || len(id.Notes) != 0 {
		t.Errorf("profile %v, notes %q", id.Profile, id.Notes)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the host named by the metadata received %d requests", n)
	}
}
