-- The upstream directory a user belongs to (Entra's tid): an object id is
-- unique only within its tenant, so on a connection that admits several
-- tenants a user is keyed on the tenant and user_id together, while
-- user_id keeps Auth0's waad|<oid> shape. A login whose tenant is not the
-- stored one is refused (RecordLogin). Users stored before this migration
-- have NULL and take the tenant of their next login. A nullable column
-- without a default is a change of the catalogue only, on both backends.

ALTER TABLE users ADD COLUMN upstream_tenant TEXT;
