package main

import (
	"fmt"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestSecondSignalEndsTheDrain: the first SIGTERM lets in-flight requests
// finish within GATEHOUSE_SHUTDOWN_TIMEOUT; a second one ends the process
// at once, as it would without a handler, so that an operator is not held
// for the whole timeout by a request that will not finish.
func TestSecondSignalEndsTheDrain(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	cmd, out := launch(t, dir, []string{"GATEHOUSE_ADDR=" + addr, "GATEHOUSE_DATABASE=sqlite:" + filepath.Join(dir, "gatehouse.db"),
		"GATEHOUSE_SHUTDOWN_TIMEOUT=60s"}, "serve")
	waitReady(t, &process{cmd: cmd, output: out, base: "http://" + addr + "/"})
	// A token request whose body never completes: in flight until the
	// server's 30 s read limit.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=")
	time.Sleep(200 * time.Millisecond)
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		t.Fatalf("exited on the first SIGTERM with a request in flight; output:\n%s", out.String())
	case <-time.After(time.Second):
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatalf("still running 5 s after a second SIGTERM; output:\n%s", out.String())
	}
}
