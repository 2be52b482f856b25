/*
 * Safe parsers for set-based validation of imported text: each returns the typed value, or null
 * when the text is not one (never an error, so one bad line cannot abort its chunk). PostgreSQL 15
 * has no pg_input_is_valid, and an exception block per row would cost a subtransaction each.
 *
 * They are SQL functions built from CASE (which evaluates in order, unlike AND/OR), so the planner
 * inlines them into the import's statements. Inlining is also why they carry no `set search_path`
 * (a SET clause prevents it): they are not security definer and name every function they call.
 * import_timestamptz is stable, not immutable, because text -> timestamptz is (it appends an
 * explicit zone, so the result never depends on the session's TimeZone).
 */

create or replace function private.import_make_date(y integer, m integer, d integer)
returns date
language sql
immutable
parallel safe
as $$
  select case
    when y not between 1900 and 2999 or m not between 1 and 12 or d < 1 then null
    when d > extract(day from pg_catalog.make_date(y, m, 1) + interval '1 month' - interval '1 day') then null
    else pg_catalog.make_date(y, m, d)
  end
$$;

-- YYYY-MM-DD, or US bank style M/D/YYYY.
create or replace function private.import_date(t text)
returns date
language sql
immutable
parallel safe
as $$
  select case
    when t ~ '^\d{4}-\d{2}-\d{2}$' then
      private.import_make_date(substr(t, 1, 4)::integer, substr(t, 6, 2)::integer, substr(t, 9, 2)::integer)
    when t ~ '^\d{1,2}/\d{1,2}/\d{4}$' then
      private.import_make_date(split_part(t, '/', 3)::integer, split_part(t, '/', 1)::integer,
                               split_part(t, '/', 2)::integer)
  end
$$;

-- ISO 8601: YYYY-MM-DD[( |T)HH:MM[:SS[.frac]]][Z|(+|-)HH[:MM]]; no zone means UTC. The pattern
-- bounds every field, so only days 29-31 need the calendar; then the native parser is safe.
create or replace function private.import_timestamptz(t text)
returns timestamptz
language sql
stable
parallel safe
as $$
  select case
    when t !~ '^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])([ T]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?)?(Z|[+-](0\d|1[0-4])(:?[0-5]\d)?)?$'
      then null
    when substr(t, 9, 2) > '28'
         and private.import_make_date(substr(t, 1, 4)::integer, substr(t, 6, 2)::integer,
                                      substr(t, 9, 2)::integer) is null
      then null
    when right(t, 1) = 'Z'
         or (length(t) > 16  -- a zone offset can only follow HH:MM
             and (substr(t, length(t) - 5, 1) in ('+', '-') or substr(t, length(t) - 4, 1) in ('+', '-')
                  or substr(t, length(t) - 2, 1) in ('+', '-')))
      then t::timestamptz
    else (t || '+00')::timestamptz
  end
$$;

create or replace function private.import_uuid(t text)
returns uuid
language sql
immutable
parallel safe
as $$
  select case when t ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then t::uuid end
$$;

-- true/false, t/f, yes/no, y/n, 1/0 (any case).
create or replace function private.import_boolean(t text)
returns boolean
language sql
immutable
parallel safe
as $$
  select case lower(t)
    when 'true' then true when 't' then true when 'yes' then true when 'y' then true when '1' then true
    when 'false' then false when 'f' then false when 'no' then false when 'n' then false when '0' then false
  end
$$;

revoke execute on function
  private.import_make_date(integer, integer, integer),
  private.import_date(text),
  private.import_timestamptz(text),
  private.import_uuid(text),
  private.import_boolean(text)
from public, anon, authenticated;
