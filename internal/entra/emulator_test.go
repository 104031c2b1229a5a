package entra_test

// These tests run the client against the Entra ID emulator in-process. The
// emulator was written separately from Microsoft's documentation, so a
// misreading on either side shows up here. Only tests import it.

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	emulator "github.com/gatehouse/gatehouse/emulator/entra"
	"github.com/gatehouse/gatehouse/internal/entra"
)

const (
	tenantID  = "4a1b2c3d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
	domain    = "fabrikam.onmicrosoft.com"
	nativeApp = "11111111-aaaa-4bbb-8ccc-000000000001"
	nativeKey = "native-secret"
	confApp   = "11111111-aaaa-4bbb-8ccc-000000000002"
	lonelyApp = "11111111-aaaa-4bbb-8ccc-000000000003"
	apiApp    = "11111111-aaaa-4bbb-8ccc-000000000004"
	apiURI    = "api://fabrikam-api"
)

const directory = `
tenants:
  - id: ` + tenantID + `
    displayName: Fabrikam
    domains:
      - {id: ` + domain + `, isVerified: true, isDefault: true, authenticationType: Managed}
      - id: corp.fabrikam.com
        isVerified: true
        authenticationType: Federated
        activeSignInUri: https://adfs.corp.fabrikam.com/adfs/services/trust/2005/usernamemixed
        passiveSignInUri: https://adfs.corp.fabrikam.com/adfs/ls/
        metadataExchangeUri: https://adfs.corp.fabrikam.com/adfs/services/trust/mex
    applications:
      - id: 22222222-aaaa-4bbb-8ccc-000000000004
        appId: ` + apiApp + `
        displayName: Fabrikam API
        identifierUris: [` + apiURI + `]
        api:
          oauth2PermissionScopes:
            - {id: 33333333-aaaa-4bbb-8ccc-000000000001, value: API.Access, type: User}
      - id: 22222222-aaaa-4bbb-8ccc-000000000001
        appId: ` + nativeApp + `
        displayName: Native
        isFallbackPublicClient: true
        passwordCredentials:
          - {keyId: 44444444-aaaa-4bbb-8ccc-000000000001, secretText: ` + nativeKey + `, endDateTime: 2099-01-01T00:00:00Z}
      - id: 22222222-aaaa-4bbb-8ccc-000000000002
        appId: ` + confApp + `
        displayName: Confidential
        passwordCredentials:
          - {keyId: 44444444-aaaa-4bbb-8ccc-000000000002, secretText: conf-secret, endDateTime: 2099-01-01T00:00:00Z}
          - {keyId: 44444444-aaaa-4bbb-8ccc-000000000003, secretText: old-secret, endDateTime: 2020-01-01T00:00:00Z}
      - id: 22222222-aaaa-4bbb-8ccc-000000000003
        appId: ` + lonelyApp + `
        displayName: Unconsented
        isFallbackPublicClient: true
    oauth2PermissionGrants:
      - {clientId: ` + nativeApp + `, consentType: AllPrincipals, resourceId: https://graph.microsoft.com, scope: User.Read Directory.Read.All openid profile email offline_access}
      - {clientId: ` + nativeApp + `, consentType: AllPrincipals, resourceId: ` + apiURI + `, scope: API.Access}
      - {clientId: ` + nativeApp + `, consentType: AllPrincipals, resourceId: https://graph.windows.net, scope: User.Read}
      - {clientId: ` + confApp + `, consentType: AllPrincipals, resourceId: https://graph.microsoft.com, scope: User.Read}
    users:
      - {id: a1000000-0000-4000-8000-000000000001, userPrincipalName: alice@` + domain + `, mail: alice@fabrikam.com, displayName: Alice Adams, givenName: Alice, surname: Adams, department: Platform, jobTitle: Engineer, password: "Alice-Pw1!"}
      - {id: a1000000-0000-4000-8000-000000000002, userPrincipalName: bob@` + domain + `, displayName: Bob, password: "Bob-Pw1!", state: locked}
      - {id: a1000000-0000-4000-8000-000000000003, userPrincipalName: carol@` + domain + `, displayName: Carol, password: "Carol-Pw1!", state: passwordExpired}
      - {id: a1000000-0000-4000-8000-000000000004, userPrincipalName: dave@` + domain + `, displayName: Dave, password: "Dave-Pw1!", state: mfaRequired}
      - {id: a1000000-0000-4000-8000-000000000005, userPrincipalName: erin@` + domain + `, displayName: Erin, password: "Erin-Pw1!", state: mfaRegistrationRequired}
      - {id: a1000000-0000-4000-8000-000000000006, userPrincipalName: frank@` + domain + `, displayName: Frank, password: "Frank-Pw1!", state: conditionalAccessBlocked}
      - {id: a1000000-0000-4000-8000-000000000007, userPrincipalName: grace@corp.fabrikam.com, displayName: Grace, password: "Grace-Pw1!"}
      - {id: a1000000-0000-4000-8000-000000000008, userPrincipalName: heidi@` + domain + `, displayName: Heidi, state: passwordless}
      - {id: a1000000-0000-4000-8000-000000000009, userPrincipalName: ivan@` + domain + `, displayName: Ivan, password: "Ivan-Pw1!", accountEnabled: false}
    groups:
      - {id: b1000000-0000-4000-8000-000000000001, displayName: G1, securityEnabled: true, members: [alice@` + domain + `]}
      - {id: b1000000-0000-4000-8000-000000000002, displayName: G2, securityEnabled: true, members: [alice@` + domain + `]}
      - {id: b1000000-0000-4000-8000-000000000003, displayName: G3, securityEnabled: true, members: [alice@` + domain + `]}
      - {id: b1000000-0000-4000-8000-000000000004, displayName: G4, securityEnabled: true, members: [alice@` + domain + `]}
      - {id: b1000000-0000-4000-8000-000000000005, displayName: Parent, securityEnabled: true, members: [b1000000-0000-4000-8000-000000000001]}
      - {id: b1000000-0000-4000-8000-000000000006, displayName: Grandparent, securityEnabled: true, members: [b1000000-0000-4000-8000-000000000005]}
    # Graph lists roles and administrative units in memberOf too; MemberOf
    # must leave them out.
    directoryRoles:
      - {id: c1000000-0000-4000-8000-000000000001, displayName: Global Reader, roleTemplateId: f2ef992c-3afb-46b9-b7cf-a126ee74c451, members: [alice@` + domain + `]}
      - {id: c1000000-0000-4000-8000-000000000002, displayName: Security Reader, roleTemplateId: 5d6b6bb7-de71-4623-b4af-96380a352509, members: [b1000000-0000-4000-8000-000000000006]}
    administrativeUnits:
      - {id: d1000000-0000-4000-8000-000000000001, displayName: Seattle, members: [alice@` + domain + `]}
`

