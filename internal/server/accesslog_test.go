package server

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestAccessLogPathCannotForgeLines: a path whose escapes decode to a
// newline, a carriage return or a terminal escape stays inside one quoted
// value of one access-log line, and a query string (here with a secret)
// is not logged at all.
func TestAccessLogPathCannotForgeLines(t *testing.T) {
	var logs syncBuffer
	base := servedOnLoopback(t, &logs)
	for _, path := range []string{
		"/%1b[31mred%0alevel=ERROR%20msg=forged-lf",
		"/api/v2/users/%0d%0alevel=ERROR%20msg=forged-crlf?client_secret=Query-Canary-Secret",
	} {
		c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	out := logs.String()
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "level=ERROR") || strings.Contains(line, "\x1b") || strings.Contains(line, "\r") {
			t.Errorf("forged or raw line: %q", line)
		}
	}
	if strings.Count(out, "forged-") != 2 || strings.Contains(out, "Query-Canary-Secret") {
		t.Errorf("want each path once, quoted, and no query string:\n%s", out)
	}
}
