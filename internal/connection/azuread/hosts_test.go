package azuread_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/connection/azuread"
)

func TestBaseURL(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"https://proxy.example.com", "https://proxy.example.com", ""},
		{"HTTPS://Proxy.Example.com:443/", "https://proxy.example.com", ""},
		{"https://proxy.example.com:8443", "https://proxy.example.com:8443", ""},
		{"http://127.0.0.1:9999", "http://127.0.0.1:9999", ""},
		{"http://localhost:80", "http://localhost", ""},
		{"http://[::1]:9000", "http://[::1]:9000", ""},
		{"http://proxy.example.com", "", "http:// is allowed only for loopback"},
		{"ftp://proxy.example.com", "", "must be an https:// URL"},
		{"proxy.example.com", "", "not a base URL"},
		{"https://proxy.example.com/entra", "", "without credentials, path"},
		{"https://u:p@proxy.example.com", "", "without credentials, path"},
		{"https://proxy.example.com/?x=1", "", "without credentials, path"},
		{"https://proxy.example.com#x", "", "without credentials, path"},
	} {
		got, err := azuread.BaseURL(tc.in)
		if tc.err == "" && (err != nil || got != tc.want) {
			t.Errorf("BaseURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("BaseURL(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.err)
		}
	}
}

// TestBaseURLErrorHidesCredentials: a refused URL is echoed so that the
// operator sees what was read, but never a password pasted with it, even
// typed without the "//" that makes it user info.
func TestBaseURLErrorHidesCredentials(t *testing.T) {
	for _, tc := range []struct{ in, shown string }{
		{"https://u:TopSecret@proxy.example.com", `"https://proxy.example.com"`},
		{"https://proxy.example.com/?k=TopSecret", `"https://proxy.example.com/"`},
		{"https:/u:TopSecret@proxy.example.com", `"https:/…"`},
		{"https:///u:TopSecret@proxy.example.com", `"https:/…"`},
		{"https://proxy.example.com/u:TopSecret@x", `"https://proxy.example.com/…"`},
		{"https://proxy.example.com/entra", `"https://proxy.example.com/entra"`},
	} {
		_, err := azuread.BaseURL(tc.in)
		if err == nil || strings.Contains(err.Error(), "TopSecret") || !strings.Contains(err.Error(), tc.shown) {
			t.Errorf("BaseURL(%q): %v; want an error showing %s and not the secret", tc.in, err, tc.shown)
		}
	}
}

func TestUpstreamHostsCheck(t *testing.T) {
	operator, err := azuread.NewUpstreamHosts([]string{"http://127.0.0.1:9999", "https://egress.corp.example"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name             string
		hosts            *azuread.UpstreamHosts
		authority, graph string
		prop             string // "" when allowed
	}{
		{"defaults", nil, "", "", ""},
		{"US Government", nil, "https://login.microsoftonline.us", "https://graph.microsoft.us", ""},
		{"US Government DoD", nil, "https://login.microsoftonline.us", "https://dod-graph.microsoft.us", ""},
		{"China", nil, "https://login.partner.microsoftonline.cn", "https://microsoftgraph.chinacloudapi.cn", ""},
		{"China, older name", nil, "https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn", ""},
		{"explicit default port", nil, "https://login.microsoftonline.com:443", "", ""},
		{"lookalike authority", nil, "https://login.microsoftonline.com.attacker.example", "", "authority_host"},
		{"other port", nil, "https://login.microsoftonline.com:8443", "", "authority_host"},
		{"Graph as authority", nil, "https://graph.microsoft.com", "", "authority_host"},
		{"authority as Graph", nil, "", "https://login.microsoftonline.com", "graph_host"},
		{"loopback is not special", nil, "http://127.0.0.1:9999", "", "authority_host"},
		{"path on a Microsoft host", nil, "https://login.microsoftonline.com/x", "", "authority_host"},
		{"operator's emulator", operator, "http://127.0.0.1:9999", "http://127.0.0.1:9999", ""},
		{"operator's proxy", operator, "https://EGRESS.corp.example", "https://egress.corp.example", ""},
		{"operator's emulator, other port", operator, "http://127.0.0.1:9998", "", "authority_host"},
		{"operator's list, other host", operator, "", "https://graph.attacker.example", "graph_host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &azuread.Options{AuthorityHost: tc.authority, GraphHost: tc.graph}
			o.Defaults()
			err := tc.hosts.Check(o)
			if tc.prop == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var oe *azuread.OptionError
			ok := errors.As(err, &oe)
			if !ok || oe.Property != tc.prop || !strings.Contains(oe.Reason, azuread.UpstreamHostsSetting) {
				t.Fatalf("err = %v, want an OptionError on %s naming %s", err, tc.prop, azuread.UpstreamHostsSetting)
			}
		})
	}
}
