//go:build unix

package sqlstore_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
)

// TestSQLiteFileModes: under the usual umask a new database and its -wal
// and -shm files are readable by the owner only; an existing file's mode
// is left alone, and reported when others may read it.
func TestSQLiteFileModes(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0o022))
	perm := func(p string) os.FileMode {
		t.Helper()
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}

	path := filepath.Join(t.TempDir(), "gatehouse.db")
	var logs bytes.Buffer
	s, err := sqlstore.Open(t.Context(), "sqlite:"+path, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if m := perm(p); m != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", filepath.Base(p), m)
		}
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("warned about a new database: %s", logs.String())
	}

	shared := filepath.Join(t.TempDir(), "shared.db")
	if err := os.WriteFile(shared, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	s2, err := sqlstore.Open(t.Context(), "sqlite:"+shared, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if m := perm(shared); m != 0o644 {
		t.Errorf("an existing file's mode changed to %04o", m)
	}
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "path="+shared) ||
		!strings.Contains(out, "chmod 600") || strings.Count(out, "level=WARN") != 1 {
		t.Errorf("want one warning naming %s and the fix; got:\n%s", shared, out)
	}
}
