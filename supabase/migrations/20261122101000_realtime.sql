/*
 * Realtime: broadcast from the database on private topics, instead of frontend polling.
 *
 * Topics (private channels; events in snake_case):
 * - admin:review_queue  event review_queue_changed: one message per STATEMENT that touched pending
 *   mappings (inserted, reviewed, edited, deleted), carrying counts, never one per row: a 1M-row
 *   import sends one message per insert statement. The admin UI refetches its first page.
 * - user:<uid>:transactions  events transaction_changed / allocation_changed: one message per
 *   statement per affected user, with the operation, the row count and up to 100 ids, so a bulk
 *   import touching many users sends one message to each, and no user sees another's rows.
 * - admin:imports  event import_progress: sent by the jobs migrations (one per chunk); authorised
 *   here with the other topics because all policies on realtime.messages live in one place.
 *
 * Authorisation: RLS on realtime.messages, one SELECT policy (may listen) for `authenticated`:
 * admin topics for admins, a user topic for that user. There is no INSERT policy: clients cannot
 * send on these topics; only the database does. The trigger functions are security definer
 * (owner postgres, which bypasses RLS) so that a write by any role can insert the broadcast row.
 *
 * Postgres Changes (publication supabase_realtime): only public.profiles and public.merchants,
 * with REPLICA IDENTITY DEFAULT (primary key). Both change rarely relative to subscribers (a
 * profile edit or role change; a new merchant key or a review moving the mapping in force), so
 * Realtime's per-change, per-subscriber RLS check stays cheap, and their consumers (a user's own
 * profile; the admin merchant registry) want whole rows. FULL is not used: with RLS enabled
 * Realtime sends only primary keys of old rows anyway, and FULL would write every old row to WAL.
 * llm_mappings, transactions and allocations are NOT published: bulk imports write millions of
 * rows, and decoding + re-checking RLS for each of them per subscriber is exactly the load
 * (documented ceiling ~30 changes/s at 500 subscribers) that the statement-level broadcasts avoid.
 */

-- Who may listen --------------------------------------------------------------------------------
create policy "realtime: admins hear admin topics, users their own topic" on realtime.messages
  for select to authenticated
  using (
    realtime.messages.extension = 'broadcast'
    and (
      ((select realtime.topic()) in ('admin:imports', 'admin:review_queue') and (select private.is_admin()))
      or (select realtime.topic()) = 'user:' || (select auth.uid())::text || ':transactions'
    )
  );

-- Review queue ----------------------------------------------------------------------------------
create or replace function private.broadcast_review_queue_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  pending_before bigint := 0;
  pending_after bigint := 0;
begin
  if tg_op in ('INSERT', 'UPDATE') then
    execute 'select count(*) from new_rows where status = ''pending''' into pending_after;
  end if;
  if tg_op in ('DELETE', 'UPDATE') then
    execute 'select count(*) from old_rows where status = ''pending''' into pending_before;
  end if;
  if pending_before > 0 or pending_after > 0 then
    perform realtime.send(
      jsonb_build_object(
        'operation', tg_op,
        'pending_before', pending_before,
        'pending_after', pending_after,
        'pending_delta', pending_after - pending_before
      ),
      'review_queue_changed',
      'admin:review_queue',
      true
    );
  end if;
  return null;
end;
$$;

create trigger llm_mappings_broadcast_insert
  after insert on public.llm_mappings
  referencing new table as new_rows
  for each statement execute function private.broadcast_review_queue_change();
create trigger llm_mappings_broadcast_update
  after update on public.llm_mappings
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.broadcast_review_queue_change();
create trigger llm_mappings_broadcast_delete
  after delete on public.llm_mappings
  referencing old table as old_rows
  for each statement execute function private.broadcast_review_queue_change();

-- A user's transactions and allocations ---------------------------------------------------------
-- One message per affected user per statement. TG_ARGV[0] is the event name.
create or replace function private.broadcast_user_changes()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  changed_rows text := case tg_op
    when 'INSERT' then 'select user_id, id from new_rows'
    when 'DELETE' then 'select user_id, id from old_rows'
    else 'select user_id, id from new_rows union select user_id, id from old_rows'
  end;
  per_user record;
begin
  for per_user in execute format(
    'select user_id, count(*) as row_count, (array_agg(id order by id desc))[1:100] as ids '
    'from (%s) as changed group by user_id', changed_rows)
  loop
    perform realtime.send(
      jsonb_build_object('operation', tg_op, 'table', tg_table_name,
                         'count', per_user.row_count, 'ids', to_jsonb(per_user.ids)),
      tg_argv[0],
      'user:' || per_user.user_id::text || ':transactions',
      true
    );
  end loop;
  return null;
end;
$$;

create trigger transactions_broadcast_insert
  after insert on public.transactions
  referencing new table as new_rows
  for each statement execute function private.broadcast_user_changes('transaction_changed');
create trigger transactions_broadcast_update
  after update on public.transactions
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.broadcast_user_changes('transaction_changed');
create trigger transactions_broadcast_delete
  after delete on public.transactions
  referencing old table as old_rows
  for each statement execute function private.broadcast_user_changes('transaction_changed');

create trigger allocations_broadcast_insert
  after insert on public.allocations
  referencing new table as new_rows
  for each statement execute function private.broadcast_user_changes('allocation_changed');
create trigger allocations_broadcast_update
  after update on public.allocations
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.broadcast_user_changes('allocation_changed');
create trigger allocations_broadcast_delete
  after delete on public.allocations
  referencing old table as old_rows
  for each statement execute function private.broadcast_user_changes('allocation_changed');

-- Postgres Changes ------------------------------------------------------------------------------
alter table public.profiles replica identity default;
alter table public.merchants replica identity default;
alter publication supabase_realtime add table public.profiles, public.merchants;
