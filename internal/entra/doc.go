// Package entra is Gatehouse's client for the Microsoft identity platform
// (Microsoft Entra ID, formerly Azure AD) and Microsoft Graph.
//
// It speaks only HTTP to Entra and Graph: the resource owner password
// credentials (ROPC) grant on the v1 (/oauth2/token, resource=) and v2
// (/oauth2/v2.0/token, scope=) token endpoints, tenant OpenID metadata and
// signing keys, id_token validation, and the few Graph calls a broker needs
// to load a profile and group memberships. It knows nothing about Gatehouse's
// HTTP handlers or storage; the waad connection strategy builds on it.
//
// Upstream failures come back as *Error, classified into a small set of
// classes (see Class) so the broker can answer each one the same way every
// time, plus an admin-facing hint per AADSTS code. Graph failures come back as
// *GraphError.
//
// Secrets never leave the call that carries them: passwords, client secrets
// and tokens are not stored by the Client and never appear in error strings.
// A credential POST that reached Entra is never retried, because a second
// wrong-password attempt counts against the user's smart-lockout budget.
//
// One Client is meant to be shared by the whole process: its transport keeps
// enough idle connections per host for hundreds of concurrent upstream calls,
// and its metadata/key cache serves every connection.
package entra
