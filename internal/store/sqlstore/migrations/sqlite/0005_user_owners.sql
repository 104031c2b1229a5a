-- A user's parts by owner, so that each writer writes only its own: a
-- login the IdP's attributes (profile) and, as set_user_root_attributes
-- says, the root attributes; an administrator the block, the metadata and
-- otherwise the root attributes. A login that wrote the whole document it
-- read would undo an administrator's change made meanwhile.

ALTER TABLE users ADD COLUMN root_attributes TEXT;
ALTER TABLE users ADD COLUMN app_metadata TEXT;
ALTER TABLE users ADD COLUMN user_metadata TEXT;

-- json_patch drops the null members json_object gives absent attributes.
UPDATE users SET
    root_attributes = NULLIF(json_patch('{}', json_object(
        'name', profile -> '$.name',
        'given_name', profile -> '$.given_name',
        'family_name', profile -> '$.family_name',
        'nickname', profile -> '$.nickname',
        'picture', profile -> '$.picture')), '{}'),
    app_metadata = profile -> '$.app_metadata',
    user_metadata = profile -> '$.user_metadata',
    profile = json_remove(profile, '$.name', '$.given_name', '$.family_name', '$.nickname', '$.picture',
        '$.app_metadata', '$.user_metadata')
WHERE profile IS NOT NULL;
