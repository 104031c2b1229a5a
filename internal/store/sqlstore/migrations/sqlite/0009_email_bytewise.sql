-- PostgreSQL's users.email_lower takes the byte-order collation here.
-- SQLite needs nothing: its default collation, BINARY, already compares
-- bytes. The version stays in step with PostgreSQL's.
SELECT 1;
