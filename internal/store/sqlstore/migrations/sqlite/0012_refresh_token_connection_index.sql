-- Deleting a connection deletes the refresh tokens issued through it.
-- Without an index that read every token of every connection, while
-- holding the one write lock every login, refresh and Management write
-- waits for. Its entries end in the rowid (seq), so a connection's tokens
-- lie in seq order. An index costs an entry per token stored (a login's,
-- a rotation's successor); the rotation's update of the old token leaves
-- the connection, and with it this index, alone.

CREATE INDEX refresh_tokens_connection ON refresh_tokens (connection);
