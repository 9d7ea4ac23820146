-- Roles and databases, the same for docker compose and the project-local cluster.
-- Run once as a superuser; running it again changes nothing but passwords and attributes.
-- The passwords come from the environment, never from a command line that `ps` shows:
--
--   OWNER_PASSWORD=... RUNTIME_PASSWORD=... psql -f shared/db/bootstrap.sql
--
-- The owner role owns every schema object, runs migrations and provisioning, and is the
-- privileged path for cross-tenant work (BYPASSRLS, because FORCEd row-level security
-- applies to table owners too). The runtime role is what the web server uses: it owns
-- nothing, cannot create databases or roles, and is subject to every policy.
\set ON_ERROR_STOP on
\if :{?owner_role}
\else
\set owner_role tenancy_owner
\endif
\if :{?runtime_role}
\else
\set runtime_role tenancy_app
\endif
\getenv owner_password OWNER_PASSWORD
\getenv runtime_password RUNTIME_PASSWORD
\if :{?owner_password}
\else
\set owner_password owner
\endif
\if :{?runtime_password}
\else
\set runtime_password app
\endif

-- Before 15, every role could create objects in the public schema of every database, so a
-- runtime role could plant a function or table there that another tenant's query finds.
DO $$
BEGIN
    IF current_setting('server_version_num')::int < 150000 THEN
        RAISE EXCEPTION 'PostgreSQL 15 or newer is needed (this server is %)',
            current_setting('server_version');
    END IF;
END
$$;

SELECT format('CREATE ROLE %I', :'owner_role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner_role') \gexec
SELECT format('CREATE ROLE %I', :'runtime_role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'runtime_role') \gexec

-- slide: roles
SELECT format(
    'ALTER ROLE %I LOGIN NOSUPERUSER CREATEDB NOCREATEROLE BYPASSRLS PASSWORD %L',
    :'owner_role', :'owner_password') \gexec
SELECT format(
    'ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT PASSWORD %L',
    :'runtime_role', :'runtime_password') \gexec
-- end slide

-- The runtime role's search_path is public alone: the default ("$user", public) would put a
-- schema that happens to carry its name in front of every unqualified table.
SELECT format('ALTER ROLE %I SET search_path = public', :'runtime_role') \gexec

-- Dropping a tenant's database (multidb) ends the sessions still open on it, the runtime
-- role's included; pg_signal_backend allows that for non-superuser sessions, nothing more.
SELECT format('GRANT pg_signal_backend TO %I', :'owner_role') \gexec

-- One database per strategy, owned by the owner role (and so is its public schema).
SELECT format('CREATE DATABASE %I OWNER %I', db, :'owner_role')
FROM unnest(ARRAY['tenancy_rls', 'tenancy_multidb', 'tenancy_schemas']) AS db
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = db) \gexec

SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', db),
       format('GRANT CONNECT ON DATABASE %I TO %I', db, :'runtime_role')
FROM unnest(ARRAY['tenancy_rls', 'tenancy_multidb', 'tenancy_schemas']) AS db \gexec

-- multidb: a login role per tenant database, named like the database, so that one tenant's
-- session can neither connect to another's database (nor read its size) nor see its queries
-- in pg_stat_activity. The owner role makes and drops them through the two functions below,
-- and has no CREATEROLE itself: before PostgreSQL 16 that attribute could grant itself
-- pg_execute_server_program and the like. Every tenant role is a member of tenancy_tenant,
-- which grants nothing: it marks the roles the functions may touch.
SELECT 'CREATE ROLE tenancy_tenant NOLOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tenancy_tenant') \gexec
SELECT 'CREATE ROLE tenancy_roles NOLOGIN CREATEROLE'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tenancy_roles') \gexec
ALTER ROLE tenancy_roles NOLOGIN NOSUPERUSER CREATEROLE NOCREATEDB NOBYPASSRLS;
GRANT tenancy_tenant TO tenancy_roles WITH ADMIN OPTION;
-- To end a tenant role's sessions when it gets a new password.
GRANT pg_signal_backend TO tenancy_roles;

-- In the maintenance database, where provisioning connects to create databases. Nobody but
-- the owner role may connect to it or to template1: a tenant role there could plant large
-- objects (which then block dropping it, or travel into databases created from template1).
-- Every function names the catalogue in full and puts pg_temp last: a SECURITY DEFINER
-- function that searched pg_temp first would read a caller's temporary pg_roles instead.
\connect postgres
REVOKE CONNECT, TEMPORARY ON DATABASE postgres, template1 FROM PUBLIC;
SELECT format('GRANT CONNECT ON DATABASE postgres TO %I', :'owner_role') \gexec
CREATE SCHEMA IF NOT EXISTS tenancy_roles AUTHORIZATION tenancy_roles;
REVOKE ALL ON SCHEMA tenancy_roles FROM PUBLIC;

