-- A user's parts by owner, so that each writer writes only its own: a
-- login the IdP's attributes (profile) and, as set_user_root_attributes
-- says, the root attributes; an administrator the block, the metadata and
-- otherwise the root attributes. A login that wrote the whole document it
-- read would undo an administrator's change made meanwhile.

ALTER TABLE users
    ADD COLUMN root_attributes TEXT,
    ADD COLUMN app_metadata TEXT,
    ADD COLUMN user_metadata TEXT;

-- jsonb_strip_nulls drops the null members jsonb_build_object gives
-- absent attributes.
UPDATE users SET
    root_attributes = NULLIF(jsonb_strip_nulls(jsonb_build_object(
        'name', profile::jsonb -> 'name',
        'given_name', profile::jsonb -> 'given_name',
        'family_name', profile::jsonb -> 'family_name',
        'nickname', profile::jsonb -> 'nickname',
        'picture', profile::jsonb -> 'picture'))::text, '{}'),
    app_metadata = (profile::jsonb -> 'app_metadata')::text,
    user_metadata = (profile::jsonb -> 'user_metadata')::text,
    profile = (profile::jsonb - ARRAY['name', 'given_name', 'family_name', 'nickname', 'picture',
        'app_metadata', 'user_metadata'])::text
WHERE profile IS NOT NULL;
