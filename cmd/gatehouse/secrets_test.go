package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/secrets"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/server/servertest"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

func newKey(t *testing.T) (string, []byte) {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return hex.EncodeToString(k), k
}

// sealedBlobs reads every sealed blob through the rotation walk itself,
// changing nothing.
func sealedBlobs(t *testing.T, st *sqlstore.Store) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	if _, err := st.RewrapSecrets(t.Context(), func(aad, blob []byte) ([]byte, error) {
		out[string(aad)] = bytes.Clone(blob)
		return blob, nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func rotate(t *testing.T, dsn, newKey, oldKeys, stdin string) (string, error) {
	t.Helper()
	t.Setenv("GATEHOUSE_DATABASE", dsn)
	t.Setenv("GATEHOUSE_SECRET_KEY", newKey)
	t.Setenv("GATEHOUSE_SECRET_KEY_OLD", oldKeys)
	cmd := newRootCmd()
	args := []string{"secrets", "rotate-master-key"}
	if stdin != "" {
		args = append(args, "--stdin")
		cmd.SetIn(strings.NewReader(stdin))
	}
	cmd.SetArgs(args)
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// TestRotateMasterKey: secrets are sealed at rest (a raw read of the
// database finds none in clear); a rotation with the wrong old key fails
// loudly and changes nothing; a rotation while the server runs re-wraps
// every blob, after which only the new key opens them.
func TestRotateMasterKey(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			env := servertest.Start(t, b)
			dsn := env.Config.Database
			oldHex := env.Config.SecretKey
			tok := env.ManagementToken(t)
			connSecret := "canary-connection-secret-" + rand.Text()
			status, _, body := env.Do(t, "POST", "api/v2/connections", tok, map[string]any{
				"name": "contoso", "strategy": "waad",
				"options": map[string]any{"client_id": "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b", "client_secret": connSecret, "tenant_domain": "contoso.onmicrosoft.com"},
			})
			if status != http.StatusCreated {
				t.Fatalf("create connection: %d %s", status, body)
			}
			status, _, body = env.Do(t, "POST", "api/v2/clients", tok, map[string]any{"name": "Backend", "app_type": "regular_web"})
			var client struct {
				ClientSecret string `json:"client_secret"`
			}
			if status != http.StatusCreated || json.Unmarshal(body, &client) != nil || client.ClientSecret == "" {
				t.Fatalf("create client: %d %s", status, body)
			}

			st, err := sqlstore.Open(t.Context(), dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			old, _ := secrets.ParseMasterKey(oldHex)
			oldRing, _ := secrets.NewKeyring(old)
			idpToken := "canary-upstream-refresh-token-" + rand.Text()
			sealed, err := oldRing.Seal([]byte(`{"refresh_token":"`+idpToken+`"}`), store.UserIdPTokensAAD("waad|u1"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.UpsertUser(t.Context(), &store.User{UserID: "waad|u1", Connection: "contoso", Email: "u1@contoso.com", IdPTokensEnc: sealed}); err != nil {
				t.Fatal(err)
			}

			canaries := []string{connSecret, client.ClientSecret, env.AdminSecret, idpToken, oldHex}
			if found := storetest.RawContains(t, dsn, canaries...); len(found) > 0 {
				t.Fatalf("secrets in clear in the database: %q", found)
			}

			before := sealedBlobs(t, st)
			// clients ×2 (admin, Backend), connection, signing key(s), user.
			if len(before) < 5 {
				t.Fatalf("%d sealed blobs, want at least 5", len(before))
			}
			newHex, newRaw := newKey(t)
			wrongHex, _ := newKey(t)
			if out, err := rotate(t, dsn, newHex, wrongHex, ""); err == nil || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("rotation with the wrong old key: %v (%s)", err, out)
			}
			after := sealedBlobs(t, st)
			for aad, blob := range before {
				if !bytes.Equal(after[aad], blob) {
					t.Fatalf("a failed rotation changed %s", aad)
				}
			}
			if out, err := rotate(t, dsn, "", "", "\n"+wrongHex+"\n"+newHex+"\n"); err == nil {
				t.Fatalf("--stdin rotation with the wrong old key succeeded: %s", out)
			}

			// Online: the server keeps running during the rotation.
			out, err := rotate(t, dsn, "", "", oldHex+"\n"+newHex+"\n")
			if err != nil {
				t.Fatalf("rotation: %v (%s)", err, out)
			}
			if strings.Contains(out, newHex) || strings.Contains(out, oldHex) {
				t.Fatalf("the command printed a key: %s", out)
			}
			newRing, _ := secrets.NewKeyring(newRaw)
			rotated := sealedBlobs(t, st)
			for aad, blob := range rotated {
				if _, err := newRing.Open(blob, []byte(aad)); err != nil {
					t.Fatalf("%s does not open with the new key alone: %v", aad, err)
				}
			}
			if found := storetest.RawContains(t, dsn, append(canaries, newHex)...); len(found) > 0 {
				t.Fatalf("secrets in clear after rotation: %q", found)
			}

			// The old key alone no longer starts Gatehouse; the new one does.
			cfg := *env.Config
			cfg.AdminClientID, cfg.AdminClientSecret = "", ""
			if _, err := server.New(t.Context(), &cfg, server.NewLogger(io.Discard, "text", "error"), io.Discard); err == nil ||
				!strings.Contains(err.Error(), "GATEHOUSE_SECRET_KEY does not match") {
				t.Fatalf("start with the old key: %v", err)
			}
			cfg.SecretKey = newHex
			srv, err := server.New(t.Context(), &cfg, server.NewLogger(io.Discard, "text", "error"), io.Discard)
			if err != nil {
				t.Fatalf("start with the new key: %v", err)
			}
			srv.Close()
		})
	}
}

// TestRotateMasterKeyRowRewrittenMeanwhile: a process that rewrites a
// sealed row while the rotation runs (a replica not yet restarted with the
// new key, or one sealing under a key the rotation was not given) must
// not leave it behind under a key the operator is about to drop: the
// rotation re-wraps it, or fails and says to keep the old key. On
// PostgreSQL the writer holds the row until the rotation waits on it, so
// the rotation's compare-and-swap misses; on SQLite the writer holds the
// write lock and the rotation sees its row once it commits.
func TestRotateMasterKeyRowRewrittenMeanwhile(t *testing.T) {
	for _, b := range storetest.Backends() {
		for _, tc := range []struct {
			name        string
			writerKnown bool // the writer seals under the old key, which the rotation holds
		}{
			{"replica on the old key", true},
			{"replica on a key not given", false},
		} {
			t.Run(b+"/"+tc.name, func(t *testing.T) {
				env := servertest.Start(t, b)
				dsn := env.Config.Database
				oldHex := env.Config.SecretKey
				tok := env.ManagementToken(t)
				status, _, body := env.Do(t, "POST", "api/v2/clients", tok, map[string]any{"name": "Backend", "app_type": "regular_web"})
				var client struct {
					ClientID string `json:"client_id"`
				}
				if status != http.StatusCreated || json.Unmarshal(body, &client) != nil {
					t.Fatalf("create client: %d %s", status, body)
				}
				target := string(store.ClientSecretAAD(client.ClientID))
				old, _ := secrets.ParseMasterKey(oldHex)
				writerRing, _ := secrets.NewKeyring(old)
				if !tc.writerKnown {
					_, other := newKey(t)
					writerRing, _ = secrets.NewKeyring(other, old)
				}

				writer, err := sqlstore.Open(t.Context(), dsn, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer writer.Close()
				holding, release := make(chan struct{}), make(chan struct{})
				writerDone := make(chan error, 1)
				go func() {
					first := true
					_, err := writer.RewrapSecrets(context.Background(), func(aad, blob []byte) ([]byte, error) {
						if string(aad) == target {
							return writerRing.Rewrap(blob, aad)
						}
						// Clients come first: the target row is updated, and
						// the transaction holding it stays open until released.
						if !strings.HasPrefix(string(aad), "client_secret:") && first {
							first = false
							close(holding)
							<-release
						}
						return blob, nil
					})
					writerDone <- err
				}()
				<-holding

				newHex, newRaw := newKey(t)
				t.Setenv("GATEHOUSE_DATABASE", dsn)
				t.Setenv("GATEHOUSE_SECRET_KEY", newHex)
				t.Setenv("GATEHOUSE_SECRET_KEY_OLD", oldHex)
				type result struct {
					out string
					err error
				}
				rotated := make(chan result, 1)
				go func() {
					cmd := newRootCmd()
					cmd.SetArgs([]string{"secrets", "rotate-master-key"})
					var out bytes.Buffer
					cmd.SetOut(&out)
					cmd.SetErr(&out)
					err := cmd.ExecuteContext(context.Background())
					rotated <- result{out.String(), err}
				}()
				waitForLockWait(t, b, dsn)
				close(release)
				if err := <-writerDone; err != nil {
					t.Fatal(err)
				}
				res := <-rotated

				st, err := sqlstore.Open(t.Context(), dsn, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				newRing, _ := secrets.NewKeyring(newRaw)
				if tc.writerKnown {
					if res.err != nil {
						t.Fatalf("rotation: %v (%s)", res.err, res.out)
					}
					for aad, blob := range sealedBlobs(t, st) {
						if _, err := newRing.Open(blob, []byte(aad)); err != nil {
							t.Fatalf("rotation succeeded but %s does not open with the new key alone: %v", aad, err)
						}
					}
					return
				}
				if res.err == nil || !strings.Contains(res.err.Error(), "GATEHOUSE_SECRET_KEY_OLD") {
					t.Fatalf("rotation with a row sealed under a key not given: %v (%s)", res.err, res.out)
				}
				// Whatever the rotation did, every blob still opens with the
				// keys in play.
				allRing, _ := secrets.NewKeyring(newRaw, old)
				for aad, blob := range sealedBlobs(t, st) {
					if _, err := allRing.Open(blob, []byte(aad)); err != nil && aad != target {
						t.Fatalf("%s: %v", aad, err)
					}
				}
			})
		}
	}
}

// waitForLockWait returns once another session waits on a lock
// (PostgreSQL), or after a pause long enough for the rotation to queue on
// SQLite's write lock, where waiting cannot be observed.
func waitForLockWait(t *testing.T, backend, dsn string) {
	t.Helper()
	if backend != storetest.Postgres {
		time.Sleep(300 * time.Millisecond)
		return
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var n int
		if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'UPDATE clients SET secret_enc%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
	}
	t.Fatal("the rotation never waited on the writer's row")
}

// TestRotateMasterKeyKilled kills the real `gatehouse secrets
// rotate-master-key` mid-rotation, while a server runs, and finds every
// secret still sealed under the old key alone, then lets a rerun finish and
// finds every secret under the new key alone. On PostgreSQL the kill is
// deterministic: a session holds the last user row, so the rotation has
// rewritten every other row and waits on that one when it dies. On SQLite,
// where the rotation's writes cannot be observed before it commits, it is
// killed at a spread of moments into a run over many rows.
func TestRotateMasterKeyKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			env := servertest.Start(t, b)
			dsn, oldHex := env.Config.Database, env.Config.SecretKey
			old, _ := secrets.ParseMasterKey(oldHex)
			oldRing, _ := secrets.NewKeyring(old)
			st, err := sqlstore.Open(t.Context(), dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			users := 50
			if b == storetest.SQLite {
				users = 1500
			}
			last := ""
			for i := range users {
				last = fmt.Sprintf("waad|u%05d", i)
				sealed, err := oldRing.Seal([]byte(`{"refresh_token":"rt-`+last+`"}`), store.UserIdPTokensAAD(last))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := st.UpsertUser(t.Context(), &store.User{UserID: last, Connection: "contoso", Email: fmt.Sprintf("u%d@contoso.com", i), IdPTokensEnc: sealed}); err != nil {
					t.Fatal(err)
				}
			}
			newHex, newRaw := newKey(t)
			newRing, _ := secrets.NewKeyring(newRaw)
			rotation := func() *exec.Cmd {
				cmd := exec.Command(bin, "secrets", "rotate-master-key")
				cmd.Env = append(os.Environ(), "GATEHOUSE_DATABASE="+dsn, "GATEHOUSE_SECRET_KEY="+newHex, "GATEHOUSE_SECRET_KEY_OLD="+oldHex)
				return cmd
			}
			// allUnder fails unless ring alone opens every sealed blob.
			allUnder := func(ring *secrets.Keyring, which string) {
				t.Helper()
				blobs := sealedBlobs(t, st)
				if len(blobs) < users+2 {
					t.Fatalf("%d sealed blobs, want at least %d", len(blobs), users+2)
				}
				for aad, blob := range blobs {
					if _, err := ring.Open(blob, []byte(aad)); err != nil {
						t.Fatalf("%s does not open with the %s key alone: %v", aad, which, err)
					}
				}
			}

			if b == storetest.Postgres {
				db, err := sql.Open("pgx", dsn)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				hold, err := db.BeginTx(t.Context(), nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := hold.ExecContext(t.Context(), "SELECT 1 FROM users WHERE user_id = $1 FOR UPDATE", last); err != nil {
					t.Fatal(err)
				}
				cmd := rotation()
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				waitForPG(t, db, "UPDATE users SET idp_tokens_enc%", true)
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				if err := hold.Rollback(); err != nil {
					t.Fatal(err)
				}
				// The dead client's session ends once it has a reply to send.
				waitForPG(t, db, "UPDATE users SET idp_tokens_enc%", false)
				allUnder(oldRing, "old")
			} else {
				for _, delay := range []time.Duration{0, 300 * time.Millisecond, 700 * time.Millisecond, 1200 * time.Millisecond, 1700 * time.Millisecond} {
					cmd := rotation()
					if err := cmd.Start(); err != nil {
						t.Fatal(err)
					}
					time.Sleep(delay)
					_ = cmd.Process.Kill()
					if err := cmd.Wait(); err == nil {
						t.Logf("the rotation finished within %v, before the kill", delay)
						allUnder(newRing, "new")
						return
					}
					if !opensAll(t, st, oldRing) {
						// Killed after its commit: then the new key opens all.
						t.Logf("killed after %v, once the rotation had committed", delay)
						allUnder(newRing, "new")
						return
					}
				}
			}
			start := time.Now()
			if out, err := rotation().CombinedOutput(); err != nil || !strings.Contains(string(out), "re-wrapped") {
				t.Fatalf("rotation after the kill: %v\n%s", err, out)
			}
			t.Logf("a whole rotation took %v", time.Since(start))
			allUnder(newRing, "new")
		})
	}
}

// opensAll reports whether ring alone opens every sealed blob.
func opensAll(t *testing.T, st *sqlstore.Store, ring *secrets.Keyring) bool {
	t.Helper()
	for aad, blob := range sealedBlobs(t, st) {
		if _, err := ring.Open(blob, []byte(aad)); err != nil {
			return false
		}
	}
	return true
}

// waitForPG waits until a session of this database runs a statement like
// query and waits on a lock (waiting), or until none runs it (!waiting).
func waitForPG(t *testing.T, db *sql.DB, query string, waiting bool) {
	t.Helper()
	q := `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE $1`
	if waiting {
		q += ` AND wait_event_type = 'Lock'`
	} else {
		q += ` AND state <> 'idle'`
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var n int
		if err := db.QueryRowContext(t.Context(), q, query).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if (n > 0) == waiting {
			return
		}
	}
	t.Fatalf("no session in the expected state for %q (waiting %v)", query, waiting)
}

// TestRotateMasterKeyMissingDatabase: a mistyped SQLite path fails, names
// the setting, and creates no file.
func TestRotateMasterKeyMissingDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "typo.db")
	k1, _ := newKey(t)
	k2, _ := newKey(t)
	out, err := rotate(t, "sqlite:"+path, k1, k2, "")
	if err == nil || !strings.Contains(err.Error(), "GATEHOUSE_DATABASE") {
		t.Fatalf("rotation of a missing database: %v (%s)", err, out)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the failed rotation left %s behind: %v", path, err)
	}
}

