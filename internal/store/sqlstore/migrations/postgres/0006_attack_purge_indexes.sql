-- The background purge finds expired attack counters and refilled IP
-- buckets by time. Without these indexes every purge batch scanned both
-- tables whole, inside the transaction that (on SQLite) holds the one
-- write lock every login needs, and a password spray grows the counters
-- by one row per username tried.

CREATE INDEX attack_counters_updated ON attack_counters (updated_at);
CREATE INDEX attack_buckets_tat ON attack_buckets (tat);
