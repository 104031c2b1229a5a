package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/server/servertest"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// generatedID is the form of the ids Gatehouse makes itself.
var generatedID = regexp.MustCompile(`^[0-9a-f]{24}$`)

// TestRequestID: an incoming X-Request-Id is kept only from a trusted
// proxy and only when short and plain; otherwise the request gets an id
// of Gatehouse's own. The response header and the log line carry the id
// kept, and nothing of a refused one reaches the log. Values go on the
// wire verbatim, as a client that does not check header values sends them.
func TestRequestID(t *testing.T) {
	trusted := servertest.Start(t, storetest.SQLite, func(c *config.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	untrusted := servertest.Start(t, storetest.SQLite)
	maxID := "edge-7:" + strings.Repeat("0123456789abcdef", 8)[:121]
	for _, tc := range []struct {
		name string
		env  *servertest.Env
		sent string
		// keep is the id answered and logged; "" for a generated one.
		keep string
		// leak is what of sent must not be logged.
		leak string
	}{
		{"plain, from a trusted proxy", trusted, "proxy-id.1_a", "proxy-id.1_a", ""},
		{"128 characters with a colon, from a trusted proxy", trusted, maxID, maxID, ""},
		{"plain, from a client", untrusted, "impersonated-id-1", "", "impersonated-id-1"},
		{"a tab", trusted, "tab-id\trequest_id=forged-tab", "", "forged-tab"},
		{"a folded line (a newline as Go's server passes it on)", trusted, "fold-id\r\n request_id=forged-fold", "", "forged-fold"},
		{"a byte that is not UTF-8", trusted, "bytes-id-\xff-forged-byte", "", "forged-byte"},
		{"spaces and quotes", trusted, `quoted id "forged-quote=1"`, "", "forged-quote"},
		{"129 characters", trusted, maxID + "x", "", maxID},
		// A proxy that adds its id (HAProxy's http-request add-header)
		// rather than replacing the client's puts it after the client's.
		{"two ids, the proxy's after the client's", trusted, "client-forged-id\r\nX-Request-Id: proxy-added-id", "", "client-forged-id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(tc.env.Logs.String())
			got := rawHealthz(t, tc.env.URL, tc.sent)
			if tc.keep != "" && got != tc.keep || tc.keep == "" && !generatedID.MatchString(got) {
				t.Errorf("X-Request-Id answered %q; want %q", got, tc.keep)
			}
			logs := tc.env.Logs.String()[before:]
			if tc.leak != "" && strings.Contains(logs, tc.leak) {
				t.Errorf("the log has the refused id's %q: %s", tc.leak, logs)
			}
			var access []string
			for line := range strings.Lines(logs) {
				var rec struct {
					Msg, Path string
					RequestID string `json:"request_id"`
				}
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("log line is not JSON: %q", line)
				}
				if rec.Msg == "request" && rec.Path == "/healthz" {
					access = append(access, rec.RequestID)
				}
			}
			if len(access) != 1 || access[0] != got {
				t.Errorf("access log request ids %q; want [%q]: %s", access, got, logs)
			}
		})
	}
}

// rawHealthz sends GET /healthz with id written verbatim as X-Request-Id
// and returns the X-Request-Id answered.
func rawHealthz(t *testing.T, base, id string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\nX-Request-Id: %s\r\nConnection: close\r\n\r\n", u.Host, id); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return resp.Header.Get("X-Request-Id")
}