// TestDatabaseFlagPassword: serve and migrate refuse a --database DSN with
// a password, fail, and do not repeat it.
func TestDatabaseFlagPassword(t *testing.T) {
	for _, args := range [][]string{
		{"migrate", "--database", "postgres://gh:canary-pw@127.0.0.1:1/gatehouse"},
		{"serve", "--database", "postgres://gh:canary-pw@127.0.0.1:1/gatehouse"},
	} {
		t.Run(args[0], func(t *testing.T) {
			t.Setenv("GATEHOUSE_SECRET_KEY", strings.Repeat("ab", 32))
			cmd := newRootCmd()
			cmd.SetArgs(args)
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			err := cmd.ExecuteContext(t.Context())
			if err == nil || !strings.Contains(err.Error(), "--database: the DSN holds a password") {
				t.Fatalf("%s: %v (%s)", args[0], err, out.String())
			}
			if strings.Contains(err.Error()+out.String(), "canary-pw") {
				t.Fatalf("%s repeated the password: %v %s", args[0], err, out.String())
			}
		})
	}
}

// TestTryRefusesPasswordFlag: `try --password` fails, says why, does not
// repeat the password, and contacts nothing.
func TestTryRefusesPasswordFlag(t *testing.T) {
	cmd := newRootCmd()
	cmd.SetArgs([]string{"try", "contoso", "--username", "alice@contoso.com", "--url", "http://127.0.0.1:1/", "--password", "canary-pw"})
	cmd.SetIn(strings.NewReader("canary-pw\n"))
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	err := cmd.ExecuteContext(t.Context())
	if err == nil || !strings.Contains(err.Error(), "--password: the password is never a flag") {
		t.Fatalf("try --password: %v (%s)", err, out.String())
	}
	if strings.Contains(err.Error()+out.String(), "canary-pw") {
		t.Fatalf("try repeated the password: %v %s", err, out.String())
	}
}

