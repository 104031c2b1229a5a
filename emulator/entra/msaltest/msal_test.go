// Package msaltest proves the emulator's formats with a client we did not
// write: Microsoft's MSAL for Go, over TLS as MSAL requires.
package msaltest

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"

	"github.com/gatehouse/gatehouse/emulator/entra"
)

const (
	tenantID = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
	nativeID = "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b"
	confID   = "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d"
	apiScope = "api://8c3d9e2f-1a4b-4c5d-8e6f-7a8b9c0d1e2f/API.Access"
	alice    = "alice@contoso.com"
)

func start(t *testing.T) (*entra.Server, *httptest.Server) {
	t.Helper()
	dir, err := entra.LoadDirectory("../../../examples/entra-directory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := entra.New(dir, entra.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(srv)
	t.Cleanup(ts.Close)
	srv.SetBaseURL(ts.URL)
	return srv, ts
}

func TestPublicClientUsernamePassword(t *testing.T) {
	srv, ts := start(t)
	ctx := context.Background()
	for _, authority := range []string{ts.URL + "/" + tenantID, ts.URL + "/contoso.com", ts.URL + "/organizations"} {
		client, err := public.New(nativeID, public.WithAuthority(authority),
			public.WithHTTPClient(ts.Client()), public.WithInstanceDiscovery(false))
		if err != nil {
			t.Fatal(err)
		}
		//lint:ignore SA1019 ROPC is exactly what the emulator must serve.
		res, err := client.AcquireTokenByUsernamePassword(ctx, []string{apiScope}, alice, "Alice-Passw0rd!")
		if err != nil {
			t.Fatalf("%s: %v", authority, err)
		}
		if res.AccessToken == "" || res.IDToken.PreferredUsername != alice || res.IDToken.TenantID != tenantID || res.Account.PreferredUsername != alice {
			t.Errorf("%s: result = %+v", authority, res.IDToken)
		}
		if res.ExpiresOn.IsZero() {
			t.Errorf("%s: no expiry", authority)
		}
	}
	// MSAL asked the user realm first, then sent the password once per login.
	if srv.Count("userrealm") == 0 || srv.Count("token:password") != 3 {
		t.Errorf("counters = %v", srv.Counters())
	}

	client, _ := public.New(nativeID, public.WithAuthority(ts.URL+"/"+tenantID),
		public.WithHTTPClient(ts.Client()), public.WithInstanceDiscovery(false))
	_, err := client.AcquireTokenByUsernamePassword(ctx, []string{apiScope}, alice, "wrong")
	if err == nil || !strings.Contains(err.Error(), "AADSTS50126") {
		t.Errorf("wrong password: %v", err)
	}
	_, err = client.AcquireTokenByUsernamePassword(ctx, []string{apiScope}, "dave@contoso.com", "Dave-Passw0rd!")
	if err == nil || !strings.Contains(err.Error(), "AADSTS50076") {
		t.Errorf("MFA user: %v", err)
	}
}

// MSAL's confidential client does not send its secret on the password
// grant (reference §7.1): it works only for apps that allow public client
// flows, and fails with AADSTS7000218 otherwise.
func TestConfidentialClientUsernamePassword(t *testing.T) {
	_, ts := start(t)
	ctx := context.Background()
	cred, err := confidential.NewCredFromSecret("native-secret-value")
	if err != nil {
		t.Fatal(err)
	}
	client, err := confidential.New(ts.URL+"/"+tenantID, nativeID, cred,
		confidential.WithHTTPClient(ts.Client()), confidential.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.AcquireTokenByUsernamePassword(ctx, []string{apiScope}, alice, "Alice-Passw0rd!"); err != nil {
		t.Fatalf("public-flows app: %v", err)
	}
	cred, _ = confidential.NewCredFromSecret("confidential-secret-value")
	client, _ = confidential.New(ts.URL+"/"+tenantID, confID, cred,
		confidential.WithHTTPClient(ts.Client()), confidential.WithInstanceDiscovery(false))
	_, err = client.AcquireTokenByUsernamePassword(ctx, []string{"https://graph.microsoft.com/User.Read"}, alice, "Alice-Passw0rd!")
	if err == nil || !strings.Contains(err.Error(), "AADSTS7000218") {
		t.Errorf("confidential app: %v", err)
	}
	// Client credentials, which does send the secret.
	if _, err := client.AcquireTokenByCredential(ctx, []string{"https://graph.microsoft.com/.default"}); err != nil {
		t.Errorf("client credentials: %v", err)
	}
}
