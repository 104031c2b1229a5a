// Package secrets seals secrets at rest (client secrets, signing keys,
// upstream tokens) with envelope encryption: every secret gets a fresh
// AES-256-GCM data key, and only that data key is encrypted with the master
// key. Rotating the master key therefore re-wraps 60 bytes per secret and
// never touches the payload.
//
// A sealed blob is self-describing:
//
//	version   1 byte   (1)
//	key id    8 bytes  fingerprint of the master key that wrapped the data key
//	nonce     12 bytes for the data-key wrap
//	wrapped   48 bytes data key (32) sealed by the master key, with GCM tag
//	nonce     12 bytes for the payload
//	payload   n+16     plaintext sealed by the data key, with GCM tag
//
// The caller's aad (e.g. "client_secret:"+clientID) is authenticated by both
// seals, so a ciphertext copied into another row fails to open.
package secrets
