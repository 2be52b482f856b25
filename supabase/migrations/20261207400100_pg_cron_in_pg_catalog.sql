/*
 * pg_cron belongs to pg_catalog, where Supabase installs it (its docs: `create extension pg_cron with
 * schema pg_catalog`), not to public (advisor `extension_in_public`, lint 0014). pg_cron keeps all its
 * objects in schema cron either way; the extension's schema is only where it was created, and
 * 20261122100000_extensions.sql created it in the default one. Where that was public, it is created
 * again in pg_catalog: pg_cron cannot be relocated (relocatable = false), so its jobs are copied
 * verbatim (ids, schedules, commands, users) and put back. Where it already is in pg_catalog
 * (`supabase start`, hosted projects, the local bootstrap), this does nothing.
 */

do $$
begin
  if not exists (
    select 1 from pg_catalog.pg_extension
    where extname = 'pg_cron' and extnamespace = 'public'::pg_catalog.regnamespace
  ) then
    return;
  end if;
  create temp table pg_cron_jobs on commit drop as select * from cron.job;
  drop extension pg_cron;
  create extension pg_cron with schema pg_catalog;
  insert into cron.job select * from pg_cron_jobs;
  perform pg_catalog.setval('cron.jobid_seq', greatest((select max(jobid) from cron.job), 1));
  grant usage on schema cron to postgres;
  grant all on all tables in schema cron to postgres;
  grant execute on all functions in schema cron to postgres;
end;
$$;
