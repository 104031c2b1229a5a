package main

import (
	"net"
	"os"
	"strings"
	"testing"
)

// TestBusyPortChangesNothing: a start whose address is taken fails,
// naming GATEHOUSE_ADDR, before it opens the database: a second
// `serve --demo` beside a running one must not repoint the running demo's
// connection at its own emulator, nor a first `serve` generate an admin
// application and its credentials file for a server that never ran.
func TestBusyPortChangesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	for _, args := range [][]string{{"serve"}, {"serve", "--demo"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			dir := t.TempDir()
			cmd, out := launch(t, dir, []string{"GATEHOUSE_ADDR=" + addr, "GATEHOUSE_DATABASE="}, args...)
			if err := waitExit(t, &process{cmd: cmd, output: out}); err == nil {
				t.Fatalf("started on a busy port; output:\n%s", out.String())
			}
			if want := "GATEHOUSE_ADDR: listen tcp " + addr; !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "address already in use") {
				t.Errorf("the error does not say %q and why; output:\n%s", want, out.String())
			}
			files, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				t.Errorf("a start that could not listen left %s", f.Name())
			}
		})
	}
}
