package entra_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/gatehouse/gatehouse/emulator/entra"
)

func TestMetadata(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		path, issuer, token, jwks string
	}{
		{"/" + tenantID + "/v2.0/.well-known/openid-configuration", e.base + "/" + tenantID + "/v2.0", e.base + "/" + tenantID + "/oauth2/v2.0/token", e.base + "/" + tenantID + "/discovery/v2.0/keys"},
		{"/contoso.com/v2.0/.well-known/openid-configuration", e.base + "/" + tenantID + "/v2.0", e.base + "/" + tenantID + "/oauth2/v2.0/token", e.base + "/" + tenantID + "/discovery/v2.0/keys"},
		{"/organizations/v2.0/.well-known/openid-configuration", e.base + "/{tenantid}/v2.0", e.base + "/organizations/oauth2/v2.0/token", e.base + "/organizations/discovery/v2.0/keys"},
		{"/common/v2.0/.well-known/openid-configuration", e.base + "/{tenantid}/v2.0", e.base + "/common/oauth2/v2.0/token", e.base + "/common/discovery/v2.0/keys"},
		{"/consumers/v2.0/.well-known/openid-configuration", e.base + "/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0", e.base + "/consumers/oauth2/v2.0/token", e.base + "/consumers/discovery/v2.0/keys"},
		{"/" + tenantID + "/.well-known/openid-configuration", e.base + "/" + tenantID + "/", e.base + "/" + tenantID + "/oauth2/token", e.base + "/" + tenantID + "/discovery/keys"},
		{"/common/.well-known/openid-configuration", e.base + "/{tenantid}/", e.base + "/common/oauth2/token", e.base + "/common/discovery/keys"},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			r := e.get(tc.path, "")
			if r.status != 200 || r.header.Get("Cache-Control") != "max-age=86400, private" {
				t.Fatalf("%d %v", r.status, r.header)
			}
			if r.body["issuer"] != tc.issuer || r.body["token_endpoint"] != tc.token || r.body["jwks_uri"] != tc.jwks {
				t.Errorf("issuer=%v token=%v jwks=%v", r.body["issuer"], r.body["token_endpoint"], r.body["jwks_uri"])
			}
			if r.body["cloud_instance_name"] != "microsoftonline.com" {
				t.Errorf("cloud_instance_name = %v", r.body["cloud_instance_name"])
			}
			if k := e.get(tc.jwks[len(e.base):], ""); k.status != 200 {
				t.Errorf("jwks_uri answers %d", k.status)
			}
		})
	}
	r := e.get("/common/v2.0/.well-known/openid-configuration", "")
	if r.body["tenant_region_scope"] != nil {
		t.Errorf("tenant_region_scope for common = %v, want null", r.body["tenant_region_scope"])
	}
	checkSTSError(t, e.get("/nowhere.example/v2.0/.well-known/openid-configuration", ""), 400, "invalid_tenant", 90002, "")
	checkSTSError(t, e.get("/nowhere.example/discovery/v2.0/keys", ""), 400, "invalid_tenant", 90002, "")
	// "organizations" is an alias of the v2 endpoint only
	// (panva/openid-client#175).
	checkSTSError(t, e.get("/organizations/.well-known/openid-configuration", ""), 400, "invalid_tenant", 90002, "")
}

func TestSTSURL(t *testing.T) {
	e := newEnv(t, func(o *entra.Options) { o.STSURL = "https://sts.windows.net" })
	if r := e.get("/"+tenantID+"/.well-known/openid-configuration", ""); r.body["issuer"] != "https://sts.windows.net/"+tenantID+"/" {
		t.Errorf("issuer = %v", r.body["issuer"])
	}
	at := e.token(v1Token, passwordV1(apiURI), "access_token")
	if _, c := e.verify(at, "/"+tenantID+"/discovery/keys"); c["iss"] != "https://sts.windows.net/"+tenantID+"/" {
		t.Errorf("iss = %v", c["iss"])
	}
}

