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
