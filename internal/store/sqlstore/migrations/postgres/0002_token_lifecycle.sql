-- APIs, client grants and refresh tokens. Refresh tokens keep only a hash
-- of their secret; a rotated token stays until its family expires so that
-- its reuse can be detected.

CREATE TABLE resource_servers (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT    NOT NULL UNIQUE,
    identifier TEXT    NOT NULL UNIQUE,
    doc        TEXT    NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX resource_servers_created ON resource_servers (created_at, seq);

CREATE TABLE client_grants (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT    NOT NULL UNIQUE,
    client_id  TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    audience   TEXT    NOT NULL,
    scope      TEXT    NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (client_id, audience)
);
CREATE INDEX client_grants_audience ON client_grants (audience);
CREATE INDEX client_grants_created ON client_grants (created_at, seq);

CREATE TABLE refresh_tokens (
    seq               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                TEXT    NOT NULL UNIQUE,
    family_id         TEXT    NOT NULL,
    secret_hash       BYTEA    NOT NULL,
    client_id         TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_id           TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    audience          TEXT    NOT NULL,
    scope             TEXT    NOT NULL,
    rotating          BOOLEAN NOT NULL,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT,
    idle_expires_at   BIGINT,
    last_exchanged_at BIGINT,
    rotated_at        BIGINT,
    initial_ip        TEXT    NOT NULL,
    initial_ua        TEXT    NOT NULL,
    last_ip           TEXT    NOT NULL,
    last_ua           TEXT    NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id, created_at);
CREATE INDEX refresh_tokens_client ON refresh_tokens (client_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);
CREATE INDEX refresh_tokens_idle ON refresh_tokens (idle_expires_at);
