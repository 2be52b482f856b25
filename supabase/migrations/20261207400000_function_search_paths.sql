/*
 * Every function pins its search_path (Supabase's advisor `function_search_path_mutable`, lint 0011):
 * a function that resolves names through the caller's search_path runs whatever a caller's schema
 * puts first. The ten below were left without one on purpose, so the planner could inline them, and
 * a SET clause forbids inlining. They name every object with its schema already, so `search_path = ''`
 * changes no name they resolve; what it costs was measured:
 *
 * - The analytics helpers (rollup rows of a window) are called a few times per chart, inside the
 *   charts' PL/pgSQL functions, never per row: they only gain the SET clause.
 * - The import parsers run once per imported field. As SQL functions with a SET clause every call is
 *   a separate SQL-function execution (300k rows, date + uuid: 44 s against 6 s inlined), so they
 *   become PL/pgSQL functions with the SET clause, whose expressions take PL/pgSQL's fast path (9 s
 *   against 6 s inlined on the same 300k rows, same run, loaded 2-core machine). The logic and the
 *   null-for-invalid contract are unchanged: each CASE branch is an IF in the same order.
 */

alter function private.transaction_rollup_rows(text, date, date) set search_path = '';
alter function private.allocation_rollup_rows(text, date, date) set search_path = '';
alter function private.window_months(date, date) set search_path = '';
alter function private.window_cut_days(date, date) set search_path = '';
alter function private.transaction_merchant_month_rows(date, date) set search_path = '';

create or replace function private.import_make_date(y integer, m integer, d integer)
returns date
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
begin
  if y not between 1900 and 2999 or m not between 1 and 12 or d < 1 then
    return null;
  end if;
  if d > extract(day from pg_catalog.make_date(y, m, 1) + interval '1 month' - interval '1 day') then
    return null;
  end if;
  return pg_catalog.make_date(y, m, d);
end;
$$;

-- YYYY-MM-DD, or US bank style M/D/YYYY.
create or replace function private.import_date(t text)
returns date
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
begin
  if t ~ '^\d{4}-\d{2}-\d{2}$' then
    return private.import_make_date(substr(t, 1, 4)::integer, substr(t, 6, 2)::integer, substr(t, 9, 2)::integer);
  end if;
  if t ~ '^\d{1,2}/\d{1,2}/\d{4}$' then
    return private.import_make_date(split_part(t, '/', 3)::integer, split_part(t, '/', 1)::integer,
                                    split_part(t, '/', 2)::integer);
  end if;
  return null;
end;
$$;

-- ISO 8601: YYYY-MM-DD[( |T)HH:MM[:SS[.frac]]][Z|(+|-)HH[:MM]]; no zone means UTC. The pattern
-- bounds every field, so only days 29-31 need the calendar; then the native parser is safe.
create or replace function private.import_timestamptz(t text)
returns timestamptz
language plpgsql
stable
parallel safe
set search_path = ''
as $$
begin
  if t !~ '^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])([ T]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?)?(Z|[+-](0\d|1[0-4])(:?[0-5]\d)?)?$' then
    return null;
  end if;
  if substr(t, 9, 2) > '28'
     and private.import_make_date(substr(t, 1, 4)::integer, substr(t, 6, 2)::integer,
                                  substr(t, 9, 2)::integer) is null then
    return null;
  end if;
  if right(t, 1) = 'Z'
     or (length(t) > 16  -- a zone offset can only follow HH:MM
         and (substr(t, length(t) - 5, 1) in ('+', '-') or substr(t, length(t) - 4, 1) in ('+', '-')
              or substr(t, length(t) - 2, 1) in ('+', '-'))) then
    return t::timestamptz;
  end if;
  return (t || '+00')::timestamptz;
end;
$$;

create or replace function private.import_uuid(t text)
returns uuid
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
begin
  return case when t ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then t::uuid end;
end;
$$;

-- true/false, t/f, yes/no, y/n, 1/0 (any case).
create or replace function private.import_boolean(t text)
returns boolean
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
begin
  return case lower(t)
    when 'true' then true when 't' then true when 'yes' then true when 'y' then true when '1' then true
    when 'false' then false when 'f' then false when 'no' then false when 'n' then false when '0' then false
  end;
end;
$$;
