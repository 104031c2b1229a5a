package entra

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzParseTokenResponse: any upstream body is parsed or refused, never
// a panic.
func FuzzParseTokenResponse(f *testing.F) {
	f.Add([]byte(`{"token_type":"Bearer","access_token":"a","expires_in":"3599","expires_on":"1700000000"}`))
	f.Add([]byte(`{"access_token":"a","expires_in":3599,"ext_expires_in":1e30}`))
	f.Add([]byte(`{"access_token":"","id_token":"x"}`))
	f.Add([]byte(`<html>gateway timeout</html>`))
	f.Add([]byte(`{"access_token":"a","expires_in":"12","expires_in":7,"Scope":"x","scope":"y"}`))
	f.Add([]byte(` {"access_token":"a\u0041","id_token":"\u00e9","not_before":-0,"resource":1} `))
	f.Fuzz(func(t *testing.T, raw []byte) {
		tr, err := parseTokenResponse(raw, time.Unix(1700000000, 0))
		if err == nil && tr.AccessToken == "" {
			t.Fatal("accepted a response without access_token")
		}
		// The one-pass reader answers only what encoding/json answers.
		if fast, ok := parseTokenWire(raw); ok {
			var std tokenWire
			if err := json.Unmarshal(raw, &std); err != nil || fast != std {
				t.Fatalf("parseTokenWire read %+v; encoding/json: %+v, %v", fast, std, err)
			}
		}
	})
}

// FuzzNewError: any error answer (JSON, HTML, garbage; any Retry-After)
// yields a classified *Error whose message carries no description text,
// which may echo the username.
func FuzzNewError(f *testing.F) {
	f.Add(400, []byte(`{"error":"invalid_grant","error_description":"AADSTS50126: Error validating credentials","error_codes":[50126],"trace_id":"t","correlation_id":"c"}`), "")
	f.Add(429, []byte(`{"error":"temporarily_unavailable"}`), "120")
	f.Add(503, []byte(`<html>Service Unavailable</html>`), "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add(400, []byte(`{"claims":{"access_token":{}},"error_codes":"x"}`), "-1")
	f.Fuzz(func(t *testing.T, status int, body []byte, retryAfter string) {
		resp := &http.Response{StatusCode: status, Header: http.Header{}}
		if retryAfter != "" {
			resp.Header.Set("Retry-After", retryAfter)
		}
		e := newError(resp, body)
		if e == nil {
			t.Fatal("nil error")
		}
		msg := e.Error()
		if e.Description != "" && len(e.Description) > 20 && strings.Contains(msg, e.Description) {
			t.Fatalf("message carries the description: %q", msg)
		}
	})
}

// FuzzParseKeys: any JWKS body is parsed or refused, never a panic.
func FuzzParseKeys(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"RSA","use":"sig","kid":"k","n":"sXch","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","kid":"k"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		keys, err := parseKeys(body)
		if err == nil && len(keys) == 0 {
			t.Fatal("no keys and no error")
		}
	})
}
