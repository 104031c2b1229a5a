package entra

import (
	"encoding/json"
	"testing"
)

// Entra's own answers, v1 and v2, take the one-pass reader; what it does
// not read falls to encoding/json, with the same result.
func TestParseTokenWire(t *testing.T) {
	for _, c := range []struct {
		name string
		raw  string
		fast bool
	}{
		{"v2", `{"token_type":"Bearer","scope":"User.Read profile openid email","expires_in":3599,"ext_expires_in":3599,` +
			`"access_token":"eyJ0.eyJ1.c2ln","refresh_token":"0.AAAA","id_token":"eyJ0.eyJ2.c2ln"}`, true},
		{"v1", "{\"token_type\": \"Bearer\",\n \"scope\": \"User.Read\", \"expires_in\": \"3599\", \"ext_expires_in\": \"3599\"," +
			" \"expires_on\": \"1700003599\", \"not_before\": \"1699999699\", \"resource\": \"https://graph.microsoft.com\"," +
			" \"access_token\": \"eyJ0.eyJ1.c2ln\", \"refresh_token\": \"0.AAAA\", \"id_token\": \"eyJ0.eyJ2.c2ln\"}\r\n", true},
		{"empty object", `{}`, true},
		{"unknown keys", `{"access_token":"a","foo":"bar","n":12}`, true},
		{"an escape", `{"access_token":"a\/b"}`, false},
		{"a key in another case", `{"Access_Token":"a"}`, false},
		{"a fraction", `{"access_token":"a","expires_in":3599.5}`, false},
		{"a nested value", `{"access_token":"a","claims":{}}`, false},
		{"null", `{"access_token":"a","expires_in":null}`, false},
		{"trailing data", `{"access_token":"a"} x`, false},
		{"a number for a string", `{"access_token":1}`, false},
		{"invalid UTF-8", "{\"access_token\":\"a\xff\"}", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			fast, ok := parseTokenWire([]byte(c.raw))
			if ok != c.fast {
				t.Fatalf("one-pass reader took it: %v, want %v", ok, c.fast)
			}
			var std tokenWire
			err := json.Unmarshal([]byte(c.raw), &std)
			if ok && (err != nil || fast != std) {
				t.Fatalf("one pass %+v; encoding/json %+v, %v", fast, std, err)
			}
		})
	}
}
