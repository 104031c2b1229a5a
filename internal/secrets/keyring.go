package secrets

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// Errors a caller branches on; Open and Rewrap wrap them with %w.
var (
	// ErrWrongKey: the blob was sealed under a master key this keyring
	// does not hold — typically Gatehouse started with the wrong
	// GATEHOUSE_SECRET_KEY.
	ErrWrongKey = errors.New("sealed under an unknown master key")
	// ErrCorrupt: the blob is malformed, was tampered with, or belongs to
	// another owner (aad mismatch). GCM cannot tell these apart.
	ErrCorrupt = errors.New("ciphertext corrupt or bound to another owner")
)

const (
	version    = 1
	keyIDLen   = 8
	nonceLen   = 12
	dataKeyLen = 32
	tagLen     = 16

	offKeyID        = 1
	offWrapNonce    = offKeyID + keyIDLen
	offWrapped      = offWrapNonce + nonceLen
	offPayloadNonce = offWrapped + dataKeyLen + tagLen
	offPayload      = offPayloadNonce + nonceLen
	minBlobLen      = offPayload + tagLen
)

// Domain separation keeps the fingerprint from being a plain hash of the
// key and keeps a wrapped data key from ever verifying as a payload (or the
// reverse), should someone splice sections between blobs.
const (
	labelKeyID   = "gatehouse/secrets/master-key-id/v1\x00"
	labelWrap    = "gatehouse/secrets/wrap/v1\x00"
	labelPayload = "gatehouse/secrets/payload/v1\x00"
)

// Keyring seals with its current master key and opens blobs sealed under
// the current key or any older key it was given. It is safe for concurrent
// use.
type Keyring struct {
	current *masterKey
	byID    map[[keyIDLen]byte]*masterKey
}

type masterKey struct {
	id   [keyIDLen]byte
	aead cipher.AEAD
}

// NewKeyring builds a keyring that seals with current and can also open
// (and Rewrap) blobs sealed under any of olds.
func NewKeyring(current []byte, olds ...[]byte) (*Keyring, error) {
	cur, err := newMasterKey(current)
	if err != nil {
		return nil, err
	}
	k := &Keyring{current: cur, byID: map[[keyIDLen]byte]*masterKey{cur.id: cur}}
	for i, old := range olds {
		mk, err := newMasterKey(old)
		if err != nil {
			return nil, fmt.Errorf("secrets: old key %d: %w", i, err)
		}
		if _, dup := k.byID[mk.id]; !dup {
			k.byID[mk.id] = mk
		}
	}
	return k, nil
}

func newMasterKey(key []byte) (*masterKey, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secrets: master key must be 32 bytes, got %d", len(key))
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return &masterKey{id: fingerprint(key), aead: aead}, nil
}

func fingerprint(key []byte) [keyIDLen]byte {
	h := sha256.New()
	h.Write([]byte(labelKeyID))
	h.Write(key)
	var id [keyIDLen]byte
	copy(id[:], h.Sum(nil))
	return id
}

// KeyID is the hex fingerprint of the current master key, as recorded in
// every blob it seals. It identifies the key without revealing it.
func (k *Keyring) KeyID() string { return hex.EncodeToString(k.current.id[:]) }

// Seal encrypts plaintext under a fresh data key wrapped by the current
// master key; aad names the owner and must be given again to Open.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	var dataKey [dataKeyLen]byte
	if _, err := rand.Read(dataKey[:]); err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	dek, err := newGCM(dataKey[:])
	if err != nil {
		return nil, err
	}
	blob := make([]byte, offPayload, minBlobLen+len(plaintext))
	blob[0] = version
	if _, err := rand.Read(blob[offPayloadNonce:offPayload]); err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	if err := k.current.wrap(blob, dataKey[:], aad); err != nil {
		return nil, err
	}
	clear(dataKey[:])
	return dek.Seal(blob, blob[offPayloadNonce:offPayload], plaintext, payloadAAD(aad)), nil
}

// Open decrypts a blob made by Seal with the same aad. It fails with
// ErrWrongKey when no key of the keyring wrapped it, ErrCorrupt otherwise.
func (k *Keyring) Open(blob, aad []byte) ([]byte, error) {
	dataKey, err := k.unwrap(blob, aad)
	if err != nil {
		return nil, err
	}
	dek, err := newGCM(dataKey)
	clear(dataKey)
	if err != nil {
		return nil, err
	}
	pt, err := dek.Open(nil, blob[offPayloadNonce:offPayload], blob[offPayload:], payloadAAD(aad))
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", ErrCorrupt)
	}
	return pt, nil
}

// Rewrap re-encrypts the blob's data key under the current master key and
// leaves the payload untouched, so rotating the master key never needs the
// plaintext. The payload is not authenticated here; Open still does that.
func (k *Keyring) Rewrap(blob, aad []byte) ([]byte, error) {
	dataKey, err := k.unwrap(blob, aad)
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(blob)
	err = k.current.wrap(out, dataKey, aad)
	clear(dataKey)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SealedByCurrent reports whether blob names the current master key as the
// one that wrapped its data key. It proves nothing about the blob's
// integrity; Open does that.
func (k *Keyring) SealedByCurrent(blob []byte) bool {
	return len(blob) >= minBlobLen && blob[0] == version &&
		[keyIDLen]byte(blob[offKeyID:offWrapNonce]) == k.current.id
}

func (k *Keyring) unwrap(blob, aad []byte) ([]byte, error) {
	if len(blob) < minBlobLen || blob[0] != version {
		return nil, fmt.Errorf("secrets: %w", ErrCorrupt)
	}
	mk, ok := k.byID[[keyIDLen]byte(blob[offKeyID:offWrapNonce])]
	if !ok {
		return nil, fmt.Errorf("secrets: key id %x: %w", blob[offKeyID:offWrapNonce], ErrWrongKey)
	}
	dataKey, err := mk.aead.Open(nil, blob[offWrapNonce:offWrapped], blob[offWrapped:offPayloadNonce], wrapAAD(blob[:offWrapNonce], aad))
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", ErrCorrupt)
	}
	return dataKey, nil
}

// wrap writes mk's id, a fresh nonce and dataKey sealed by mk into the
// header of blob, which must be at least offPayloadNonce long.
func (mk *masterKey) wrap(blob, dataKey, aad []byte) error {
	copy(blob[offKeyID:offWrapNonce], mk.id[:])
	nonce := blob[offWrapNonce:offWrapped]
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	mk.aead.Seal(blob[offWrapped:offWrapped], nonce, dataKey, wrapAAD(blob[:offWrapNonce], aad))
	return nil
}

// wrapAAD binds the wrapped data key to the version, the master key id and
// the owner.
func wrapAAD(header, aad []byte) []byte {
	return append(append([]byte(labelWrap), header...), aad...)
}

// payloadAAD binds the payload to the version and the owner but not to the
// master key id, which Rewrap changes.
func payloadAAD(aad []byte) []byte {
	return append(append([]byte(labelPayload), version), aad...)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	return aead, nil
}
