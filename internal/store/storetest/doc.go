// Package storetest is the conformance suite of store.Store — Run holds the
// behaviour every backend must show — and the helpers that give tests of
// any package a fresh, migrated database on each backend: SQLite always,
// PostgreSQL when GATEHOUSE_TEST_POSTGRES holds a DSN.
package storetest
