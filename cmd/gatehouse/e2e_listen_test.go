package main

import (
	"net"
	"os"
	"os/exec"
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

// TestServeDemoPrintedLines: the curl and `gatehouse try` lines the demo
// prints work as pasted into a shell (with the binary for `go run`), also
// when GATEHOUSE_ADDR asks for any free port: the issuer, and so every
// printed URL, names the port picked rather than 0.
func TestServeDemoPrintedLines(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the printed lines need %s: %v", tool, err)
		}
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd, out := launch(t, t.TempDir(), []string{"GATEHOUSE_ADDR=127.0.0.1:0", "GATEHOUSE_DATABASE=", "GATEHOUSE_ISSUER=",
		"GATEHOUSE_ADMIN_CLIENT_ID=", "GATEHOUSE_ADMIN_CLIENT_SECRET="}, "serve", "--demo")
	p := &process{cmd: cmd, output: out}
	waitOutput(t, p, demoReady)
	printed := out.String()
	block := func(from, to string) string {
		t.Helper()
		i := strings.Index(printed, from)
		j := strings.Index(printed[max(i, 0):], to)
		if i < 0 || j < 0 {
			t.Fatalf("no %q … %q in the demo's output:\n%s", from, to, printed)
		}
		return printed[i : i+j+len(to)]
	}
	curl := block("curl -s ", "scope='openid profile email'")
	try := strings.Replace(block("echo '", "--username alice@contoso.com"), "go run ./cmd/gatehouse", bin, 1)
	if strings.Contains(curl+try, ":0/") {
		t.Fatalf("the printed lines name port 0:\n%s\n%s", curl, try)
	}
	sh := func(line string) string {
		t.Helper()
		c := exec.Command("bash", "-c", line)
		// Only what the demo prints: no admin credentials of the test's own.
		c.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
		res, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("%s\n: %v\n%s", line, err, res)
		}
		return string(res)
	}
	if res := sh(curl); !strings.Contains(res, `"id_token":`) {
		t.Errorf("the printed curl line: %s", res)
	}
	if res := sh(try); !strings.Contains(res, "Signed in: waad|") {
		t.Errorf("the printed try line: %s", res)
	}
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := waitExit(t, p); err != nil {
		t.Errorf("exit after SIGINT: %v; output:\n%s", err, out.String())
	}
}
