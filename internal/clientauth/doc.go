// Package clientauth holds what private_key_jwt client authentication
// needs: reading a client's public-key credential (a PEM public key or
// certificate) and verifying the client assertions it signs (RFC 7523,
// with Auth0's rules: iss and sub are the client id, aud is the tenant,
// exp at most five minutes ahead, jti once).
package clientauth
