package secrets

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestParseMasterKey(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(0xf0 + i) // exercises '+/' vs '-_' in base64
	}
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"hex lower", hex.EncodeToString(key), true},
		{"hex upper", strings.ToUpper(hex.EncodeToString(key)), true},
		{"base64 std", base64.StdEncoding.EncodeToString(key), true},
		{"base64 raw std", base64.RawStdEncoding.EncodeToString(key), true},
		{"base64 url", base64.URLEncoding.EncodeToString(key), true},
		{"base64 raw url", base64.RawURLEncoding.EncodeToString(key), true},
		{"surrounding whitespace", "  " + hex.EncodeToString(key) + "\n", true},
		{"empty", "", false},
		{"blank", " \t\n", false},
		{"hex 31 bytes", hex.EncodeToString(key[:31]), false},
		{"hex 33 bytes", hex.EncodeToString(append(bytes.Clone(key), 1)), false},
		{"base64 16 bytes", base64.StdEncoding.EncodeToString(key[:16]), false},
		{"base64 48 bytes", base64.StdEncoding.EncodeToString(append(bytes.Clone(key), key[:16]...)), false},
		{"not encoded", "correct horse battery staple!!", false},
		{"hex with bad digit", "zz" + hex.EncodeToString(key)[2:], false},
		{"all zeros", hex.EncodeToString(make([]byte, 32)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMasterKey(tt.in)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, key) {
					t.Fatalf("got %x", got)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %q", tt.in)
			}
			if !strings.HasPrefix(err.Error(), "secrets: ") {
				t.Errorf("error %q lacks prefix", err)
			}
			if s := strings.TrimSpace(tt.in); len(s) > 8 && strings.Contains(err.Error(), s) {
				t.Errorf("error echoes the key: %v", err)
			}
		})
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db.key")
	key, created, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !created || len(key) != 32 {
		t.Fatalf("created=%v len=%d", created, len(key))
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %04o, want 0600", fi.Mode().Perm())
		}
	}
	again, created, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if created || !bytes.Equal(again, key) {
		t.Fatalf("second load: created=%v same=%v", created, bytes.Equal(again, key))
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestLoadOrCreateKeyFileRefusesOpenPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("permission bits are synthetic on Windows")
	}
	path := filepath.Join(t.TempDir(), "k")
	if _, _, err := LoadOrCreateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644, 0o660} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadOrCreateKeyFile(path)
		if err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: err = %v", mode, err)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKeyFile(path); err != nil {
		t.Errorf("mode 0400 refused: %v", err)
	}
}

func TestLoadOrCreateKeyFileReadsOperatorKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	key := bytes.Repeat([]byte{0xab}, 32)
	if err := os.WriteFile(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, created, err := LoadOrCreateKeyFile(path)
	if err != nil || created || !bytes.Equal(got, key) {
		t.Fatalf("got %x created=%v err=%v", got, created, err)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKeyFile(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("garbage key file: err = %v", err)
	}
}

func TestLoadOrCreateKeyFileConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	const n = 16
	keys := make([][]byte, n)
	errs := make([]error, n)
	createdCount := 0
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k, created, err := LoadOrCreateKeyFile(path)
			keys[i], errs[i] = k, err
			if created {
				mu.Lock()
				createdCount++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatal("racing creators got different keys")
		}
	}
	if createdCount != 1 {
		t.Errorf("%d callers report creating the key", createdCount)
	}
}

func TestLoadOrCreateKeyFileMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope", "k")
	if _, _, err := LoadOrCreateKeyFile(path); err == nil {
		t.Error("created a key file in a missing directory")
	}
}
