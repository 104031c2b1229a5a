-- Core schema. Timestamps are unix milliseconds (UTC). Columns exist for what
-- is queried or unique; the rest of each struct lives in a JSON text column.
-- seq gives a stable creation order when timestamps tie.

CREATE TABLE clients (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id  TEXT    NOT NULL UNIQUE,
    secret_enc BYTEA,
    doc        TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX clients_created ON clients (created_at, seq);

CREATE TABLE connections (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL UNIQUE,
    strategy   TEXT    NOT NULL,
    options    TEXT,
    secret_enc BYTEA,
    doc        TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX connections_strategy ON connections (strategy);
CREATE INDEX connections_created ON connections (created_at, seq);

CREATE TABLE connection_clients (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    client_id     TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    PRIMARY KEY (connection_id, client_id)
);
CREATE INDEX connection_clients_client ON connection_clients (client_id);

CREATE TABLE signing_keys (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kid           TEXT    NOT NULL UNIQUE,
    state         TEXT    NOT NULL,
    private_enc   BYTEA   NOT NULL,
    cert_der      BYTEA   NOT NULL,
    created_at    BIGINT  NOT NULL,
    current_since BIGINT,
    current_until BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX signing_keys_state ON signing_keys (state);

CREATE TABLE tenant_settings (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    doc        TEXT    NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE users (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id        TEXT    NOT NULL UNIQUE,
    connection     TEXT    NOT NULL,
    email          TEXT    NOT NULL,
    email_lower    TEXT    NOT NULL,
    profile        TEXT,
    idp_tokens_enc BYTEA,
    blocked        BOOLEAN NOT NULL,
    logins_count   BIGINT  NOT NULL,
    last_login     BIGINT,
    last_ip        TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX users_email ON users (email_lower);
CREATE INDEX users_connection ON users (connection);
CREATE INDEX users_created ON users (created_at, seq);

CREATE TABLE log_events (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    log_id     TEXT    NOT NULL UNIQUE,
    event_type TEXT    NOT NULL,
    logged_at  BIGINT  NOT NULL,
    user_id    TEXT    NOT NULL,
    doc        TEXT
);
CREATE INDEX log_events_logged ON log_events (logged_at, seq);
CREATE INDEX log_events_type ON log_events (event_type, logged_at);
CREATE INDEX log_events_user ON log_events (user_id, logged_at);
