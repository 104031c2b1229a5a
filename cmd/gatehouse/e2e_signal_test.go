package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/server/servertest"
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

// TestTryInterrupted: Ctrl-C while `try` waits for Gatehouse (an upstream
// that does not answer) ends it at once, not after its two-minute timeout.
func TestTryInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	called := make(chan struct{}, 1)
	release := make(chan struct{})
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case called <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer stub.Close()
	// Before Close, which waits for the handler: an unread body keeps it
	// from seeing the client leave.
	defer close(release)
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "try", "contoso-demo", "--url", stub.URL+"/", "--username", "alice@contoso.com")
	cmd.Env = append(os.Environ(), "GATEHOUSE_ADMIN_CLIENT_ID=admin", "GATEHOUSE_ADMIN_CLIENT_SECRET="+strings.Repeat("s", 40))
	cmd.Stdin = strings.NewReader("canary-pw\n")
	out := &servertest.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-called:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("try called nothing; output:\n%s", out.String())
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("an interrupted try exited 0; output:\n%s", out.String())
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("still waiting 10 s after SIGINT; output:\n%s", out.String())
	}
}
