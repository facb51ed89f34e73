-- The history table for the PostgreSQL lead store: the database itself refuses to change or remove a row.
CREATE TABLE IF NOT EXISTS history (
    seq BIGINT PRIMARY KEY,
    changed_at TIMESTAMP NOT NULL,
    lead_id TEXT,
    field TEXT,
    old_value TEXT,
    new_value TEXT,
    action TEXT,
    actor TEXT,
    cause TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);

CREATE OR REPLACE FUNCTION history_is_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'history is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS history_no_update_or_delete ON history;
CREATE TRIGGER history_no_update_or_delete BEFORE UPDATE OR DELETE ON history
    FOR EACH ROW EXECUTE FUNCTION history_is_append_only();

DROP TRIGGER IF EXISTS history_no_truncate ON history;
CREATE TRIGGER history_no_truncate BEFORE TRUNCATE ON history
    FOR EACH STATEMENT EXECUTE FUNCTION history_is_append_only();