CREATE OR REPLACE FUNCTION tenancy_roles.is_tenant_role(p_name text) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT EXISTS (
            SELECT FROM pg_catalog.pg_auth_members m
            JOIN pg_catalog.pg_roles r ON r.oid = m.member
            WHERE r.rolname = p_name
              AND NOT (r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolbypassrls
                       OR r.rolreplication)
              AND m.roleid = (SELECT g.oid FROM pg_catalog.pg_roles g
                              WHERE g.rolname = 'tenancy_tenant'))
    $$;

-- A new password takes three transactions. close_tenant_role makes the role NOLOGIN and
-- commits, so no new session of it can start; set_tenant_role waits for logins already under
-- way to show, ends every session of the role (one could set a password of its own
-- meanwhile), checking again until none is left, forgets every setting the role gave itself,
-- for all databases or one, and sets the password; open_tenant_role, called once no login
-- that read the old password can still be authenticating, ends any session again and allows
-- LOGIN. A crash in between leaves the role closed, which is safe; the next call repairs it.
DROP FUNCTION IF EXISTS tenancy_roles.close_tenant_role(text);  -- its result type changed
CREATE OR REPLACE FUNCTION tenancy_roles.close_tenant_role(p_name text)
    RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        v_try int := 0;
    BEGIN
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname = p_name) THEN
            RETURN false;
        END IF;
        IF NOT tenancy_roles.is_tenant_role(p_name) THEN
            RAISE EXCEPTION 'a role % exists and is no tenant''s', p_name;
        END IF;
        LOOP  -- a session of the role may be changing its own password at this moment
            BEGIN
                EXECUTE pg_catalog.format('ALTER ROLE %I NOLOGIN', p_name);
                RETURN true;
            EXCEPTION WHEN internal_error THEN
                v_try := v_try + 1;
                IF v_try >= 20 THEN RAISE; END IF;
                PERFORM pg_catalog.pg_sleep(0.05);
            END;
        END LOOP;
    END
    $$;

CREATE OR REPLACE FUNCTION tenancy_roles.set_tenant_role(p_name text, p_password text)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        v_database name;
    BEGIN
        IF p_name ~ '^pg_' OR p_name = '' OR pg_catalog.octet_length(p_name) > 63
           OR p_name IN ('tenancy_tenant', 'tenancy_roles') THEN
            RAISE EXCEPTION 'not a tenant role name: %', p_name;
        END IF;
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname = p_name) THEN
            EXECUTE pg_catalog.format(
                'CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS '
                'NOREPLICATION NOINHERIT PASSWORD %L IN ROLE tenancy_tenant',
                p_name, p_password);
            EXECUTE pg_catalog.format('ALTER ROLE %I SET search_path = public', p_name);
            RETURN;
        END IF;
        IF NOT tenancy_roles.is_tenant_role(p_name) THEN
            RAISE EXCEPTION 'a role % exists and is no tenant''s', p_name;
        END IF;
        IF (SELECT r.rolcanlogin FROM pg_catalog.pg_roles r WHERE r.rolname = p_name) THEN
            RAISE EXCEPTION 'role % may still log in: close_tenant_role first', p_name;
        END IF;
        -- A login that passed its check just before NOLOGIN was committed shows in
        -- pg_stat_activity only once its start-up ends: give every such one time to appear.
        PERFORM pg_catalog.pg_sleep(2);
        PERFORM tenancy_roles.end_sessions(p_name);
        FOR v_database IN
            SELECT d.datname FROM pg_catalog.pg_db_role_setting s
            JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
            WHERE s.setrole = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = p_name)
        LOOP
            EXECUTE pg_catalog.format('ALTER ROLE %I IN DATABASE %I RESET ALL', p_name, v_database);
        END LOOP;
        EXECUTE pg_catalog.format('ALTER ROLE %I RESET ALL', p_name);
        EXECUTE pg_catalog.format('ALTER ROLE %I SET search_path = public', p_name);
        EXECUTE pg_catalog.format('ALTER ROLE %I PASSWORD %L', p_name, p_password);
    END
    $$;

-- The last step, once no login that began before the new password was committed can still
-- be authenticating (authentication_timeout after it; the caller waits): such a login checked
-- the old password, and would pass the LOGIN check if it came after this.
CREATE OR REPLACE FUNCTION tenancy_roles.open_tenant_role(p_name text)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        IF NOT tenancy_roles.is_tenant_role(p_name) THEN
            RAISE EXCEPTION 'not a tenant role: %', p_name;
        END IF;
        PERFORM tenancy_roles.end_sessions(p_name);
        EXECUTE pg_catalog.format('ALTER ROLE %I LOGIN', p_name);
    END
    $$;

