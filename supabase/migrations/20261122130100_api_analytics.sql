/*
 * Aggregates for the admin dashboard's analytics, read by the admin API (as `postgres`, on the read
 * replica when one is configured) and cached in Upstash. Not exposed through the Data API: they
 * live in `private`, and EXECUTE is not granted to any API role.
 *
 * Each function is bounded by a date window so partition pruning limits the scan to the months
 * asked for (transactions by txn_date, llm_mappings by created_at). Transactions are grouped per
 * merchant first, so the lookup of the mapping in force (merchants -> llm_mappings primary key)
 * runs once per merchant, not once per transaction.
 */

create or replace function private.analytics_category_months(p_from date, p_to date)
returns table (month date, category text, transactions bigint, amount numeric, round_up numeric)
language sql
stable
set search_path = ''
as $$
  with per_merchant as (
    select date_trunc('month', t.txn_date)::date as month, t.merchant_key,
           count(*) as transactions, sum(t.amount) as amount, sum(t.round_up) as round_up
    from public.transactions as t
    where t.txn_date >= p_from and t.txn_date < p_to
    group by 1, 2
  )
  select pm.month, coalesce(m.category, 'UNMAPPED'), sum(pm.transactions)::bigint, sum(pm.amount),
         sum(pm.round_up)
  from per_merchant as pm
  left join public.merchants as mc on mc.merchant_key = pm.merchant_key
  left join public.llm_mappings as m on m.id = mc.mapping_id and m.created_at = mc.mapping_created_at
  group by 1, 2
  order by 1, 2
$$;
comment on function private.analytics_category_months(date, date) is
  'Transactions, amount and round-ups per month and category (of the mapping in force), in [from, to).';

create or replace function private.analytics_top_merchants(p_from date, p_to date, p_limit integer)
returns table (
  merchant_key text, display_name text, company_name text, ticker text, category text,
  transactions bigint, amount numeric, round_up numeric
)
language sql
stable
set search_path = ''
as $$
  with top as (
    select t.merchant_key, count(*) as transactions, sum(t.amount) as amount, sum(t.round_up) as round_up
    from public.transactions as t
    where t.txn_date >= p_from and t.txn_date < p_to and t.merchant_key is not null
    group by t.merchant_key
    order by count(*) desc, t.merchant_key
    limit least(greatest(p_limit, 1), 100)
  )
  select top.merchant_key, coalesce(mc.display_name, top.merchant_key), m.company_name, m.ticker, m.category,
         top.transactions, top.amount, top.round_up
  from top
  left join public.merchants as mc on mc.merchant_key = top.merchant_key
  left join public.llm_mappings as m on m.id = mc.mapping_id and m.created_at = mc.mapping_created_at
  order by top.transactions desc, top.merchant_key
$$;
comment on function private.analytics_top_merchants(date, date, integer) is
  'The merchants with the most transactions in [from, to), at most 100, with their mapping in force.';

create or replace function private.analytics_mapping_throughput(p_from date, p_to date)
returns table (
  day date, created bigint, auto_approved bigint, admin_approved bigint, rejected bigint, pending bigint
)
language sql
stable
set search_path = ''
as $$
  select (m.created_at at time zone 'UTC')::date,
         count(*),
         count(*) filter (where m.status = 'approved' and m.reviewer is null),
         count(*) filter (where m.status = 'approved' and m.reviewer is not null),
         count(*) filter (where m.status = 'rejected'),
         count(*) filter (where m.status = 'pending')
  from public.llm_mappings as m
  where m.created_at >= (p_from::timestamp at time zone 'UTC') and m.created_at < (p_to::timestamp at time zone 'UTC')
  group by 1
  order by 1
$$;
comment on function private.analytics_mapping_throughput(date, date) is
  'Mappings created per UTC day in [from, to), by where they stand now (auto/admin approved, rejected, pending).';
