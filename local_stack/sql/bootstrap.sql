/*
 * Local-only Supabase compatibility bootstrap.
 *
 * Hosted Supabase (and `supabase start`) already provides everything below: the API roles, the
 * `auth`, `realtime` and `extensions` schemas and the `supabase_realtime` publication. A plain
 * PostgreSQL cluster has none of it, so `kamioi up` applies this file as the cluster superuser
 * before `supabase db push`. It is never part of supabase/migrations: pushing it to a real
 * project would fight with objects Supabase owns. Every statement is idempotent.
 *
 * Written from the facts in shared/notes/supabase-local.md (roles, grants, timeouts, auth and
 * realtime helpers as PostgREST and Realtime use them).
 */

-- Roles ---------------------------------------------------------------------------------------
do $$
begin
  if not exists (select from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit password 'postgres';
  end if;
  if not exists (select from pg_roles where rolname = 'supabase_auth_admin') then
    create role supabase_auth_admin login noinherit createrole password 'postgres';
  end if;
  if not exists (select from pg_roles where rolname = 'supabase_realtime_admin') then
    create role supabase_realtime_admin nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'postgres') then
    create role postgres login password 'postgres';
  end if;
end
$$;

-- Today's Supabase: anon and authenticated inherit; postgres is not a superuser.
alter role anon inherit;
alter role authenticated inherit;
alter role postgres nosuperuser createdb createrole replication bypassrls login password 'postgres';

grant anon, authenticated, service_role to authenticator;
grant anon, authenticated, service_role to postgres with admin option;
grant supabase_realtime_admin to postgres;

alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticator set statement_timeout = '8s';

-- Schemas and default privileges ----------------------------------------------------------------
create schema if not exists extensions;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
create extension if not exists pgcrypto with schema extensions;
create extension if not exists "uuid-ossp" with schema extensions;
-- pg_cron is not a trusted extension; hosted Supabase lets postgres enable it through supautils.
-- In pg_catalog, as Supabase installs it (advisor extension_in_public). A stack bootstrapped before
-- had it in public: it is created again and its jobs copied back verbatim, as
-- supabase/migrations/20261207400100_pg_cron_in_pg_catalog.sql does where migrations meet it there
-- (the migration runs as postgres, which cannot drop the extension this superuser created).
do $$
begin
  if exists (select 1 from pg_catalog.pg_extension
             where extname = 'pg_cron' and extnamespace = 'public'::pg_catalog.regnamespace) then
    create temp table pg_cron_jobs on commit drop as select * from cron.job;
    drop extension pg_cron;
    create extension pg_cron with schema pg_catalog;
    insert into cron.job select * from pg_cron_jobs;
    perform pg_catalog.setval('cron.jobid_seq', greatest((select max(jobid) from cron.job), 1));
  end if;
end;
$$;
create extension if not exists pg_cron with schema pg_catalog;
-- `supabase db lint` runs plpgsql_check as postgres, which may not create it here (hosted Supabase
-- allows it through supautils): the superuser creates it once, out of the way in extensions.
do $$
begin
  if exists (select 1 from pg_catalog.pg_available_extensions where name = 'plpgsql_check') then
    create extension if not exists plpgsql_check with schema extensions;
  end if;
end;
$$;
grant usage on schema cron to postgres;
grant all on all tables in schema cron to postgres;
grant execute on all functions in schema cron to postgres;

grant usage, create on schema public to postgres;
grant usage on schema public to anon, authenticated, service_role;
-- Supabase sets these defaults once, when the project is created, and migrations may narrow them
-- (20261203200000_least_privilege.sql does): set them only in a database no migration ran in yet,
-- so that bringing the stack up again does not undo a migration.
do $$
begin
  if to_regclass('supabase_migrations.schema_migrations') is null then
    alter default privileges for role postgres in schema public
      grant all on tables to postgres, anon, authenticated, service_role;
    alter default privileges for role postgres in schema public
      grant all on functions to postgres, anon, authenticated, service_role;
    alter default privileges for role postgres in schema public
      grant all on sequences to postgres, anon, authenticated, service_role;
  end if;
