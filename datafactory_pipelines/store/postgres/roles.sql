-- Least-privilege roles for the lead store on PostgreSQL (docs/production.md, "Roles").
--
--   datafactory_app     what datafactory's processes log in as: reads and writes the store's rows (DML),
--                       the history only INSERT and SELECT, temporary tables for its joins; no DDL
--                       (it owns nothing, creates nothing outside pg_temp, alters and drops nothing).
--   datafactory_reader  other systems (CRM front ends, BI): SELECT on the read contract `curated_leads`,
--                       and nothing else.
--
-- Both are group roles (NOLOGIN); people and systems log in as members:
--   CREATE ROLE df_worker LOGIN PASSWORD '…' IN ROLE datafactory_app;
--   CREATE ROLE crm LOGIN PASSWORD '…' IN ROLE datafactory_reader;
--
-- Run it as the owner of the store's database (the role that applied the migrations) with CREATEROLE, or
-- as a superuser, after the migrations and again after every upgrade that adds one:
--   psql -v ON_ERROR_STOP=1 -d "$OWNER_URL" -f roles.sql
-- Running it again changes nothing else.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'datafactory_app') THEN
        CREATE ROLE datafactory_app NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'datafactory_reader') THEN
        CREATE ROLE datafactory_reader NOLOGIN;
    END IF;
    -- nothing by default: PUBLIC (every role) loses CONNECT and TEMPORARY on this database
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO datafactory_app', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO datafactory_reader', current_database());
END
$$;

-- no one but the owner creates objects in the schema (PostgreSQL 15's default, made sure of)
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO datafactory_app, datafactory_reader;

-- the application: the rows of every table and view, not their definitions
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO datafactory_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO datafactory_app;
-- the history is appended and read, never changed (its triggers refuse that even to the owner)
REVOKE UPDATE, DELETE, TRUNCATE ON history FROM datafactory_app;
-- the schema's version is read on open; the owner applies migrations
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON schema_migrations FROM datafactory_app;

-- other systems: the read contract and nothing else
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM datafactory_reader;
GRANT SELECT ON curated_leads TO datafactory_reader;