// TestTryDefaultURL: without --url or GATEHOUSE_ISSUER, try calls the
// issuer serve derives from GATEHOUSE_ADDR, localhost for a wildcard
// host, rather than refusing 0.0.0.0 as a host that is not loopback.
func TestTryDefaultURL(t *testing.T) {
	t.Setenv("GATEHOUSE_ISSUER", "")
	t.Setenv("GATEHOUSE_TLS_CERT", "")
	t.Setenv("GATEHOUSE_ADMIN_CLIENT_ID", "admin")
	t.Setenv("GATEHOUSE_ADMIN_CLIENT_SECRET", "canary-admin-secret-0123456789abcdef")
	for _, addr := range []string{"0.0.0.0:1", ":1"} {
		t.Setenv("GATEHOUSE_ADDR", addr)
		_, _, err := runCLI(t, "canary-pw\n", "try", "contoso", "--username", "alice@contoso.com")
		if err == nil || !strings.Contains(err.Error(), `"http://localhost:1/oauth/token"`) {
			t.Errorf("GATEHOUSE_ADDR=%s: %v, want a call to http://localhost:1/", addr, err)
		}
	}
}

// TestCLIRefusesCleartextURL: the commands that send the admin secret or
// a user's password refuse http:// to a host other than loopback, before
// reading or sending any secret.
func TestCLIRefusesCleartextURL(t *testing.T) {
	var hits atomic.Int32
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) })}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	// A non-loopback name that resolves to the listener would need DNS;
	// what matters is that nothing is sent, so any host will do.
	remote := "http://gatehouse.example.com:" + strings.Split(l.Addr().String(), ":")[1] + "/"
	t.Setenv("GATEHOUSE_ADMIN_CLIENT_ID", "admin")
	t.Setenv("GATEHOUSE_ADMIN_CLIENT_SECRET", "canary-admin-secret-0123456789abcdef")
	for _, args := range [][]string{
		{"try", "contoso", "--username", "alice@contoso.com", "--url", remote},
		{"apps", "list", "--url", remote},
		{"connections", "list", "--url", remote},
	} {
		t.Run(args[0], func(t *testing.T) {
			cmd := newRootCmd()
			cmd.SetArgs(args)
			cmd.SetIn(strings.NewReader("canary-pw\n"))
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			err := cmd.ExecuteContext(t.Context())
			if err == nil || !strings.Contains(err.Error(), "--url: http:// is allowed only for loopback hosts") {
				t.Fatalf("%v: %v (%s)", args, err, out.String())
			}
		})
	}
	if hits.Load() != 0 {
		t.Fatalf("%d requests reached the server", hits.Load())
	}
	// Loopback stays allowed: the request goes out (and fails on this stub).
	cmd := newRootCmd()
	cmd.SetArgs([]string{"apps", "list", "--url", "http://" + l.Addr().String() + "/"})
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	if err := cmd.ExecuteContext(t.Context()); err != nil && strings.Contains(err.Error(), "--url") {
		t.Fatalf("loopback refused: %v", err)
	}
	if hits.Load() == 0 {
		t.Fatal("the loopback URL was not called")
	}
}
