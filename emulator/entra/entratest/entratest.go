// Package entratest runs the Entra ID emulator behind a loopback HTTP
// server for tests, on the example directory or one a test builds.
package entratest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/emulator/entra"
	"github.com/gatehouse/gatehouse/examples"
)

// Example returns a fresh copy of examples/entra-directory.yaml, which a
// test may change before starting the emulator on it.
func Example(t testing.TB) *entra.Directory {
	t.Helper()
	dir, err := entra.ParseDirectory(examples.EntraDirectory)
	if err != nil {
		t.Fatalf("entratest: example directory: %v", err)
	}
	return dir
}

// Start serves an emulator of dir until the test ends and returns it with
// its base URL. wrap, when not nil, wraps the emulator's handler, for
// tests that count or record what reaches the upstream.
func Start(t testing.TB, dir *entra.Directory, opts entra.Options, wrap func(http.Handler) http.Handler) (*entra.Server, string) {
	t.Helper()
	emu, err := entra.New(dir, opts)
	if err != nil {
		t.Fatalf("entratest: %v", err)
	}
	var h http.Handler = emu
	if wrap != nil {
		h = wrap(emu)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	emu.SetBaseURL(ts.URL)
	return emu, ts.URL
}
