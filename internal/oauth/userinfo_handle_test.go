package oauth_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/secrets"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// userinfoCall sends authz (the whole Authorization header, none when
// empty) to /userinfo and returns the status and WWW-Authenticate.
func userinfoCall(t *testing.T, e *env, method, authz string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, e.url+"userinfo", nil)
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
}

// sealHandle seals an opaque access token's content as the server does,
// under master, with aad.
func sealHandle(t *testing.T, master []byte, aad string, content any) string {
	t.Helper()
	kr, err := secrets.NewKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(content)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := kr.Seal(b, []byte(aad))
	if err != nil {
		t.Fatal(err)
	}
	return "gh1." + base64.RawURLEncoding.EncodeToString(sealed)
}

// TestUserinfoRefusesWhatItMustNot: /userinfo answers 401 with RFC 6750's
// WWW-Authenticate for an opaque access token that is expired, tampered
// with, sealed under another master key or for another use, or of a
// blocked or deleted user, and for an API token of a revoked signing key
// (not for an opaque token, which no signing key seals);
// a missing or non-Bearer credential carries no error code.
func TestUserinfoRefusesWhatItMustNot(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOptions{quietLogs: true})
			master, err := secrets.ParseMasterKey(e.secretKey)
			if err != nil {
				t.Fatal(err)
			}
			other := make([]byte, len(master))
			copy(other, master)
			other[0] ^= 0xff
			r := e.login(t, "contoso-v2", "alice@contoso.com", "Alice-Passw0rd!", "openid profile email")
			if r.status != http.StatusOK {
				t.Fatalf("login: %d %s", r.status, r.raw)
			}
			at := r.str("access_token")
			for _, authz := range []string{"Bearer " + at, "bearer " + at, "Bearer  " + at} {
				if status, _ := userinfoCall(t, e, "GET", authz); status != http.StatusOK {
					t.Errorf("%.20q: %d, want 200", authz, status)
				}
			}
			if status, _ := userinfoCall(t, e, "POST", "Bearer "+at); status != http.StatusOK {
				t.Errorf("POST: %d, want 200", status)
			}
			live := map[string]any{"s": aliceID, "c": e.clientID, "sc": "openid profile email", "e": time.Now().Add(time.Hour).Unix()}
			if status, _ := userinfoCall(t, e, "GET", "Bearer "+sealHandle(t, master, "gatehouse:userinfo_access_token", live)); status != http.StatusOK {
				t.Fatalf("handle sealed as the server seals: %d, want 200", status)
			}
			expired := map[string]any{"s": aliceID, "c": e.clientID, "sc": "openid", "e": time.Now().Add(-time.Second).Unix()}
			tampered := []byte(at)
			tampered[len(tampered)/2] ^= 1
			invalid := map[string]string{
				"expired":              sealHandle(t, master, "gatehouse:userinfo_access_token", expired),
				"another master key":   sealHandle(t, other, "gatehouse:userinfo_access_token", live),
				"sealed for other use": sealHandle(t, master, string(store.ClientSecretAAD(e.clientID)), live),
				"not JSON inside":      sealHandle(t, master, "gatehouse:userinfo_access_token", "x"),
				"tampered":             string(tampered),
				"not base64url":        "gh1.!!!!",
				"no prefix":            strings.TrimPrefix(at, "gh1."),
				"truncated":            at[:len(at)-4],
				"three parts":          "a.b.c",
			}
			for name, tok := range invalid {
				if status, authn := userinfoCall(t, e, "GET", "Bearer "+tok); status != http.StatusUnauthorized || authn != `Bearer realm="userinfo", error="invalid_token"` {
					t.Errorf("%s: %d %q, want 401 invalid_token", name, status, authn)
				}
			}
			for _, authz := range []string{"", "Bearer", "Bearer ", "Bearer    ", "Basic " + base64.StdEncoding.EncodeToString([]byte("a:b")), "Token " + at} {
				if status, authn := userinfoCall(t, e, "GET", authz); status != http.StatusUnauthorized || authn != `Bearer realm="userinfo"` {
					t.Errorf("Authorization %.20q: %d %q, want 401 without an error code", authz, status, authn)
				}
			}

			// An API's token carries the current key's kid; after a
			// rotation that key can be revoked, and its tokens go at once.
			api := "https://api.contoso.example/"
			if status, body := e.api(t, "POST", "api/v2/resource-servers", map[string]any{"identifier": api, "name": "Contoso API"}); status != http.StatusCreated {
				t.Fatalf("create API: %d %v", status, body)
			}
			jr := e.token(t, url.Values{
				"grant_type": {"http://auth0.com/oauth/grant-type/password-realm"}, "client_id": {e.clientID},
				"realm": {"contoso-v2"}, "username": {"alice@contoso.com"}, "password": {"Alice-Passw0rd!"},
				"scope": {"openid"}, "audience": {api},
			})
			if jr.status != http.StatusOK {
				t.Fatalf("login for the API: %d %s", jr.status, jr.raw)
			}
			jwt := jr.str("access_token")
			if status, _ := userinfoCall(t, e, "GET", "Bearer "+jwt); status != http.StatusOK {
				t.Fatalf("API token: %d, want 200", status)
			}
			var hdr struct{ Kid string }
			hb, _ := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[0])
			if err := json.Unmarshal(hb, &hdr); err != nil || hdr.Kid == "" {
				t.Fatalf("API token header %s: %v", hb, err)
			}
			if status, _ := e.api(t, "POST", "api/v2/keys/signing/rotate", nil); status != http.StatusCreated {
				t.Fatalf("rotate: %d", status)
			}
			// The Management API token in use has the key about to be revoked.
			e.mgmt = e.token2(t)
			if status, _ := userinfoCall(t, e, "GET", "Bearer "+jwt); status != http.StatusOK {
				t.Errorf("API token of the previous key: %d, want 200", status)
			}
			if status, _ := e.api(t, "PUT", "api/v2/keys/signing/"+hdr.Kid+"/revoke", nil); status != http.StatusOK {
				t.Fatalf("revoke: %d", status)
			}
			if status, authn := userinfoCall(t, e, "GET", "Bearer "+jwt); status != http.StatusUnauthorized || !strings.Contains(authn, `error="invalid_token"`) {
				t.Errorf("API token of a revoked key: %d %q, want 401 invalid_token", status, authn)
			}
			// The opaque token is sealed under the master key, not signed:
			// revoking a signing key leaves it alone.
			if status, _ := userinfoCall(t, e, "GET", "Bearer "+at); status != http.StatusOK {
				t.Errorf("opaque token after a signing key's revocation: %d, want 200", status)
			}

			user := "api/v2/users/" + url.PathEscape(aliceID)
			if status, _ := e.api(t, "PATCH", user, map[string]any{"blocked": true}); status != http.StatusOK {
				t.Fatalf("block: %d", status)
			}
			if status, authn := userinfoCall(t, e, "GET", "Bearer "+at); status != http.StatusUnauthorized || !strings.Contains(authn, `error="invalid_token"`) {
				t.Errorf("blocked user: %d %q, want 401 invalid_token", status, authn)
			}
			if status, _ := e.api(t, "PATCH", user, map[string]any{"blocked": false}); status != http.StatusOK {
				t.Fatalf("unblock: %d", status)
			}
			if status, _ := userinfoCall(t, e, "GET", "Bearer "+at); status != http.StatusOK {
				t.Errorf("unblocked user: %d, want 200", status)
			}
			if status, _ := e.api(t, "DELETE", user, nil); status != http.StatusNoContent {
				t.Fatalf("delete: %d", status)
			}
			if status, authn := userinfoCall(t, e, "GET", "Bearer "+at); status != http.StatusUnauthorized || !strings.Contains(authn, `error="invalid_token"`) {
				t.Errorf("deleted user: %d %q, want 401 invalid_token", status, authn)
			}
		})
	}
}
