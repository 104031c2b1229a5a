// Package sqlstore implements store.Store over database/sql for both
// supported databases: embedded SQLite (modernc.org/sqlite, no cgo) and
// PostgreSQL (pgx). One set of SQL statements serves both — each binds
// numbered $n placeholders and supports ON CONFLICT and RETURNING — and the
// few differences (locking, error codes, pool layout) live in a dialect.
//
// Open connects without touching the schema; Migrate brings the schema to
// the latest embedded version and Ping refuses a database that is behind.
// Migrations are migrations/<backend>/NNNN_name.sql, one per version and
// backend, applied in order, each in its own transaction, and recorded in
// schema_migrations.
//
// SQLite gets two pools: one writer connection whose transactions begin
// IMMEDIATE, and a query-only reader pool. All writers of a process queue on
// the one connection inside database/sql instead of racing for SQLite's
// write lock, so a caller never sees SQLITE_BUSY; busy_timeout covers other
// processes on the same file, and WAL lets readers run beside the writer.
package sqlstore
