-- The connection a refresh token's family was issued through, so that an
-- exchange checks that connection's enablement for the client, not that of
-- the connection the user signed in with last (two connections of one
-- Entra tenant share their users). Tokens stored before keep '' and are
-- checked against the user's connection. A constant default makes this a
-- change of the catalogue only, on both backends: no row is rewritten.

ALTER TABLE refresh_tokens ADD COLUMN connection TEXT NOT NULL DEFAULT '';
