-- The deletions of users, clients and connections whose refresh tokens
-- are still being deleted. On SQLite such a deletion records its owner
-- here first, in a short transaction that makes the owner's tokens
-- unusable at once (every exchange and read of a token checks this
-- table), deletes the tokens in small batches that let other writers in
-- between, then deletes the owner and its row here together. A row left
-- by a crash is finished by the background purge. kind is user, client
-- or connection; id is the owner's key (a connection's id), name what its
-- tokens carry (a user's or a client's id, a connection's name), and
-- last_token the highest refresh_tokens seq when the deletion began: a
-- token issued afterwards, to an owner made again under the name, is not
-- refused.

CREATE TABLE refresh_purges (
    seq        INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    last_token INTEGER NOT NULL
) STRICT;
