/*
 * Bounded linking when an admin reviews one mapping.
 *
 * Approving a mapping links its merchant's pending transactions to it in the same statement
 * (private.link_transactions_to_mappings, merchant resolution migration). For a new merchant that is
 * a few rows, but the cost grows with the merchant's backlog (~0.3 ms a row with the users'
 * broadcasts and stats deltas, BENCHMARKS.md): ~100k pending rows reach the admin API's 30 s
 * statement timeout and ~25k the Data API's 8 s, so the merchants with the most waiting purchases
 * could not be approved at all.
 *
 * - review_mapping now links at most `kamioi.link_inline_rows` transactions inline (1000 unless the
 *   transaction already set it) and, if there may be more, queues a `transactions.link` job for the
 *   merchant key in the same transaction (jobs/link_transactions.py). The review commits in bounded
 *   time; the rest of the backlog follows within seconds, in chunks, each broadcast to its users.
 * - private.link_pending_transactions(key, limit): up to `limit` pending transactions of a merchant
 *   take its mapping in force, if that mapping is approved. Idempotent, so a job re-run after a
 *   crash resumes where the last committed chunk ended.
 * - Statements that move many merchants at once (imports, the resolver's approvals, bulk review)
 *   leave the setting unset and keep linking everything set-based in their statement: they run in
 *   the worker, without a statement timeout.
 */

create or replace function private.link_pending_transactions(p_merchant_key text, p_limit integer)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  batch_ids bigint[];
  first_day date;
  last_day date;
  linked integer;
begin
  -- The batch first, then an update by primary key: joining a LIMITed subquery back to the
  -- partitioned table lets the planner hash every pending transaction (measured: 340 ms a review).
  select array_agg(p.id), min(p.txn_date), max(p.txn_date) into batch_ids, first_day, last_day
  from (
    select t.id, t.txn_date
    from public.transactions as t
    where t.merchant_key = p_merchant_key and t.status = 'pending'
    limit greatest(p_limit, 1)
  ) as p;
  if batch_ids is null then
    return 0;
  end if;
  update public.transactions as t
  set mapping_id = f.mapping_id, status = 'mapped'
  from (
    select mr.mapping_id
    from public.merchants as mr
    join public.llm_mappings as m
      on m.id = mr.mapping_id and m.created_at = mr.mapping_created_at and m.status = 'approved'
    where mr.merchant_key = p_merchant_key
  ) as f
  where t.id = any(batch_ids) and t.txn_date between first_day and last_day
    and t.merchant_key = p_merchant_key and t.status = 'pending';
  get diagnostics linked = row_count;
  return linked;
end;
$$;
comment on function private.link_pending_transactions(text, integer) is
  'Up to p_limit pending transactions of a merchant take its approved mapping in force; returns how many.';

create or replace function private.link_transactions_to_mappings()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  inline_rows integer := nullif(current_setting('kamioi.link_inline_rows', true), '')::integer;
  approved record;
begin
  if inline_rows is null then
    update public.transactions as t
    set mapping_id = n.mapping_id, status = 'mapped'
    from changed_merchants as n
    join public.llm_mappings as m
      on m.id = n.mapping_id and m.created_at = n.mapping_created_at and m.status = 'approved'
    where t.merchant_key = n.merchant_key and t.status = 'pending';
    return null;
  end if;

  for approved in
    select n.merchant_key
    from changed_merchants as n
    join public.llm_mappings as m
      on m.id = n.mapping_id and m.created_at = n.mapping_created_at and m.status = 'approved'
  loop
    if private.link_pending_transactions(approved.merchant_key, inline_rows) >= inline_rows then
      perform private.enqueue_job('transactions.link', jsonb_build_object('merchant_key', approved.merchant_key));
    end if;
  end loop;
  return null;
end;
$$;
comment on function private.link_transactions_to_mappings() is
  'Pending transactions of merchants whose mapping in force is approved become mapped to it; with '
  'kamioi.link_inline_rows set, at most that many per merchant inline and a transactions.link job for the rest.';

create or replace function public.review_mapping(p_id bigint, p_created_at timestamptz, p_decision text)
returns public.llm_mappings
language plpgsql
volatile
set search_path = ''
as $$
declare
  reviewed public.llm_mappings;
  caller_inline_rows text := nullif(current_setting('kamioi.link_inline_rows', true), '');
begin
  perform private.require_admin();
  if p_decision is null or p_decision not in ('approved', 'rejected') then
    raise exception 'decision must be approved or rejected, got %', coalesce(p_decision, 'null')
      using errcode = '22023';
  end if;

  update public.llm_mappings as m
  set status = p_decision,
      admin_approved = (p_decision = 'approved'),
      reviewer = (select auth.uid()),
      reviewed_at = now()
  where m.id = p_id and m.created_at = p_created_at
  returning m.* into reviewed;

  if not found then
    raise exception 'mapping % at % not found', p_id, p_created_at using errcode = 'P0002';
  end if;

  if p_decision = 'approved' then
    -- Bounded: the merchant's backlog beyond this many rows is linked by a job (header).
    perform set_config('kamioi.link_inline_rows', coalesce(caller_inline_rows, '1000'), true);
    insert into public.merchants as mr (merchant_key, display_name, mapping_id, mapping_created_at)
    values (reviewed.merchant_key, coalesce(reviewed.company_name, reviewed.merchant_name),
            reviewed.id, reviewed.created_at)
    on conflict (merchant_key) do update
      set mapping_id = excluded.mapping_id, mapping_created_at = excluded.mapping_created_at;
    perform set_config('kamioi.link_inline_rows', coalesce(caller_inline_rows, ''), true);
  else
    update public.merchants as mr
    set mapping_id = null, mapping_created_at = null
    where mr.merchant_key = reviewed.merchant_key
      and mr.mapping_id = reviewed.id and mr.mapping_created_at = reviewed.created_at;
  end if;

  return reviewed;
end;
$$;
comment on function public.review_mapping(bigint, timestamptz, text) is
  'Admin review: approve (and put in force for its merchant) or reject one mapping.';

revoke execute on function private.link_pending_transactions(text, integer) from public, anon, authenticated;