func TestKeysDocument(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/" + tenantID + "/discovery/keys", "/" + tenantID + "/discovery/v2.0/keys", "/discovery/keys", "/discovery/v2.0/keys", "/common/discovery/v2.0/keys"} {
		var doc struct {
			Keys []map[string]any `json:"keys"`
		}
		r := e.get(p, "")
		if err := json.Unmarshal([]byte(r.raw), &doc); err != nil || len(doc.Keys) != 1 {
			t.Fatalf("%s: %s", p, r.raw)
		}
		k := doc.Keys[0]
		if k["kty"] != "RSA" || k["use"] != "sig" || k["e"] != "AQAB" || k["kid"] != k["x5t"] || k["n"] == nil {
			t.Errorf("%s: key = %v", p, k)
		}
		if x5c, _ := k["x5c"].([]any); len(x5c) != 1 {
			t.Errorf("%s: x5c = %v", p, k["x5c"])
		}
		_, hasIssuer := k["issuer"]
		if v2 := slices.Contains([]string{"/" + tenantID + "/discovery/v2.0/keys", "/discovery/v2.0/keys", "/common/discovery/v2.0/keys"}, p); v2 != hasIssuer {
			t.Errorf("%s: issuer present = %v", p, hasIssuer)
		} else if v2 && k["issuer"] != e.base+"/{tenantid}/v2.0" {
			t.Errorf("%s: issuer = %v", p, k["issuer"])
		}
	}
}

func TestKeyRollover(t *testing.T) {
	e := newEnv(t, func(o *entra.Options) { o.TokenLifetime = 72 * time.Hour })
	keys := "/" + tenantID + "/discovery/keys"
	oldKid := e.srv.SigningKeyID()
	before := e.graphToken()

	next, err := e.srv.PublishKey()
	if err != nil {
		t.Fatal(err)
	}
	if got := e.srv.PublishedKeyIDs(); !slices.Equal(got, []string{oldKid, next}) {
		t.Fatalf("published = %v", got)
	}
	// Published before it signs.
	if h, _ := e.verify(e.graphToken(), keys); h.KeyID != oldKid {
		t.Errorf("new key signs before activation")
	}
	if err := e.srv.ActivateKey(next); err != nil {
		t.Fatal(err)
	}
	after := e.graphToken()
	if h, _ := e.verify(after, keys); h.KeyID != next {
		t.Errorf("kid after rollover = %s, want %s", h.KeyID, next)
	}
	// The old key stays published for the grace period.
	e.verify(before, keys)
	if r := e.get("/v1.0/me", before); r.status != 200 {
		t.Errorf("old token during grace: %d %s", r.status, r.raw)
	}
	e.clock.Advance(25 * time.Hour)
	if got := e.srv.PublishedKeyIDs(); !slices.Equal(got, []string{next}) {
		t.Errorf("published after grace = %v", got)
	}
	r := e.get("/v1.0/me", before)
	if r.status != 401 {
		t.Errorf("token of a retired key: %d %s", r.status, r.raw)
	}
	if r := e.get("/v1.0/me", after); r.status != 200 {
		t.Errorf("new token: %d", r.status)
	}
	if err := e.srv.ActivateKey("nope"); err == nil {
		t.Error("activated an unknown kid")
	}

	// The admin endpoint rolls too.
	res, err := http.Post(e.base+"/_emulator/keys/roll", "", nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("admin roll: %v %v", res, err)
	}
	res.Body.Close()
	if e.srv.SigningKeyID() == next {
		t.Error("admin roll did not change the signing key")
	}
}

