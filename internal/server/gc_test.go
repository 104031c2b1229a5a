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