end
$$;
grant create on database postgres to postgres;

-- auth ------------------------------------------------------------------------------------------
create schema if not exists auth authorization supabase_auth_admin;
grant usage on schema auth to postgres, anon, authenticated, service_role;

create table if not exists auth.users (
  instance_id uuid,
  id uuid primary key,
  aud varchar(255) default 'authenticated',
  role varchar(255) default 'authenticated',
  email varchar(255) unique,
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  raw_app_meta_data jsonb default '{}'::jsonb,
  raw_user_meta_data jsonb default '{}'::jsonb,
  is_super_admin boolean,
  is_anonymous boolean not null default false,
  phone text unique,
  last_sign_in_at timestamptz,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  deleted_at timestamptz
);
alter table auth.users owner to supabase_auth_admin;
grant all on auth.users to postgres, service_role;

create or replace function auth.jwt() returns jsonb
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

create or replace function auth.uid() returns uuid
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create or replace function auth.email() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;

alter function auth.jwt() owner to supabase_auth_admin;
alter function auth.uid() owner to supabase_auth_admin;
alter function auth.role() owner to supabase_auth_admin;
alter function auth.email() owner to supabase_auth_admin;
grant execute on all functions in schema auth to postgres, anon, authenticated, service_role;

-- realtime --------------------------------------------------------------------------------------
create schema if not exists realtime;
grant usage on schema realtime to postgres, anon, authenticated, service_role;

create table if not exists realtime.messages (
  id uuid not null default extensions.gen_random_uuid(),
  topic text not null,
  extension text not null,
  payload jsonb,
  event text,
  private boolean default false,
  inserted_at timestamp not null default now(),
  updated_at timestamp not null default now(),
  primary key (id, inserted_at)
);
create index if not exists messages_inserted_at_topic_index
  on realtime.messages (inserted_at desc, topic) where extension = 'broadcast' and private is true;
alter table realtime.messages enable row level security;
-- On Supabase, policies on realtime.messages are written by the project (as postgres).
alter table realtime.messages owner to postgres;
grant select, insert on realtime.messages to anon, authenticated;
grant all on realtime.messages to service_role;

create or replace function realtime.topic() returns text
language sql stable
as $$
  select nullif(current_setting('realtime.topic', true), '')::text
$$;

create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true)
returns void
language plpgsql
as $$
begin
  begin
    -- The Realtime server reads new broadcast rows and fans them out to authorised subscribers.
    insert into realtime.messages (payload, event, topic, private, extension)
    values (payload, event, topic, private, 'broadcast');
  exception when others then
    raise warning 'ErrorSendingBroadcastMessage: %', sqlerrm;
  end;
end;
$$;

create or replace function realtime.broadcast_changes(
  topic_name text, event_name text, operation text, table_name text, table_schema text,
  new record, old record, level text default 'ROW'
) returns void
language plpgsql
as $$
declare
  row_data jsonb;
begin
  if level = 'STATEMENT' then
    raise exception 'function can only be triggered for each row, not for each statement';
  end if;
  row_data := jsonb_build_object(
    'old_record', case when old is null then null else to_jsonb(old) end,
    'record', case when new is null then null else to_jsonb(new) end,
    'operation', operation,
    'table', table_name,
    'schema', table_schema
  );
  perform realtime.send(row_data, event_name, topic_name);
end;
$$;

alter function realtime.topic() owner to supabase_realtime_admin;
alter function realtime.send(jsonb, text, text, boolean) owner to supabase_realtime_admin;
alter function realtime.broadcast_changes(text, text, text, text, text, record, record, text)
  owner to supabase_realtime_admin;
grant supabase_realtime_admin to postgres;
grant execute on all functions in schema realtime to postgres, anon, authenticated, service_role;
-- send() runs as the caller (a trigger fired by any role), so every role must be able to insert.
grant insert on realtime.messages to postgres, supabase_realtime_admin;

-- Logical replication for Postgres Changes -------------------------------------------------------
do $$
begin
  if not exists (select from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end
$$;
alter publication supabase_realtime owner to postgres;
