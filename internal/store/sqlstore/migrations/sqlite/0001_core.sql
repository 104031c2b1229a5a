-- Core schema. Timestamps are unix milliseconds (UTC). Columns exist for what
-- is queried or unique; the rest of each struct lives in a JSON text column.
-- seq gives a stable creation order when timestamps tie.

CREATE TABLE clients (
    seq        INTEGER PRIMARY KEY,
    client_id  TEXT    NOT NULL UNIQUE,
    secret_enc BLOB,
    doc        TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX clients_created ON clients (created_at, seq);

CREATE TABLE connections (
    seq        INTEGER PRIMARY KEY,
    id         TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL UNIQUE,
    strategy   TEXT    NOT NULL,
    options    TEXT,
    secret_enc BLOB,
    doc        TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX connections_strategy ON connections (strategy);
CREATE INDEX connections_created ON connections (created_at, seq);

CREATE TABLE connection_clients (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    client_id     TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    PRIMARY KEY (connection_id, client_id)
) STRICT;
CREATE INDEX connection_clients_client ON connection_clients (client_id);

CREATE TABLE signing_keys (
    seq           INTEGER PRIMARY KEY,
    kid           TEXT    NOT NULL UNIQUE,
    state         TEXT    NOT NULL,
    private_enc   BLOB    NOT NULL,
    cert_der      BLOB    NOT NULL,
    created_at    INTEGER NOT NULL,
    current_since INTEGER,
    current_until INTEGER,
    revoked_at    INTEGER
) STRICT;
CREATE INDEX signing_keys_state ON signing_keys (state);

CREATE TABLE tenant_settings (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    doc        TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE users (
    seq            INTEGER PRIMARY KEY,
    user_id        TEXT    NOT NULL UNIQUE,
    connection     TEXT    NOT NULL,
    email          TEXT    NOT NULL,
    email_lower    TEXT    NOT NULL,
    profile        TEXT,
    idp_tokens_enc BLOB,
    blocked        INTEGER NOT NULL,
    logins_count   INTEGER NOT NULL,
    last_login     INTEGER,
    last_ip        TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX users_email ON users (email_lower);
CREATE INDEX users_connection ON users (connection);
CREATE INDEX users_created ON users (created_at, seq);

CREATE TABLE log_events (
    seq        INTEGER PRIMARY KEY,
    log_id     TEXT    NOT NULL UNIQUE,
    event_type TEXT    NOT NULL,
    logged_at  INTEGER NOT NULL,
    user_id    TEXT    NOT NULL,
    doc        TEXT
) STRICT;
CREATE INDEX log_events_logged ON log_events (logged_at, seq);
CREATE INDEX log_events_type ON log_events (event_type, logged_at);
CREATE INDEX log_events_user ON log_events (user_id, logged_at);
