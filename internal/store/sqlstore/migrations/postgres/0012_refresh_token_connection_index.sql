-- Deleting a connection deletes the refresh tokens issued through it.
-- Without an index that read every token of every connection, and again
-- in each of the deletion's runs after its transaction. The deletion locks
-- them in seq order (as every writer of several tokens does), which the
-- index's second column gives without sorting them. An index costs an
-- entry per row version stored: a token's (a login's, a rotation's
-- successor) and, as an exchange's update writes the indexed idle expiry
-- and so is never HOT, the exchanged token's. CREATE INDEX blocks writes
-- to refresh_tokens while it builds (seconds per million tokens).

CREATE INDEX refresh_tokens_connection ON refresh_tokens (connection, seq);
