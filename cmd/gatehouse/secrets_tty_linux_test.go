package main

import (
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/gatehouse/gatehouse/internal/server/servertest"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// openPTY opens a pseudo-terminal pair with the standard library only.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	var unlock int32
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatalf("unlock pty: %v", e)
	}
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatalf("pty number: %v", e)
	}
	tty, err = os.OpenFile("/dev/pts/"+strings.TrimSpace(itoa(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	return master, tty
}

func echoOn(t *testing.T, tty *os.File) bool {
	t.Helper()
	var tio syscall.Termios
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, tty.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&tio))); e != 0 {
		t.Fatalf("tcgets: %v", e)
	}
	return tio.Lflag&syscall.ECHO != 0
}

func itoa(n uint32) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		if n /= 10; n == 0 {
			return string(b)
		}
	}
}

// TestRotateMasterKeyStdinTerminal: `rotate-master-key --stdin` at a
// terminal asks for both keys with echo off, so that neither stays on the
// screen, and rotates with them.
func TestRotateMasterKeyStdinTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	env := servertest.Start(t, storetest.SQLite)
	oldHex := env.Config.SecretKey
	newHex, _ := newKey(t)
	master, tty := openPTY(t)
	var screen servertest.Buffer
	go func() { _, _ = io.Copy(&screen, master) }()

	cmd := exec.Command(bin, "secrets", "rotate-master-key", "--stdin")
	cmd.Env = append(os.Environ(), "GATEHOUSE_DATABASE="+env.Config.Database, "GATEHOUSE_SECRET_KEY=", "GATEHOUSE_SECRET_KEY_OLD=")
	var out servertest.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// waitFor waits for the prompt and for the terminal's echo to be off:
	// the prompt is written just before.
	waitFor := func(prompt string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), prompt) || echoOn(t, tty); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("no hidden prompt %q; output:\n%s", prompt, out.String())
			}
		}
	}
	waitFor("Old master key (input hidden)")
	_, _ = master.WriteString(oldHex + "\n")
	waitFor("New master key (input hidden)")
	_, _ = master.WriteString(newHex + "\n")
	if err := cmd.Wait(); err != nil || !strings.Contains(out.String(), "re-wrapped") {
		t.Fatalf("rotation: %v\n%s", err, out.String())
	}
	all := screen.String() + out.String()
	if strings.Contains(all, oldHex) || strings.Contains(all, newHex) {
		t.Fatalf("a key was echoed:\n%s", all)
	}
}

// startAtPrompt runs the binary with tty as its standard input and waits
// until it shows prompt with the terminal's echo off.
func startAtPrompt(t *testing.T, tty *os.File, env []string, prompt string, args ...string) (*exec.Cmd, *servertest.Buffer) {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &servertest.Buffer{}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), prompt) || echoOn(t, tty); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no hidden prompt %q; output:\n%s", prompt, out.String())
		}
	}
	return cmd, out
}

// TestHiddenPromptInterrupt: Ctrl-C at a hidden prompt ends the command
// and gives the terminal its echo back. main catches SIGINT (for the
// drain of serve), which left term.ReadPassword deaf to it: the prompt
// stayed, echo off, until Enter.
func TestHiddenPromptInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	for _, tc := range []struct {
		name, prompt string
		env, args    []string
	}{
		{"try", "Password for alice@contoso.com",
			[]string{"GATEHOUSE_ADMIN_CLIENT_ID=demo-admin", "GATEHOUSE_ADMIN_CLIENT_SECRET=" + strings.Repeat("s", 40)},
			[]string{"try", "contoso-demo", "--url", "http://127.0.0.1:1/", "--username", "alice@contoso.com"}},
		{"apps list", "Client secret of demo-admin (input hidden)",
			[]string{"GATEHOUSE_ADMIN_CLIENT_ID=demo-admin", "GATEHOUSE_ADMIN_CLIENT_SECRET=", "GATEHOUSE_TOKEN="},
			[]string{"apps", "list", "--url", "http://127.0.0.1:1/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			master, tty := openPTY(t)
			go func() { _, _ = io.Copy(io.Discard, master) }()
			cmd, out := startAtPrompt(t, tty, tc.env, tc.prompt, tc.args...)
			// What the terminal sends the foreground process on Ctrl-C.
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(out.String(), "interrupted") {
					t.Errorf("exit %v, want a failure saying interrupted; output:\n%s", err, out.String())
				}
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("still at the prompt 10 s after SIGINT; output:\n%s", out.String())
			}
			if !echoOn(t, tty) {
				t.Error("the terminal was left without echo")
			}
		})
	}
}

// TestTryTerminalRefusals: `try` at a terminal refuses an empty password
// before it calls Gatehouse, as it does on standard input, and asks for
// no password when the admin credentials it needs are missing.
func TestTryTerminalRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	args := []string{"try", "contoso-demo", "--url", "http://127.0.0.1:1/", "--username", "alice@contoso.com"}
	wait := func(t *testing.T, cmd *exec.Cmd, out *servertest.Buffer, want string) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(out.String(), want) {
				t.Errorf("exit %v, want a failure saying %q; output:\n%s", err, want, out.String())
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("still running after 10 s; output:\n%s", out.String())
		}
	}

	t.Run("empty password", func(t *testing.T) {
		master, tty := openPTY(t)
		go func() { _, _ = io.Copy(io.Discard, master) }()
		cmd, out := startAtPrompt(t, tty, []string{"GATEHOUSE_ADMIN_CLIENT_ID=demo-admin", "GATEHOUSE_ADMIN_CLIENT_SECRET=" + strings.Repeat("s", 40)},
			"Password for alice@contoso.com", args...)
		_, _ = master.WriteString("\n")
		wait(t, cmd, out, "no password typed")
	})

	t.Run("no admin credentials", func(t *testing.T) {
		master, tty := openPTY(t)
		go func() { _, _ = io.Copy(io.Discard, master) }()
		bin, err := buildBinary()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "GATEHOUSE_ADMIN_CLIENT_ID=", "GATEHOUSE_ADMIN_CLIENT_SECRET=")
		out := &servertest.Buffer{}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wait(t, cmd, out, "set GATEHOUSE_ADMIN_CLIENT_ID and GATEHOUSE_ADMIN_CLIENT_SECRET")
		if strings.Contains(out.String(), "Password for") {
			t.Errorf("asked for a password it could not use:\n%s", out.String())
		}
	})
}
