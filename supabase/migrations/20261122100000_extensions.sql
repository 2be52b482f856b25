/*
 * Extensions the database relies on.
 *
 * - pg_trgm (schema `extensions`, like every Supabase extension): trigram GIN index behind
 *   public.search_mappings, so substring search of merchant names never scans the table.
 * - pgcrypto: already installed by Supabase (gen_random_uuid for realtime.messages ids); listed so
 *   the dependency is explicit.
 * - pg_cron: schedules partition maintenance and stats compaction. Enabled from the dashboard on
 *   hosted Supabase (it lives in schema `cron`); `if not exists` makes this a no-op where it is on.
 */

create extension if not exists pg_trgm with schema extensions;
create extension if not exists pgcrypto with schema extensions;
create extension if not exists pg_cron;
