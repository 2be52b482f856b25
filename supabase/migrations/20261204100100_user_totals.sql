/*
 * Per-user totals for the admin users list: how many transactions a user has, their round-ups,
 * and the amount invested for them, read in O(1) per user instead of counting their rows.
 *
 * Same shape as the dashboard stats: statement-level triggers with transition tables append one
 * delta row per user a statement touched to private.user_total_deltas (insert-only, so concurrent
 * imports and the allocation engine never wait on each other's row locks), and
 * private.compact_user_totals() (pg_cron, every minute) folds the deltas into private.user_totals.
 * A read adds a user's few uncompacted deltas to their total (private.user_totals_of), so it is
 * exact at any moment.
 *
 * Events followed: transactions INSERT and DELETE (count, round-ups), allocations INSERT and DELETE
 * (invested; a reversal carries a negative amount), TRUNCATE of either (that part resets).
 * transactions.round_up and user_id are the only inputs that an UPDATE could move: round_up is
 * written once at import, and a purchase never changes owner (a row trigger refuses it, firing only
 * for an UPDATE that sets user_id, so the allocation engine's updates pay nothing).
 *
 * Backfill: this migration folds the existing rows in while holding SHARE locks on both tables, so
 * no write can fall between the backfill and the triggers.
 */

create table private.user_totals (
  user_id uuid primary key references auth.users (id) on delete cascade,
  transactions bigint not null default 0,
  round_ups numeric not null default 0,
  invested numeric not null default 0,
  updated_at timestamptz not null default now()
);
comment on table private.user_totals is
  'Compacted per-user totals (transactions, round-ups, invested); add private.user_total_deltas for the exact value.';

create table private.user_total_deltas (
  id bigint generated always as identity primary key,
  user_id uuid not null,
  transactions bigint not null default 0,
  round_ups numeric not null default 0,
  invested numeric not null default 0
);
create index user_total_deltas_user_idx on private.user_total_deltas (user_id);
comment on table private.user_total_deltas is
  'Per-statement changes to user totals, folded into private.user_totals by private.compact_user_totals().';

alter table private.user_totals enable row level security;
alter table private.user_total_deltas enable row level security;

create or replace function private.record_transaction_user_totals()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    insert into private.user_total_deltas (user_id, transactions, round_ups)
    select n.user_id, count(*), sum(n.round_up) from new_rows as n group by n.user_id;
  else
    insert into private.user_total_deltas (user_id, transactions, round_ups)
    select o.user_id, -count(*), -sum(o.round_up) from old_rows as o group by o.user_id;
  end if;
  return null;
end;
$$;

create or replace function private.record_allocation_user_totals()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    insert into private.user_total_deltas (user_id, invested)
    select n.user_id, sum(n.amount) from new_rows as n group by n.user_id;
  else
    insert into private.user_total_deltas (user_id, invested)
    select o.user_id, -sum(o.amount) from old_rows as o group by o.user_id;
  end if;
  return null;
end;
$$;

create or replace function private.reset_user_totals_on_truncate()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_table_name = 'transactions' then
    update private.user_totals set transactions = 0, round_ups = 0, updated_at = now()
    where transactions <> 0 or round_ups <> 0;
    update private.user_total_deltas set transactions = 0, round_ups = 0
    where transactions <> 0 or round_ups <> 0;
  else
    update private.user_totals set invested = 0, updated_at = now() where invested <> 0;
    update private.user_total_deltas set invested = 0 where invested <> 0;
  end if;
  return null;
end;
$$;

create or replace function private.refuse_transaction_owner_change()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.user_id is distinct from old.user_id then
    raise exception 'a transaction''s user_id cannot change (transaction %)', old.id
      using errcode = '23514';
  end if;
  return new;
end;
$$;

create or replace function private.compact_user_totals()
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
  folded bigint;
begin
  with moved as (
    delete from private.user_total_deltas returning user_id, transactions, round_ups, invested
  ),
  per_user as (
    select m.user_id, sum(m.transactions) as transactions, sum(m.round_ups) as round_ups,
           sum(m.invested) as invested, count(*) as deltas
    from moved as m
    group by m.user_id
  ),
  -- A deleted user's deltas are dropped with them.
  upserted as (
    insert into private.user_totals as t (user_id, transactions, round_ups, invested)
    select p.user_id, p.transactions, p.round_ups, p.invested
    from per_user as p
    where exists (select 1 from auth.users as u where u.id = p.user_id)
    order by p.user_id
    on conflict (user_id) do update
      set transactions = t.transactions + excluded.transactions,
          round_ups = t.round_ups + excluded.round_ups,
          invested = t.invested + excluded.invested,
          updated_at = now()
  )
  select coalesce(sum(p.deltas), 0) into folded from per_user as p;
  return folded;
end;
$$;
comment on function private.compact_user_totals() is
  'Folds private.user_total_deltas into private.user_totals; returns how many delta rows it folded.';

-- The exact totals of some users: compacted row plus their uncompacted deltas.
create or replace function private.user_totals_of(p_user_ids uuid[])
returns table (user_id uuid, transactions bigint, round_ups numeric, invested numeric)
language sql
stable
security definer
set search_path = ''
as $$
  select u.id,
         coalesce(t.transactions, 0) + coalesce(d.transactions, 0),
         coalesce(t.round_ups, 0) + coalesce(d.round_ups, 0),
         coalesce(t.invested, 0) + coalesce(d.invested, 0)
  from unnest(p_user_ids) as u (id)
  left join private.user_totals as t on t.user_id = u.id
  left join lateral (
    select sum(x.transactions)::bigint as transactions, sum(x.round_ups) as round_ups,
           sum(x.invested) as invested
    from private.user_total_deltas as x
    where x.user_id = u.id
  ) as d on true
$$;

-- The triggers and the backfill commit together, under SHARE locks taken first: writers wait, so no
-- row is counted twice or missed (the CLI runs a migration's statements without a transaction).
begin;
lock table public.transactions, public.allocations in share mode;

create trigger transactions_user_totals_insert
  after insert on public.transactions
  referencing new table as new_rows
  for each statement execute function private.record_transaction_user_totals();
create trigger transactions_user_totals_delete
  after delete on public.transactions
  referencing old table as old_rows
  for each statement execute function private.record_transaction_user_totals();
create trigger transactions_user_totals_truncate
  after truncate on public.transactions
  for each statement execute function private.reset_user_totals_on_truncate();
create trigger transactions_keep_owner
  before update of user_id on public.transactions
  for each row execute function private.refuse_transaction_owner_change();

create trigger allocations_user_totals_insert
  after insert on public.allocations
  referencing new table as new_rows
  for each statement execute function private.record_allocation_user_totals();
create trigger allocations_user_totals_delete
  after delete on public.allocations
  referencing old table as old_rows
  for each statement execute function private.record_allocation_user_totals();
create trigger allocations_user_totals_truncate
  after truncate on public.allocations
  for each statement execute function private.reset_user_totals_on_truncate();

insert into private.user_totals (user_id, transactions, round_ups, invested)
select u.id, coalesce(t.n, 0), coalesce(t.round_ups, 0), coalesce(a.invested, 0)
from auth.users as u
left join (
  select user_id, count(*) as n, sum(round_up) as round_ups from public.transactions group by user_id
) as t on t.user_id = u.id
left join (
  select user_id, sum(amount) as invested from public.allocations group by user_id
) as a on a.user_id = u.id
where t.user_id is not null or a.user_id is not null;
commit;

select cron.schedule('kamioi-compact-user-totals', '* * * * *', 'select private.compact_user_totals()');