type env struct {
	emu *emulator.Server
	url string
	c   *entra.Client
	now *time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir, err := emulator.ParseDirectory([]byte(directory))
	if err != nil {
		t.Fatal(err)
	}
	emu, err := emulator.New(dir, emulator.Options{GraphPageSize: 2, KeyBits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	emu.SetBaseURL(srv.URL)
	now := time.Now()
	e := &env{emu: emu, url: srv.URL, now: &now}
	e.c = entra.NewClient(entra.Options{Now: func() time.Time { return *e.now }, GraphPageSize: 2})
	return e
}

func (e *env) endpoint(v entra.Version) entra.Endpoint {
	return entra.Endpoint{Authority: e.url, Tenant: domain, Version: v}
}

func (e *env) login(t *testing.T, req entra.PasswordRequest) (*entra.TokenResponse, error) {
	t.Helper()
	if req.Endpoint.Version == 0 {
		req.Endpoint = e.endpoint(entra.V2)
	}
	if req.ClientID == "" {
		req.ClientID, req.ClientSecret = nativeApp, nativeKey
	}
	if req.Username == "" {
		req.Username, req.Password = "alice@"+domain, "Alice-Pw1!"
	}
	return e.c.PasswordToken(context.Background(), req)
}

// TestEmulatorV1AppIDURI is the seed's setup: v1, resource = the Web API's
// App ID URI. The login works; the access token cannot call Graph.
func TestEmulatorV1AppIDURI(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tok, err := e.login(t, entra.PasswordRequest{Endpoint: e.endpoint(entra.V1), Resource: apiURI})
	if err != nil {
		t.Fatal(err)
	}
	if tok.IDToken == "" || tok.RefreshToken == "" || tok.ExpiresIn <= 0 || tok.ExpiresAt.IsZero() {
		t.Fatalf("token response %v", tok)
	}
	// The v1 token endpoint's id_token is unsigned, as Entra's is: it is
	// accepted only as received from the token endpoint itself.
	opts := entra.ValidateOptions{Endpoint: e.endpoint(entra.V1), ClientID: nativeApp}
	if _, err := e.c.ValidateIDToken(ctx, tok.IDToken, opts); !errors.Is(err, entra.ErrInvalidIDToken) {
		t.Fatalf("unsigned v1 id_token not from the token endpoint: %v", err)
	}
	opts.FromTokenEndpoint = true
	claims, err := e.c.ValidateIDToken(ctx, tok.IDToken, opts)
	if err != nil {
		t.Fatal(err)
	}
	if claims.Version != "1.0" || claims.TenantID != tenantID || claims.ObjectID != "a1000000-0000-4000-8000-000000000001" ||
		claims.UPN != "alice@"+domain || claims.Issuer != e.emu.IssuerV1(tenantID) {
		t.Fatalf("v1 claims %+v", claims)
	}
	aud, err := entra.AccessTokenAudience(tok.AccessToken)
	if err != nil || entra.IsGraphAudience(aud) || entra.IsLegacyGraphAudience(aud) {
		t.Fatalf("aud %q, %v", aud, err)
	}
	_, err = e.c.Me(ctx, e.url, tok.AccessToken, nil)
	var ge *entra.GraphError
	if !errors.As(err, &ge) || ge.StatusCode != 401 || ge.Code != "InvalidAuthenticationToken" {
		t.Fatalf("Graph with an API token: %v", err)
	}
}

// TestEmulatorV1LegacyGraph: the seed's workaround, resource
// https://graph.windows.net, is recognised as the retired Azure AD Graph.
func TestEmulatorV1LegacyGraph(t *testing.T) {
	e := newEnv(t)
	tok, err := e.login(t, entra.PasswordRequest{Endpoint: e.endpoint(entra.V1), Resource: "https://graph.windows.net"})
	if err != nil {
		t.Fatal(err)
	}
	aud, err := entra.AccessTokenAudience(tok.AccessToken)
	if err != nil || !entra.IsLegacyGraphAudience(aud) {
		t.Fatalf("aud %q, %v", aud, err)
	}
}

// TestEmulatorV2Graph: v2 with Graph scopes, then profile and nested groups
// over several pages.
func TestEmulatorV2Graph(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tok, err := e.login(t, entra.PasswordRequest{Scopes: []string{"https://graph.microsoft.com/User.Read", "https://graph.microsoft.com/Directory.Read.All"}})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := e.c.ValidateIDToken(ctx, tok.IDToken, entra.ValidateOptions{Endpoint: e.endpoint(entra.V2), ClientID: nativeApp})
	if err != nil {
		t.Fatal(err)
	}
	if claims.Version != "2.0" || claims.PreferredUsername != "alice@"+domain || claims.Issuer != e.emu.IssuerV2(tenantID) || claims.Subject == "" {
		t.Fatalf("v2 claims %+v", claims)
	}
	if aud, err := entra.AccessTokenAudience(tok.AccessToken); err != nil || !entra.IsGraphAudience(aud) {
		t.Fatalf("aud %q, %v", aud, err)
	}
	me, err := e.c.Me(ctx, e.url, tok.AccessToken, []string{"id", "displayName", "department", "jobTitle"})
	if err != nil {
		t.Fatal(err)
	}
	if me["department"] != "Platform" || me["displayName"] != "Alice Adams" || me["id"] != claims.ObjectID {
		t.Fatalf("me %v", me)
	}
	e.emu.ResetCounters()
	direct, err := e.c.MemberOf(ctx, e.url, tok.AccessToken, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Four groups, a role and an administrative unit, two a page.
	if len(direct) != 4 || e.emu.Count("graph") != 3 {
		t.Fatalf("direct groups %v in %d calls", direct, e.emu.Count("graph"))
	}
	all, err := e.c.MemberOf(ctx, e.url, tok.AccessToken, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, g := range all {
		names[g.DisplayName] = true
	}
	if len(all) != 6 || !names["Grandparent"] || !names["Parent"] {
		t.Fatalf("transitive groups %v", all)
	}
	capped, err := e.c.MemberOf(ctx, e.url, tok.AccessToken, true, 3)
	if err != nil || len(capped) != 3 {
		t.Fatalf("capped %v, %v", capped, err)
	}
}

// TestEmulatorKeyRollover: a token signed with a key published after our
// cache was filled is accepted after one refetch.
func TestEmulatorKeyRollover(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	opts := entra.ValidateOptions{Endpoint: e.endpoint(entra.V2), ClientID: nativeApp}
	tok, err := e.login(t, entra.PasswordRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.ValidateIDToken(ctx, tok.IDToken, opts); err != nil {
		t.Fatal(err)
	}
	kid, err := e.emu.RollKey()
	if err != nil {
		t.Fatal(err)
	}
	if tok, err = e.login(t, entra.PasswordRequest{}); err != nil {
		t.Fatal(err)
	}
	e.emu.ResetCounters()
	// Within 5 minutes of the last fetch an unknown kid does not refetch.
	if _, err := e.c.ValidateIDToken(ctx, tok.IDToken, opts); !errors.Is(err, entra.ErrInvalidIDToken) || e.emu.Count("keys") != 0 {
		t.Fatalf("early refetch: %v, %d key fetches", err, e.emu.Count("keys"))
	}
	*e.now = e.now.Add(6 * time.Minute)
	if _, err := e.c.ValidateIDToken(ctx, tok.IDToken, opts); err != nil {
		t.Fatalf("after rollover to %s: %v", kid, err)
	}
	if n := e.emu.Count("keys"); n != 1 {
		t.Fatalf("%d key fetches, want 1", n)
	}
	m, err := e.c.Metadata(ctx, e.endpoint(entra.V2))
	if err != nil || m.TenantID != tenantID || len(m.KeyIDs) < 2 {
		t.Fatalf("metadata %+v, %v", m, err)
	}
}

// TestEmulatorOrganizations: the common endpoint option uses organizations
// and the {tenantid} issuer template.
func TestEmulatorOrganizations(t *testing.T) {
	e := newEnv(t)
	ep := entra.Endpoint{Authority: e.url, Common: true, Version: entra.V2}
	tok, err := e.login(t, entra.PasswordRequest{Endpoint: ep})
	if err != nil {
		t.Fatal(err)
	}
	opts := entra.ValidateOptions{Endpoint: ep, ClientID: nativeApp, AllowedTenants: []string{tenantID}}
	if _, err := e.c.ValidateIDToken(context.Background(), tok.IDToken, opts); err != nil {
		t.Fatal(err)
	}
	opts.AllowedTenants = []string{"00000000-0000-0000-0000-000000000000"}
	if _, err := e.c.ValidateIDToken(context.Background(), tok.IDToken, opts); !errors.Is(err, entra.ErrInvalidIDToken) {
		t.Fatalf("tenant outside the allow-list: %v", err)
	}
}

func TestEmulatorErrorClasses(t *testing.T) {
	e := newEnv(t)
	user := func(name, pw string) entra.PasswordRequest {
		return entra.PasswordRequest{Username: name + "@" + domain, Password: pw}
	}
	tests := []struct {
		name   string
		req    entra.PasswordRequest
		aadsts int
		class  entra.Class
	}{
		{"wrong password", user("alice", "nope"), 50126, entra.ClassInvalidCredentials},
		{"unknown user", user("nobody", "x"), 50034, entra.ClassInvalidCredentials},
		{"locked", user("bob", "Bob-Pw1!"), 50053, entra.ClassLocked},
		{"password expired", user("carol", "Carol-Pw1!"), 50055, entra.ClassPasswordExpired},
		{"mfa", user("dave", "Dave-Pw1!"), 50076, entra.ClassMFARequired},
		{"mfa registration", user("erin", "Erin-Pw1!"), 50079, entra.ClassMFARequired},
		{"conditional access", user("frank", "Frank-Pw1!"), 53003, entra.ClassConditionalAccess},
		{"federated", entra.PasswordRequest{Username: "grace@corp.fabrikam.com", Password: "Grace-Pw1!"}, 50126, entra.ClassInvalidCredentials},
		{"passwordless", user("heidi", "x"), 50056, entra.ClassPasswordless},
		{"disabled", user("ivan", "Ivan-Pw1!"), 50057, entra.ClassAccountDisabled},
		{"no secret, no public flows", entra.PasswordRequest{ClientID: confApp}, 7000218, entra.ClassAppMisconfigured},
		{"wrong secret", entra.PasswordRequest{ClientID: confApp, ClientSecret: "wrong"}, 7000215, entra.ClassAppMisconfigured},
		{"expired secret", entra.PasswordRequest{ClientID: confApp, ClientSecret: "old-secret"}, 7000222, entra.ClassAppMisconfigured},
		{"no consent", entra.PasswordRequest{ClientID: lonelyApp, Scopes: []string{"https://graph.microsoft.com/User.Read"}}, 65001, entra.ClassConsentRequired},
		{"unknown app", entra.PasswordRequest{ClientID: "99999999-aaaa-4bbb-8ccc-000000000000"}, 700016, entra.ClassAppMisconfigured},
		{"unknown tenant", entra.PasswordRequest{Endpoint: entra.Endpoint{Authority: e.url, Tenant: "nowhere.example", Version: entra.V2}}, 90002, entra.ClassAppMisconfigured},
		{"unknown resource", entra.PasswordRequest{Endpoint: e.endpoint(entra.V1), Resource: "api://nothing"}, 500011, entra.ClassAppMisconfigured},
		{"scopes of two resources", entra.PasswordRequest{Scopes: []string{"https://graph.microsoft.com/User.Read", apiURI + "/API.Access"}}, 28000, entra.ClassAppMisconfigured},
		{".default with a named scope", entra.PasswordRequest{Scopes: []string{"https://graph.microsoft.com/.default", "https://graph.microsoft.com/User.Read"}}, 70011, entra.ClassAppMisconfigured},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.login(t, tt.req)
			var ee *entra.Error
			if !errors.As(err, &ee) {
				t.Fatalf("got %v", err)
			}
			if ee.AADSTS != tt.aadsts || ee.Class != tt.class || ee.TraceID == "" || ee.Hint() == "" {
				t.Fatalf("got AADSTS%d %v (HTTP %d, %q)", ee.AADSTS, ee.Class, ee.StatusCode, ee.Code)
			}
		})
	}
}

func TestEmulatorOutages(t *testing.T) {
	e := newEnv(t)
	check := func(f emulator.Fault, class entra.Class, retryAfter time.Duration) {
		t.Helper()
		if err := e.emu.SetFault("token", f); err != nil {
			t.Fatal(err)
		}
		defer e.emu.ClearFaults()
		e.emu.ResetCounters()
		_, err := e.login(t, entra.PasswordRequest{})
		var ee *entra.Error
		if !errors.As(err, &ee) || ee.Class != class || ee.RetryAfter != retryAfter {
			t.Fatalf("fault %+v: got %v", f, err)
		}
		if n := e.emu.Count("token"); n != 1 {
			t.Fatalf("fault %+v: credentials sent %d times", f, n)
		}
	}
	check(emulator.Fault{Status: 429, RetryAfter: 3}, entra.ClassThrottled, 3*time.Second)
	// Fractional seconds, as Graph sends them, wait the whole second out.
	check(emulator.Fault{Status: 429, RetryAfter: 2.128}, entra.ClassThrottled, 3*time.Second)
	check(emulator.Fault{Status: 503, RetryAfter: 10}, entra.ClassUnavailable, 10*time.Second)
	check(emulator.Fault{Drop: true}, entra.ClassUnavailable, 0)
}

// Entra takes the client id in any case but writes the application's
// canonical, lower-case appId into aud (MSAL for Python issue #304: client
// 04B07795-… got aud 04b07795-…). A connection configured with the
// upper-case form must still accept its id_tokens.
func TestEmulatorClientIDCase(t *testing.T) {
	e := newEnv(t)
	upper := strings.ToUpper(nativeApp)
	tok, err := e.login(t, entra.PasswordRequest{ClientID: upper, ClientSecret: nativeKey})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := e.c.ValidateIDToken(context.Background(), tok.IDToken, entra.ValidateOptions{Endpoint: e.endpoint(entra.V2), ClientID: upper})
	if err != nil {
		t.Fatal(err)
	}
	if claims.Audience[0] != nativeApp {
		t.Errorf("aud %v", claims.Audience)
	}
}
