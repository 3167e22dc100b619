-- Every change to a key's row is announced on channel hub_api_keys (payload:
-- the user id; '*' for a TRUNCATE), so API processes that cache key lookups
-- drop the entry at once (hub_stream/access/key_cache.py). Triggers, not calls in
-- the code: a revocation by hand in psql is announced too. NOTIFY is sent at
-- commit, and not at all on rollback.
CREATE FUNCTION hub_api_keys_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('hub_api_keys', '*');
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('hub_api_keys', OLD.user_id);
    ELSE
        PERFORM pg_notify('hub_api_keys', NEW.user_id);
        IF TG_OP = 'UPDATE' AND NEW.user_id IS DISTINCT FROM OLD.user_id THEN
            PERFORM pg_notify('hub_api_keys', OLD.user_id);
        END IF;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER api_keys_changed
    AFTER UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION hub_api_keys_changed();

CREATE TRIGGER api_keys_truncated
    AFTER TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION hub_api_keys_changed();
