-- Attack protection: failure counters, IP token buckets and settings.
-- Counters are decided on in the database (INSERT ... ON CONFLICT ... RETURNING)
-- so that parallel attempts cannot overrun a limit.

CREATE TABLE attack_counters (
    kind       TEXT    NOT NULL,
    connection TEXT    NOT NULL,
    identifier TEXT    NOT NULL,
    ip         TEXT    NOT NULL,
    attempts   BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (identifier, kind, connection, ip)
);

-- tat is the bucket's theoretical arrival time (GCRA), unix milliseconds.
CREATE TABLE attack_buckets (
    bucket TEXT    NOT NULL PRIMARY KEY,
    tat    BIGINT  NOT NULL
);

CREATE TABLE attack_settings (
    name       TEXT    NOT NULL PRIMARY KEY,
    doc        TEXT    NOT NULL,
    updated_at BIGINT  NOT NULL
);
