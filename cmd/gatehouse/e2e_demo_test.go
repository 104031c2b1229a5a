package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// waitOutput waits until the process has written want.
func waitOutput(t *testing.T, p *process, want string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(p.output.String(), want); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output:\n%s", want, p.output.String())
		}
	}
}

// waitExit waits for the process to end and returns how it ended.
func waitExit(t *testing.T, p *process) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("gatehouse kept running; output:\n%s", p.output.String())
		return nil
	}
}

const demoReady = "Other users of the directory"

// TestServeDemoOwnDatabase: without a database setting the demo keeps to
// gatehouse-demo.db, never the gatehouse.db a real serve would use; named
// explicitly, that database holds only the demo's objects and the demo
// runs on it again; a real serve on it warns, naming demo-admin and never
// its secret.
func TestServeDemoOwnDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	dir := t.TempDir()
	demo := func(env ...string) (*process, string) {
		t.Helper()
		addr := freeAddr(t)
		cmd, out := launch(t, dir, append([]string{"GATEHOUSE_ADDR=" + addr}, env...), "serve", "--demo")
		p := &process{cmd: cmd, output: out, base: "http://" + addr + "/"}
		waitOutput(t, p, demoReady)
		m := regexp.MustCompile(`GATEHOUSE_ADMIN_CLIENT_SECRET=(\S+)`).FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("no demo-admin secret in the output:\n%s", out.String())
		}
		return p, m[1]
	}

	// An empty value is no setting, as for every GATEHOUSE_* variable; it
	// also keeps one from the environment of `go test` out.
	p, secret1 := demo("GATEHOUSE_DATABASE=")
	own := filepath.Join(dir, "gatehouse-demo.db")
	if _, err := os.Stat(own); err != nil {
		t.Errorf("the demo's own database: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "gatehouse.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the demo touched gatehouse.db, the database of a real serve: %v", err)
	}
	if !strings.Contains(p.output.String(), "in its own database, "+own+".") {
		t.Errorf("the demo does not say where its database is:\n%s", p.output.String())
	}
	p.stop(t)

	p, secret2 := demo("GATEHOUSE_DATABASE=sqlite:gatehouse-demo.db")
	p.stop(t)

	addr := freeAddr(t)
	cmd, out := launch(t, dir, []string{"GATEHOUSE_ADDR=" + addr, "GATEHOUSE_DATABASE=sqlite:gatehouse-demo.db", "GATEHOUSE_LOG_FORMAT=json"}, "serve")
	p = &process{cmd: cmd, output: out, base: "http://" + addr + "/"}
	waitReady(t, p)
	var warned bool
	for line := range strings.Lines(out.String()) {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["level"] == "WARN" && strings.HasPrefix(rec["msg"].(string), "DEMO OBJECTS") {
			warned = rec["client_id"] == demoAdminID && rec["connection"] == demoConnection
		}
	}
	if !warned {
		t.Errorf("serve on the demo's database gave no warning naming %s and %s:\n%s", demoAdminID, demoConnection, out.String())
	}
	if strings.Contains(out.String(), secret1) || strings.Contains(out.String(), secret2) {
		t.Errorf("serve logged a demo-admin secret")
	}
	p.stop(t)
}

// TestServeDemoRefusesForeignDatabase: a database named by
// GATEHOUSE_DATABASE or --database that holds an application or a
// connection the demo did not create is refused, with a message naming the
// setting and the override, and left as it was; --demo-on-any-database
// runs the demo on it.
func TestServeDemoRefusesForeignDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			key := "GATEHOUSE_SECRET_KEY=" + hex.EncodeToString([]byte(randomHex(16)))
			for _, tc := range []struct {
				name    string
				seed    func(st *sqlstore.Store) error
				flag    bool
				message string
			}{
				{"application", func(st *sqlstore.Store) error {
					return st.CreateClient(t.Context(), &store.Client{ClientID: "payroll-app-id", Name: "Payroll", AppType: "native",
						TokenEndpointAuthMethod: "none", GrantTypes: []string{"password"}, IsFirstParty: true})
				}, false, `demo: the database of GATEHOUSE_DATABASE holds objects the demo did not create (application "Payroll" (client_id payroll-app-id))`},
				{"connection, database by flag", func(st *sqlstore.Store) error {
					return st.CreateConnection(t.Context(), &store.Connection{ID: "con_corp", Name: "corp-entra", Strategy: "waad",
						Options: json.RawMessage(`{"tenant_domain":"corp.example"}`)})
				}, true, `demo: the database of --database holds objects the demo did not create (connection "corp-entra")`},
			} {
				t.Run(tc.name, func(t *testing.T) {
					dsn := storetest.DSN(t, backend)
					st, err := sqlstore.Open(t.Context(), dsn, nil)
					if err != nil {
						t.Fatal(err)
					}
					if err := st.Migrate(t.Context()); err == nil {
						err = tc.seed(st)
					}
					st.Close()
					if err != nil {
						t.Fatal(err)
					}
					run := func(extra ...string) *process {
						addr := freeAddr(t)
						env := []string{"GATEHOUSE_ADDR=" + addr, key, "GATEHOUSE_DATABASE=" + dsn}
						args := append([]string{"serve", "--demo"}, extra...)
						if tc.flag {
							env[2] = "GATEHOUSE_DATABASE="
							args = append(args, "--database", dsn)
						}
						cmd, out := launch(t, t.TempDir(), env, args...)
						return &process{cmd: cmd, output: out, base: "http://" + addr + "/"}
					}

					p := run()
					var exit *exec.ExitError
					if err := waitExit(t, p); !errors.As(err, &exit) || !strings.Contains(p.output.String(), tc.message) ||
						!strings.Contains(p.output.String(), "--demo-on-any-database") {
						t.Fatalf("serve --demo on a database with foreign objects: %v, want a refusal with %q:\n%s", err, tc.message, p.output.String())
					}
					st, err = sqlstore.Open(t.Context(), dsn, nil)
					if err != nil {
						t.Fatal(err)
					}
					defer st.Close()
					clients, _, err := st.ListClients(t.Context(), store.ListOptions{})
					if err != nil {
						t.Fatal(err)
					}
					conns, _, err := st.ListConnections(t.Context(), store.ConnectionFilter{}, store.ListOptions{})
					if err != nil {
						t.Fatal(err)
					}
					if len(clients)+len(conns) != 1 {
						t.Errorf("the refused demo changed the database: %d applications, %d connections, want the one seeded", len(clients), len(conns))
					}
					if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
						if _, err := os.Stat(path + ".key"); !errors.Is(err, os.ErrNotExist) {
							t.Errorf("the refused demo wrote a master key file: %v", err)
						}
					}

					p = run("--demo-on-any-database")
					waitOutput(t, p, demoReady)
					p.stop(t)
					if _, err := st.GetConnectionByName(t.Context(), demoConnection); err != nil {
						t.Errorf("the demo with --demo-on-any-database: %v", err)
					}
				})
			}
		})
	}
}