CREATE OR REPLACE FUNCTION tenancy_roles.end_sessions(p_name text)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        FOR i IN 1..100 LOOP
            PERFORM pg_catalog.pg_stat_clear_snapshot();
            EXIT WHEN NOT EXISTS (
                SELECT FROM pg_catalog.pg_stat_activity a WHERE a.usename = p_name);
            PERFORM pg_catalog.pg_terminate_backend(a.pid, 1000)
            FROM pg_catalog.pg_stat_activity a WHERE a.usename = p_name;
            PERFORM pg_catalog.pg_sleep(0.05);
        END LOOP;
        PERFORM pg_catalog.pg_stat_clear_snapshot();
        IF EXISTS (SELECT FROM pg_catalog.pg_stat_activity a WHERE a.usename = p_name) THEN
            RAISE EXCEPTION 'sessions of % would not end; it stays closed', p_name;
        END IF;
    END
    $$;

CREATE OR REPLACE FUNCTION tenancy_roles.drop_tenant_role(p_name text)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        IF tenancy_roles.is_tenant_role(p_name) THEN
            EXECUTE pg_catalog.format('DROP ROLE %I', p_name);
        ELSIF EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname = p_name) THEN
            RAISE EXCEPTION 'a role % exists and is no tenant''s', p_name;
        END IF;
    END
    $$;

-- A tenant's limits, on its role rather than its database, so that they bind its sessions
-- and not the owner's (migrations, moves, digests): a statement timeout in its own database
-- (named like the role), and how many sessions it may hold at once. They stop the
-- application's slow statements, not the tenant's own SQL: a role may set its own defaults
-- (the health report shows it) and any session may SET statement_timeout.
CREATE OR REPLACE FUNCTION tenancy_roles.set_tenant_limits(
    p_name text, p_timeout_ms integer, p_connections integer)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        IF NOT tenancy_roles.is_tenant_role(p_name) THEN
            RAISE EXCEPTION 'not a tenant role: %', p_name;
        END IF;
        IF p_timeout_ms < 0 OR p_connections < -1 THEN
            RAISE EXCEPTION 'limits out of range: % ms, % connections', p_timeout_ms, p_connections;
        END IF;
        EXECUTE pg_catalog.format('ALTER ROLE %I RESET statement_timeout', p_name);
        EXECUTE pg_catalog.format('ALTER ROLE %I IN DATABASE %I SET statement_timeout = %L',
                                  p_name, p_name, p_timeout_ms::text);
        EXECUTE pg_catalog.format('ALTER ROLE %I CONNECTION LIMIT %s', p_name, p_connections);
    END
    $$;

ALTER FUNCTION tenancy_roles.is_tenant_role(text) OWNER TO tenancy_roles;
ALTER FUNCTION tenancy_roles.set_tenant_limits(text, integer, integer) OWNER TO tenancy_roles;
ALTER FUNCTION tenancy_roles.close_tenant_role(text) OWNER TO tenancy_roles;
ALTER FUNCTION tenancy_roles.set_tenant_role(text, text) OWNER TO tenancy_roles;
ALTER FUNCTION tenancy_roles.open_tenant_role(text) OWNER TO tenancy_roles;
ALTER FUNCTION tenancy_roles.end_sessions(text) OWNER TO tenancy_roles;
ALTER FUNCTION tenancy_roles.drop_tenant_role(text) OWNER TO tenancy_roles;
REVOKE ALL ON FUNCTION tenancy_roles.is_tenant_role(text), tenancy_roles.close_tenant_role(text),
    tenancy_roles.set_tenant_role(text, text), tenancy_roles.open_tenant_role(text),
    tenancy_roles.end_sessions(text), tenancy_roles.drop_tenant_role(text),
    tenancy_roles.set_tenant_limits(text, integer, integer) FROM PUBLIC;
SELECT format('GRANT USAGE ON SCHEMA tenancy_roles TO %I', :'owner_role') \gexec
SELECT format('GRANT EXECUTE ON FUNCTION tenancy_roles.close_tenant_role(text), '
              'tenancy_roles.set_tenant_role(text, text), tenancy_roles.open_tenant_role(text), '
              'tenancy_roles.drop_tenant_role(text), '
              'tenancy_roles.set_tenant_limits(text, integer, integer) TO %I', :'owner_role') \gexec
