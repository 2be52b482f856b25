/*
 * Schema `private`: internals that the Data API never exposes (it is not in config.toml's
 * api.schemas): helper functions, stats tables, trigger functions, and the partitions of the
 * partitioned tables (a partition in `public` would be an API endpoint of its own, bypassing the
 * parent's row-level security).
 *
 * Only `authenticated` gets USAGE, because RLS policies run as the querying role and call
 * private.is_admin(). No table here is granted to an API role. PostgreSQL grants EXECUTE on new
 * functions to PUBLIC by default; that default is revoked so each function is granted explicitly.
 */

create schema if not exists private;

revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;

alter default privileges for role postgres in schema private revoke execute on functions from public;
alter default privileges for role postgres in schema private revoke all on tables from public;

-- Shared BEFORE UPDATE trigger: every table keeps updated_at without trusting clients to send it.
create or replace function private.touch_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;
