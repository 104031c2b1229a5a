-- Users' lowercased addresses compare by their bytes, as on SQLite, in
-- whatever locale the database was created with: sort=email then reads
-- the index in order instead of sorting every user, and an email prefix
-- search (q=email:jo*) becomes a range of the index instead of a scan of
-- the table, which LIKE cannot have under a locale's collation. Equality
-- is unchanged. The index is rebuilt, holding the table's lock for that
-- time (seconds per million users).

ALTER TABLE users ALTER COLUMN email_lower TYPE TEXT COLLATE "C";
