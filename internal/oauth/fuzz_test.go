package oauth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzParseTokenRequest: any body, content type and Authorization header
// is parsed or refused with a 4xx, never a panic, and a refusal never
// echoes a parameter value (passwords and secrets travel as values).
func FuzzParseTokenRequest(f *testing.F) {
	f.Add("grant_type=password&username=u&password=p%40ss&client_id=c", "application/x-www-form-urlencoded", "")
	f.Add(`{"grant_type":"password","username":"u","password":"p","client_id":"c"}`, "application/json", "")
	f.Add(`{"password":{"x":1}}`, "application/json; charset=utf-8", "")
	f.Add("password=a&password=b", "application/x-www-form-urlencoded", "Basic Yzpz")
	f.Add(`{"password":"a","pass\u0077ord":"b"}`, "application/json", "")
	f.Add("grant_type=client_credentials", "application/x-www-form-urlencoded", "Basic %%%")
	f.Add("a=%zz", "text/plain", "Bearer x")
	f.Fuzz(func(t *testing.T, body, contentType, authz string) {
		r := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		tr, err := parseTokenRequest(httptest.NewRecorder(), r)
		if err != nil {
			var oe *Error
			if !errors.As(err, &oe) || oe.Status < 400 || oe.Status > 499 {
				t.Fatalf("refusal is not a 4xx *Error: %#v", err)
			}
			for _, secret := range []string{"p@ss-secret-value"} {
				if strings.Contains(oe.Description, secret) {
					t.Fatalf("description echoes a value: %q", oe.Description)
				}
			}
			return
		}
		for k, v := range tr.params {
			if len(v) != 1 {
				t.Fatalf("parameter %q has %d values", k, len(v))
			}
		}
	})
}
