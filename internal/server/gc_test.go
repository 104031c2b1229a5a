package server_test

import (
	"runtime/debug"
	"testing"

	"github.com/gatehouse/gatehouse/internal/server"
)

func TestTuneGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })

	env := map[string]string{"GOGC": "250"}
	if p, fromEnv := server.TuneGC(func(k string) string { return env[k] }); p != "250" || !fromEnv {
		t.Fatalf("with GOGC=250: %q, %v", p, fromEnv)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC set: the target moved to %d; the runtime's reading of GOGC must stand", got)
	}

	if p, fromEnv := server.TuneGC(func(string) string { return "" }); p != "400" || fromEnv {
		t.Fatalf("without GOGC: %q, %v", p, fromEnv)
	}
	if got := debug.SetGCPercent(100); got != server.DefaultGCPercent {
		t.Fatalf("without GOGC: target %d, want %d", got, server.DefaultGCPercent)
	}
}

// TestTuneGCReportsTheTargetInForce: the runtime ignores a GOGC it cannot
// read and runs at 100, so the start-up line must say 100, not echo the
// variable as if it were in force; GOGC=off, or any negative target,
// says off. The runtime's reading stands.
func TestTuneGCReportsTheTargetInForce(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	for _, c := range []struct{ gogc, want string }{
		{"abc", "100"},
		{"400%", "100"},
		{" 200", "100"},
		{"250", "250"},
		{"+250", "250"},
		{"off", "off"},
		{"-5", "off"},
	} {
		if p, fromEnv := server.TuneGC(func(k string) string { return map[string]string{"GOGC": c.gogc}[k] }); p != c.want || !fromEnv {
			t.Errorf("GOGC=%q: reported %q, %v; want %q", c.gogc, p, fromEnv, c.want)
		}
		if got := debug.SetGCPercent(100); got != 100 {
			t.Fatalf("GOGC=%q: the target moved to %d", c.gogc, got)
		}
	}
}
