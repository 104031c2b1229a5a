package secrets

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func testKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func newTestKeyring(t testing.TB, current []byte, olds ...[]byte) *Keyring {
	t.Helper()
	k, err := NewKeyring(current, olds...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpenRoundTrip(t *testing.T) {
	k := newTestKeyring(t, testKey(t))
	aad := []byte("client_secret:abc")
	for _, pt := range [][]byte{nil, {}, []byte("s"), bytes.Repeat([]byte("secret"), 1000)} {
		blob, err := k.Seal(pt, aad)
		if err != nil {
			t.Fatal(err)
		}
		if len(blob) != minBlobLen+len(pt) {
			t.Errorf("blob length %d, want %d", len(blob), minBlobLen+len(pt))
		}
		if len(pt) > 8 && bytes.Contains(blob, pt) {
			t.Error("plaintext visible in blob")
		}
		got, err := k.Open(blob, aad)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, pt) {
			t.Errorf("Open = %q, want %q", got, pt)
		}
	}
}

func TestSealIsRandomized(t *testing.T) {
	k := newTestKeyring(t, testKey(t))
	a, _ := k.Seal([]byte("same"), nil)
	b, _ := k.Seal([]byte("same"), nil)
	if bytes.Equal(a, b) {
		t.Error("two seals of the same plaintext are identical")
	}
}

func TestBlobHeader(t *testing.T) {
	key := testKey(t)
	k := newTestKeyring(t, key)
	blob, _ := k.Seal([]byte("x"), nil)
	if blob[0] != version {
		t.Errorf("version byte %d", blob[0])
	}
	id := fingerprint(key)
	if !bytes.Equal(blob[offKeyID:offWrapNonce], id[:]) {
		t.Error("blob does not carry the master key id")
	}
	if len(k.KeyID()) != 16 {
		t.Errorf("KeyID %q, want 16 hex digits", k.KeyID())
	}
	if newTestKeyring(t, key).KeyID() != k.KeyID() {
		t.Error("KeyID is not stable")
	}
}

func TestTamperEveryByte(t *testing.T) {
	k := newTestKeyring(t, testKey(t))
	aad := []byte("signing_key:kid1")
	blob, err := k.Seal([]byte("private key bytes"), aad)
	if err != nil {
		t.Fatal(err)
	}
	for i := range blob {
		for _, mask := range []byte{0x01, 0x80} {
			bad := bytes.Clone(blob)
			bad[i] ^= mask
			_, err := k.Open(bad, aad)
			// A flipped key-id byte names a key we do not hold.
			want := ErrCorrupt
			if i >= offKeyID && i < offWrapNonce {
				want = ErrWrongKey
			}
			if !errors.Is(err, want) {
				t.Fatalf("byte %d ^ %#x: err = %v, want %v", i, mask, err, want)
			}
		}
	}
	for _, n := range []int{0, 1, minBlobLen - 1, len(blob) - 1} {
		if _, err := k.Open(blob[:n], aad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("truncated to %d: err = %v", n, err)
		}
	}
	if _, err := k.Open(append(bytes.Clone(blob), 0), aad); !errors.Is(err, ErrCorrupt) {
		t.Errorf("extended: err = %v", err)
	}
}

func TestWrongAAD(t *testing.T) {
	k := newTestKeyring(t, testKey(t))
	blob, _ := k.Seal([]byte("s3cret"), []byte("client_secret:a"))
	for _, aad := range []string{"client_secret:b", "client_secret:", "", "client_secret:aa"} {
		if _, err := k.Open(blob, []byte(aad)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("aad %q: err = %v, want ErrCorrupt", aad, err)
		}
		if _, err := k.Rewrap(blob, []byte(aad)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Rewrap aad %q: err = %v, want ErrCorrupt", aad, err)
		}
	}
}

// Sections spliced from another owner's blob (same master key) must not
// open: the data key and payload are each bound to the aad.
func TestSpliceAcrossOwners(t *testing.T) {
	k := newTestKeyring(t, testKey(t))
	a, _ := k.Seal([]byte("secret-a"), []byte("a"))
	b, _ := k.Seal([]byte("secret-b"), []byte("b"))
	mixed := append(bytes.Clone(a[:offPayloadNonce]), b[offPayloadNonce:]...)
	for _, aad := range []string{"a", "b"} {
		if _, err := k.Open(mixed, []byte(aad)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("aad %q: err = %v", aad, err)
		}
	}
}

func TestWrongKey(t *testing.T) {
	blob, _ := newTestKeyring(t, testKey(t)).Seal([]byte("s"), nil)
	_, err := newTestKeyring(t, testKey(t)).Open(blob, nil)
	if !errors.Is(err, ErrWrongKey) {
		t.Fatalf("err = %v, want ErrWrongKey", err)
	}
	if errors.Is(err, ErrCorrupt) {
		t.Error("ErrWrongKey must not also be ErrCorrupt")
	}
}

func TestRotationRewrap(t *testing.T) {
	oldKey, newKey := testKey(t), testKey(t)
	old := newTestKeyring(t, oldKey)
	aad := []byte("client_secret:c1")
	blob, _ := old.Seal([]byte("top secret"), aad)

	rot := newTestKeyring(t, newKey, oldKey)
	if got, err := rot.Open(blob, aad); err != nil || string(got) != "top secret" {
		t.Fatalf("open with old key in ring: %q, %v", got, err)
	}
	re, err := rot.Rewrap(blob, aad)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(re[offPayloadNonce:], blob[offPayloadNonce:]) {
		t.Error("Rewrap changed the payload")
	}
	if bytes.Equal(re[:offPayloadNonce], blob[:offPayloadNonce]) {
		t.Error("Rewrap did not change the wrapped key")
	}
	if _, err := rot.Open(blob, aad); err != nil {
		t.Errorf("Rewrap modified its input: %v", err)
	}
	// After rotation the old key can be dropped.
	onlyNew := newTestKeyring(t, newKey)
	if got, err := onlyNew.Open(re, aad); err != nil || string(got) != "top secret" {
		t.Fatalf("open rewrapped with new key only: %q, %v", got, err)
	}
	if _, err := onlyNew.Open(blob, aad); !errors.Is(err, ErrWrongKey) {
		t.Errorf("old blob with new key only: %v", err)
	}
	if _, err := old.Open(re, aad); !errors.Is(err, ErrWrongKey) {
		t.Errorf("rewrapped blob with old key only: %v", err)
	}
	if !rot.SealedByCurrent(re) || rot.SealedByCurrent(blob) || old.SealedByCurrent(re) || !old.SealedByCurrent(blob) {
		t.Error("SealedByCurrent does not follow the wrapping key")
	}
	if rot.SealedByCurrent(re[:minBlobLen-1]) {
		t.Error("SealedByCurrent accepted a short blob")
	}
	// Rewrapping an already current blob is harmless.
	again, err := onlyNew.Rewrap(re, aad)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := onlyNew.Open(again, aad); err != nil || string(got) != "top secret" {
		t.Fatalf("double rewrap: %q, %v", got, err)
	}
}

func TestNewKeyringRejectsBadKeys(t *testing.T) {
	if _, err := NewKeyring(make([]byte, 16)); err == nil {
		t.Error("16-byte current key accepted")
	}
	if _, err := NewKeyring(testKey(t), make([]byte, 31)); err == nil {
		t.Error("31-byte old key accepted")
	}
}

func FuzzOpen(f *testing.F) {
	key := bytes.Repeat([]byte{7}, 32)
	k, err := NewKeyring(key)
	if err != nil {
		f.Fatal(err)
	}
	valid, err := k.Seal([]byte("seed"), []byte("aad"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid, []byte("aad"))
	f.Add(valid[:minBlobLen], []byte("aad"))
	f.Add([]byte{}, []byte{})
	f.Add([]byte{version}, []byte("x"))
	f.Add(bytes.Repeat([]byte{0xff}, minBlobLen), []byte(nil))
	f.Fuzz(func(t *testing.T, blob, aad []byte) {
		pt, err := k.Open(blob, aad)
		if err == nil {
			// Only something we sealed may open.
			if string(pt) != "seed" || string(aad) != "aad" {
				t.Fatalf("forged blob opened: %q", pt)
			}
			return
		}
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrWrongKey) {
			t.Fatalf("untyped error: %v", err)
		}
		if _, err := k.Rewrap(blob, aad); err == nil && !bytes.Equal(aad, []byte("aad")) {
			t.Fatal("Rewrap accepted a blob Open rejected")
		}
	})
}
