// Package oauth is Gatehouse's Authentication API: the token endpoint with
// one file per grant, discovery, the JWKS, and the OAuth error type. It
// speaks HTTP and delegates to stores, signing keys and connections; it
// follows the wire formats of Auth0's Authentication API
// (shared/reference/auth0-api.md §1).
package oauth
