-- The connections deleted whose users are still to be deleted: the
-- background purge deletes, in batches, the users whose latest login
-- went through a connection of the name at or before deleted_at (unix
-- milliseconds), or later while no connection has the name, then the
-- row. A user who signed in since through a connection made again under
-- the name is kept.

CREATE TABLE deleted_connections (
    seq        INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    deleted_at INTEGER NOT NULL
) STRICT;
