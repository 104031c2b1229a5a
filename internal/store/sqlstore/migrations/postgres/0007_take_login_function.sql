-- A password login's attack-protection take (sqlstore.TakeLogin) as one
-- call: one round trip and one commit instead of three statements, each
-- its own commit. It does what the Go code does on SQLite, in the same
-- order: one token from the IP's bucket (nothing else when it is empty),
-- then one attempt on each counter; a full counter that blocks gives back
-- the counters taken before it and stops.
--
-- It holds its row locks until it returns, so every writer that locks
-- more than one of these rows does so in one order, bucket first, then
-- counters in key order (identifier, kind, connection, ip): the settlement
-- of a success (clearLoginCTE), the user-blocks DELETE
-- (deleteAttackCountersPG) and the purge, which skips locked rows instead
-- of waiting. The caller passes the counters in key order.
CREATE FUNCTION gatehouse_take_login(
    p_bucket text, p_now bigint, p_step bigint, p_burst bigint,
    p_kinds text[], p_connections text[], p_identifiers text[], p_ips text[],
    p_limits bigint[], p_expire bigint[], p_block boolean[],
    OUT o_token_refused boolean, OUT o_tat bigint, OUT o_refused integer, OUT o_counted bigint)
LANGUAGE plpgsql AS $$
DECLARE
    n integer := coalesce(array_length(p_kinds, 1), 0);
BEGIN
    o_token_refused := false;
    o_tat := 0;
    o_refused := -1;
    o_counted := 0;
    IF p_bucket <> '' THEN
        INSERT INTO attack_buckets AS b (bucket, tat) VALUES (p_bucket, p_now + p_step)
        ON CONFLICT (bucket) DO UPDATE SET tat = greatest(b.tat, p_now) + p_step
        WHERE greatest(b.tat, p_now) + p_step <= p_now + p_burst * p_step
        RETURNING b.tat INTO o_tat;
        IF NOT FOUND THEN
            SELECT b.tat INTO o_tat FROM attack_buckets b WHERE b.bucket = p_bucket;
            o_token_refused := true;
            RETURN;
        END IF;
    END IF;
    FOR i IN 1..n LOOP
        INSERT INTO attack_counters AS c (kind, connection, identifier, ip, attempts, updated_at)
        VALUES (p_kinds[i], p_connections[i], p_identifiers[i], p_ips[i], 1, p_now)
        ON CONFLICT (identifier, kind, connection, ip) DO UPDATE SET
            attempts = CASE WHEN c.updated_at < p_expire[i] THEN 1 ELSE c.attempts + 1 END,
            updated_at = excluded.updated_at
        WHERE c.updated_at < p_expire[i] OR c.attempts < p_limits[i];
        IF FOUND THEN
            o_counted := o_counted | (1::bigint << (i - 1));
        ELSIF p_block[i] THEN
            o_refused := i - 1;
            FOR j IN 1..i - 1 LOOP
                IF o_counted & (1::bigint << (j - 1)) <> 0 THEN
                    UPDATE attack_counters SET attempts = attempts - 1
                    WHERE identifier = p_identifiers[j] AND kind = p_kinds[j]
                      AND connection = p_connections[j] AND ip = p_ips[j] AND attempts > 0;
                END IF;
            END LOOP;
            o_counted := 0;
            RETURN;
        END IF;
    END LOOP;
END
$$;