// TestGoOIDC verifies v2 ID tokens and v1 access tokens with coreos/go-oidc
// through discovery, a client we did not write.
func TestGoOIDC(t *testing.T) {
	e := newEnv(t, func(o *entra.Options) { o.Clock = time.Now })
	ctx := context.Background()

	p2, err := oidc.NewProvider(ctx, e.base+"/"+tenantID+"/v2.0")
	if err != nil {
		t.Fatal(err)
	}
	id2 := e.token(v2Token, passwordV2("openid profile email"), "id_token")
	tok, err := p2.Verifier(&oidc.Config{ClientID: nativeID}).Verify(ctx, id2)
	if err != nil {
		t.Fatalf("v2: %v", err)
	}
	var c2 struct {
		PreferredUsername string `json:"preferred_username"`
		TID               string `json:"tid"`
	}
	if err := tok.Claims(&c2); err != nil || c2.PreferredUsername != alice || c2.TID != tenantID {
		t.Errorf("v2 claims %+v %v", c2, err)
	}

	p1, err := oidc.NewProvider(ctx, e.base+"/"+tenantID+"/")
	if err != nil {
		t.Fatal(err)
	}
	// The v1 token endpoint's id_token is unsigned, as Entra's is, which
	// go-oidc refuses (coreos/go-oidc#350); v1 access tokens are signed
	// and verify through the v1 metadata.
	id1 := e.token(v1Token, passwordV1(apiURI), "id_token")
	if _, err := p1.Verifier(&oidc.Config{ClientID: nativeID}).Verify(ctx, id1); err == nil {
		t.Error("go-oidc verified an unsigned v1 id token")
	}
	at1 := e.token(v1Token, passwordV1(apiURI), "access_token")
	if _, err := p1.Verifier(&oidc.Config{ClientID: apiURI}).Verify(ctx, at1); err != nil {
		t.Fatalf("v1: %v", err)
	}
	// A v1 token does not pass as a v2 one: the issuers differ.
	if _, err := p2.Verifier(&oidc.Config{ClientID: apiURI}).Verify(ctx, at1); err == nil {
		t.Error("v1 token verified against v2 metadata")
	}
}

func TestUserRealm(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		path string
		want map[string]any
	}{
		{"/common/userrealm/alice@contoso.com?api-version=1.0", map[string]any{"ver": "1.0", "account_type": "Managed", "domain_name": "contoso.com", "cloud_instance_name": "microsoftonline.com", "cloud_audience_urn": "urn:federation:MicrosoftOnline"}},
		{"/common/UserRealm/alice@contoso.com", map[string]any{"account_type": "Managed"}},
		{"/common/userrealm/grace@corp.contoso.com?api-version=1.0", map[string]any{"account_type": "Federated", "federation_protocol": "WSTrust",
			"federation_metadata_url": "https://adfs.corp.contoso.com/adfs/services/trust/mex", "federation_active_auth_url": "https://adfs.corp.contoso.com/adfs/services/trust/2005/usernamemixed"}},
		{"/common/userrealm/x@nowhere.example?api-version=1.0", map[string]any{"account_type": "Unknown"}},
		{"/common/userrealm/alice@contoso.com?api-version=2.1", map[string]any{"NameSpaceType": "Managed", "Login": alice, "DomainName": "contoso.com", "FederationBrandName": "Contoso"}},
		{"/common/userrealm/grace@corp.contoso.com?api-version=2.0", map[string]any{"NameSpaceType": "Federated", "federation_protocol": "WSTrust", "FederationBrandName": "Contoso AD FS"}},
		{"/common/userrealm/x@nowhere.example?api-version=2.1", map[string]any{"NameSpaceType": "Unknown"}},
	}
	for _, tc := range cases {
		r := e.get(tc.path, "")
		if r.status != 200 {
			t.Fatalf("%s: %d", tc.path, r.status)
		}
		for k, v := range tc.want {
			if r.body[k] != v {
				t.Errorf("%s: %s = %v, want %v", tc.path, k, r.body[k], v)
			}
		}
	}
	if r := e.get("/common/userrealm/grace@corp.contoso.com?api-version=2.1", ""); r.body["AuthURL"] == nil {
		t.Error("federated v2 realm without AuthURL")
	}
}

func TestInstanceDiscovery(t *testing.T) {
	e := newEnv(t)
	r := e.get("/common/discovery/instance?api-version=1.1&authorization_endpoint="+e.base+"/contoso.com/oauth2/v2.0/authorize", "")
	if r.status != 200 || r.body["tenant_discovery_endpoint"] != e.base+"/contoso.com/v2.0/.well-known/openid-configuration" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	md, _ := r.body["metadata"].([]any)
	if len(md) != 1 || md[0].(map[string]any)["preferred_network"] != e.hs.Listener.Addr().String() {
		t.Errorf("metadata = %v", r.body["metadata"])
	}
	checkSTSError(t, e.get("/common/discovery/instance?api-version=1.1", ""), 400, "invalid_request", 900144, "")
}
