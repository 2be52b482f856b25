/*
 * User totals follow every UPDATE of transactions, not only INSERT and DELETE.
 *
 * private.user_totals counted round-ups when a row was inserted and assumed round_up never changed
 * after the import; an admin's edit of a round-up (through the Data API, or a corrected amount through
 * public.admin_correct_transaction) left the users list's totals stale for good. The same
 * statement-level function now also handles UPDATE: per user, what the new rows hold minus what the
 * old rows held (count and round-ups), one delta row for each user whose totals actually moved. An
 * update that changes neither (the allocation engine's status and lot updates) writes nothing: the
 * cost is one aggregate over the statement's transition tables. It would also carry a change of
 * owner, which transactions_keep_owner refuses anyway.
 */

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
  elsif tg_op = 'DELETE' then
    insert into private.user_total_deltas (user_id, transactions, round_ups)
    select o.user_id, -count(*), -sum(o.round_up) from old_rows as o group by o.user_id;
  else
    insert into private.user_total_deltas (user_id, transactions, round_ups)
    select c.user_id, sum(c.n), sum(c.round_up)
    from (
      select n.user_id, 1 as n, n.round_up from new_rows as n
      union all
      select o.user_id, -1, -o.round_up from old_rows as o
    ) as c
    group by c.user_id
    having sum(c.n) <> 0 or sum(c.round_up) <> 0;
  end if;
  return null;
end;
$$;

create trigger transactions_user_totals_update
  after update on public.transactions
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.record_transaction_user_totals();
