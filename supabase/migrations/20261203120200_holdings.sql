/*
 * holdings: each user's position per ticker (shares, amount invested, open lots), so a portfolio
 * read costs O(the user's holdings), never O(their allocations).
 *
 * Maintained exactly by statement-level triggers on allocations with transition tables: each
 * statement folds its rows into one upsert per (user, ticker) it touched, in key order (so two
 * engines writing the same user's rows lock them in the same order and cannot deadlock). There is
 * no global row: concurrent statements only meet on a row when they change the same user's same
 * ticker. Allocations are insert-only (updates are refused), and deleted only with their user,
 * whose holdings go with them, so INSERT and DELETE are the two events to follow.
 *
 * A position that was fully reversed keeps its row with lots = 0 and shares = 0 (the app may show
 * it as a former holding; filter lots > 0 for the current portfolio). No CHECK on the sums: an
 * upsert's proposed row (a statement of reversals alone) is checked before it meets its conflict;
 * the property tests compare every row with a recomputation from allocations instead.
 *
 * RLS: a user reads their own holdings, admins read all; nobody writes them through the Data API.
 * Reads: public.list_my_holdings() (or `.from('holdings').select().eq('user_id', uid)`): the
 * explicit user filter seeks the primary key, while RLS alone (`user_id = uid OR admin`, an OR
 * the planner cannot turn into an index condition) would scan the table. The lots behind a
 * holding: public.list_my_allocations().
 */

create table public.holdings (
  user_id uuid not null references auth.users (id) on delete cascade,
  ticker text not null,
  shares numeric(20, 8) not null,
  invested numeric(14, 2) not null,
  lots integer not null,
  updated_at timestamptz not null default now(),
  primary key (user_id, ticker)
);
comment on table public.holdings is
  'Per user and ticker: shares, amount invested and open lots; the sum of the user''s allocations.';

alter table public.holdings enable row level security;

create policy "holdings: read own, admins read all" on public.holdings
  for select to authenticated
  using (user_id = (select auth.uid()) or (select private.is_admin()));

revoke all on public.holdings from anon;
revoke insert, update, delete, truncate, references, trigger on public.holdings from authenticated;

create or replace function private.add_allocations_to_holdings()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.holdings as h (user_id, ticker, shares, invested, lots)
  select n.user_id, n.ticker, sum(n.shares), sum(n.amount),
         sum(case n.kind when 'buy' then 1 else -1 end)
  from new_rows as n
  group by n.user_id, n.ticker
  order by n.user_id, n.ticker
  on conflict (user_id, ticker) do update
    set shares = h.shares + excluded.shares,
        invested = h.invested + excluded.invested,
        lots = h.lots + excluded.lots,
        updated_at = now();
  return null;
end;
$$;

-- Only a user's deletion deletes allocations; their holdings may already be gone, so no upsert.
create or replace function private.remove_allocations_from_holdings()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.holdings as h
  set shares = h.shares - o.shares, invested = h.invested - o.invested, lots = h.lots - o.lots,
      updated_at = now()
  from (
    select d.user_id, d.ticker, sum(d.shares) as shares, sum(d.amount) as invested,
           sum(case d.kind when 'buy' then 1 else -1 end) as lots
    from old_rows as d
    group by d.user_id, d.ticker
  ) as o
  where h.user_id = o.user_id and h.ticker = o.ticker;
  return null;
end;
$$;

create trigger allocations_holdings_insert
  after insert on public.allocations
  referencing new table as new_rows
  for each statement execute function private.add_allocations_to_holdings();
create trigger allocations_holdings_delete
  after delete on public.allocations
  referencing old table as old_rows
  for each statement execute function private.remove_allocations_from_holdings();

create or replace function public.list_my_holdings()
returns setof public.holdings
language sql
stable
set search_path = ''
as $$
  select h.* from public.holdings as h
  where h.user_id = (select auth.uid()) and h.lots > 0
  order by h.invested desc, h.ticker
$$;
comment on function public.list_my_holdings() is
  'The caller''s current holdings (open lots), largest first: one primary-key range, O(holdings).';

revoke execute on function public.list_my_holdings() from public, anon;
grant execute on function public.list_my_holdings() to authenticated, service_role;

/*
 * public.list_my_allocations: the caller's allocations newest first, keyset on
 * (created_at desc, id desc) through allocations_user_created_idx, at most 100 a page; the cursor is
 * the last row's (created_at, id), and the first page is the cursor (infinity, max id), so one
 * query seeks the index for every page. Security invoker: RLS applies on top of the user filter.
 */
create or replace function public.list_my_allocations(
  p_before_created_at timestamptz default null,
  p_before_id bigint default null,
  p_limit int default 100
)
returns setof public.allocations
language sql
stable
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
  select a.* from public.allocations as a
  where a.user_id = (select auth.uid())
    and a.created_at <= coalesce(p_before_created_at, 'infinity')
    and (a.created_at, a.id)
        < (coalesce(p_before_created_at, 'infinity'), coalesce(p_before_id, 9223372036854775807))
  order by a.created_at desc, a.id desc
  limit least(greatest(coalesce(p_limit, 100), 1), 100)
$$;
comment on function public.list_my_allocations(timestamptz, bigint, int) is
  'The caller''s allocations, newest first, keyset-paged (cursor: last created_at and id), at most 100.';

revoke execute on function public.list_my_allocations(timestamptz, bigint, int) from public, anon;
grant execute on function public.list_my_allocations(timestamptz, bigint, int) to authenticated, service_role;
