// Package server wires Gatehouse together: it opens the store, applies
// migrations, unseals the signing keys, bootstraps the admin application,
// mounts the Authentication and Management APIs behind the common
// middleware (request ids, access log, security headers, panics), and runs
// the HTTP server with a graceful shutdown.
package server
