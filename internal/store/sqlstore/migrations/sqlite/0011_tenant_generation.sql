-- A connection's tenant generation counts the changes of its options that
-- narrowed the Entra users it admits (another tenant, the common endpoint
-- turned on or off, an allowed tenant removed, another Entra application);
-- a refresh token records the generation of the connection its login read,
-- and a token of an older generation is refused. A login in flight across
-- such a change, or served from another replica's cached copy of the
-- connection, stores the generation it read, not the time it finished, so
-- no clock decides. Existing rows start at 0, the generation of a
-- connection never narrowed. Constant defaults make this a change of the
-- catalogue only, on both backends: no row is rewritten.

ALTER TABLE connections ADD COLUMN tenant_generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE refresh_tokens ADD COLUMN tenant_generation INTEGER NOT NULL DEFAULT 0;
