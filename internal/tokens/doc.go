// Package tokens owns the tenant's RS256 signing keys and the JWTs signed
// with them.
//
// Keys live in the store with their private part sealed (package secrets)
// and are parsed once into memory: the token endpoint signs on every login,
// so Sign does no key parsing and encodes the claims exactly once. Keys move
// through the states next → current → previous (→ revoked); only the
// current key signs, and every non-revoked key is published in the JWKS and
// accepted by Verify, so that a rotation never invalidates tokens in
// flight.
package tokens
