-- Attack protection: failure counters, IP token buckets and settings.
-- Counters are decided on in the database (INSERT ... ON CONFLICT ... RETURNING)
-- so that parallel attempts cannot overrun a limit.

CREATE TABLE attack_counters (
    kind       TEXT    NOT NULL,
    connection TEXT    NOT NULL,
    identifier TEXT    NOT NULL,
    ip         TEXT    NOT NULL,
    attempts   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (identifier, kind, connection, ip)
) STRICT;

-- tat is the bucket's theoretical arrival time (GCRA), unix milliseconds.
CREATE TABLE attack_buckets (
    bucket TEXT    NOT NULL PRIMARY KEY,
    tat    INTEGER NOT NULL
) STRICT;

CREATE TABLE attack_settings (
    name       TEXT    NOT NULL PRIMARY KEY,
    doc        TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
