// Package store defines what Gatehouse persists — applications,
// connections, signing keys, tenant settings, users and log events — as
// domain types and small interfaces, and holds the conformance suite that
// every backend must pass (package storetest). Backends live in
// subpackages; the store knows SQL and nothing about protocols.
package store
