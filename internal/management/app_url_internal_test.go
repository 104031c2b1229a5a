package management

import (
	"strings"
	"testing"
)

// TestAppURLErrorHidesCredentials: a refused application URL is echoed so
// that the administrator sees what was read, but never a password or a
// token pasted with it: in the user info, in user info typed without the
// "//" (parsed as the path or the opaque part), or in the fragment.
func TestAppURLErrorHidesCredentials(t *testing.T) {
	for _, tc := range []struct {
		in     string
		native bool
		shown  string
	}{
		{"https://u:TopSecret@app.example/cb", false, `"https://app.example/cb"`},
		{"https://TopSecret@app.example/cb#x", false, `"https://app.example/cb"`},
		{"https://app.example/cb#access_token=TopSecret", false, `"https://app.example/cb"`},
		{"https://app.example/cb?x=1#TopSecret", false, `"https://app.example/cb?x=1"`},
		{"https:/u:TopSecret@app.example/cb", false, `"https:…"`},
		{"https:u:TopSecret@app.example/cb", false, `"https:…"`},
		{"https:///u:TopSecret@app.example/cb?x=1", false, `"https:…"`},
		{"com.example.app:u:TopSecret@cb", false, `"com.example.app:…"`},
		{"com.example.app://cb#TopSecret", true, `"com.example.app://cb"`},
		{"https://*.*.app.example/cb", false, `"https://*.*.app.example/cb"`},
	} {
		got := checkAppURL(tc.in, tc.native, false)
		if got == "" || strings.Contains(got, "TopSecret") || !strings.Contains(got, tc.shown) {
			t.Errorf("checkAppURL(%q): %q; want a refusal showing %s and not the secret", tc.in, got, tc.shown)
		}
	}
}
