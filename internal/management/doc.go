// Package management is Gatehouse's Management API v2, shaped like Auth0's
// (shared/reference/auth0-api.md §2) so that Auth0 SDKs and tools work
// against it: bearer-token checks with per-route scopes, the error format
// {statusCode, error, message, errorCode}, and one file per resource.
package management
