-- A user's parts by owner, so that each writer writes only its own: a
-- login the IdP's attributes (profile) and, as set_user_root_attributes
-- says, the root attributes; an administrator the block, the metadata and
-- otherwise the root attributes. A login that wrote the whole document it
-- read would undo an administrator's change made meanwhile.

ALTER TABLE users
    ADD COLUMN root_attributes TEXT,
    ADD COLUMN app_metadata TEXT,
    ADD COLUMN user_metadata TEXT;

-- PostgreSQL's JSON functions refuse the \u0000 escape, which the profile
-- (plain TEXT until now) may hold in an administrator's metadata; one such
-- user would stop the migration, and every replica with it. The escape is
-- swapped for a marker the functions pass through (the json type keeps
-- each value's text as written) and put back afterwards. Swapping the
-- text "\u0000" also inside "\\u0000" (an escaped backslash) is harmless:
-- the marker starts with an escape too, and the swap back restores it.
-- json_strip_nulls drops the null members json_build_object gives absent
-- attributes. A profile that is not an object is left as it is.
UPDATE users SET
    root_attributes = NULLIF(replace(json_strip_nulls(json_build_object(
        'name', p.j -> 'name',
        'given_name', p.j -> 'given_name',
        'family_name', p.j -> 'family_name',
        'nickname', p.j -> 'nickname',
        'picture', p.j -> 'picture'))::text, '\u001bgatehouse-nul\u001b', '\u0000'), '{}'),
    app_metadata = replace((p.j -> 'app_metadata')::text, '\u001bgatehouse-nul\u001b', '\u0000'),
    user_metadata = replace((p.j -> 'user_metadata')::text, '\u001bgatehouse-nul\u001b', '\u0000'),
    profile = replace(COALESCE((SELECT json_object_agg(key, value) FROM json_each(p.j)
        WHERE key NOT IN ('name', 'given_name', 'family_name', 'nickname', 'picture', 'app_metadata', 'user_metadata'))::text, '{}'),
        '\u001bgatehouse-nul\u001b', '\u0000')
FROM (SELECT seq, replace(profile, '\u0000', '\u001bgatehouse-nul\u001b')::json AS j FROM users WHERE profile IS NOT NULL) p
WHERE users.seq = p.seq AND json_typeof(p.j) = 'object';
