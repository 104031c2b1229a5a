// Package examples holds the example files shipped with Gatehouse, embedded
// so that `gatehouse serve --demo` works from any directory.
package examples

import _ "embed"

// EntraDirectory is entra-directory.yaml: an Entra ID emulator directory
// that models the seed's Azure setup (a Web API exposing API.Access, a
// native app with a client secret and delegated permissions, users in every
// state, nested groups).
//
//go:embed entra-directory.yaml
var EntraDirectory []byte
