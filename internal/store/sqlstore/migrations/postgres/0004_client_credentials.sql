-- Public keys a client signs its private_key_jwt assertions with, and the
-- assertion ids already used (each assertion is good once, until it
-- expires).

CREATE TABLE client_credentials (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              TEXT    NOT NULL UNIQUE,
    client_id       TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    credential_type TEXT    NOT NULL,
    kid             TEXT    NOT NULL,
    alg             TEXT    NOT NULL,
    pem             TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    expires_at      BIGINT
);
CREATE INDEX client_credentials_client ON client_credentials (client_id, created_at);

CREATE TABLE client_assertions (
    client_id  TEXT   NOT NULL,
    jti        TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertions_expires ON client_assertions (expires_at);
