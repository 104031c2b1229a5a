-- The deletions of users, clients and connections whose refresh tokens
-- are still being deleted, which SQLite records (see its migration 13).
-- PostgreSQL deletes an owner with its tokens in one transaction, as its
-- writers do not queue behind one another, and leaves the table empty;
-- it exists so that both backends read tokens with the same statements.

CREATE TABLE refresh_purges (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    last_token BIGINT  NOT NULL
);
