package management_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestTrailingJSON: a body must be one JSON value. json.Decoder.More
// says false before a stray } or ], so such a body was once accepted and
// applied.
func TestTrailingJSON(t *testing.T) {
	a := start(t, storetest.SQLite)
	appID := seedApp(a)
	conn := a.must(201, "POST", "/api/v2/connections", seedConnection(appID))["id"].(string)
	cred := a.must(201, "POST", "/api/v2/clients/"+appID+"/credentials", map[string]any{"credential_type": "public_key", "pem": testPublicKeyPEM(t)})["id"].(string)
	cn := "/api/v2/connections/" + conn
	for _, tc := range []struct{ name, method, path, read, body string }{
		{"object then }", "PATCH", "/api/v2/tenants/settings", "/api/v2/tenants/settings", `{"friendly_name":"x"}}`},
		{"object then ]", "POST", "/api/v2/clients", "/api/v2/clients", `{"name":"trail"}]`},
		{"object then object", "POST", "/api/v2/clients", "/api/v2/clients", `{"name":"one"} {"name":"two"}`},
		{"object then number", "POST", "/api/v2/clients", "/api/v2/clients", `{"name":"one"} 1`},
		{"array then ]", "PATCH", cn + "/clients", cn, fmt.Sprintf(`[{"client_id":%q,"status":false}]]`, appID)},
		{"array then }", "PATCH", cn + "/clients", cn, fmt.Sprintf(`[{"client_id":%q,"status":false}]}`, appID)},
		{"attack protection", "PATCH", "/api/v2/attack-protection/brute-force-protection", "/api/v2/attack-protection/brute-force-protection", `{"max_attempts":3}}`},
		{"credential", "PATCH", "/api/v2/clients/" + appID + "/credentials/" + cred, "/api/v2/clients/" + appID + "/credentials/" + cred, `{"expires_at":null}}`},
		{"try", "POST", cn + "/try", cn, `{"username":"a@contoso.com","password":"p"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, want := a.Do(t, "GET", tc.read, a.token, nil)
			status, _, got := a.call(tc.method, tc.path, tc.body)
			errorIs(t, status, got, http.StatusBadRequest, "invalid_body", "")
			if _, _, after := a.Do(t, "GET", tc.read, a.token, nil); string(after) != string(want) {
				t.Errorf("a refused body changed %s:\n%s\n%s", tc.read, want, after)
			}
		})
	}
	// Whitespace after the value is not a second value.
	a.must(200, "PATCH", "/api/v2/tenants/settings", "{\"friendly_name\":\"ok\"}\r\n\t ")
}

// testPublicKeyPEM is a new RSA public key for a client credential.
func testPublicKeyPEM(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}
