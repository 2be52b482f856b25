/*
 * Merchant resolution support (kamioi/mapping/resolver.py): the similarity tier, and linking
 * transactions to their merchant's mapping once it is approved.
 *
 * - private.similar_known_merchants(keys, threshold): for each normalized key, the closest known
 *   merchant by pg_trgm similarity at or above the threshold, among merchants with an approved
 *   mapping in force (public.merchants.mapping_id, which only review_mapping and the resolver's
 *   approvals set) and the catalog's keys and aliases. The threshold is the one measured on the
 *   evaluation set (`kamioi eval`, BENCHMARKS.md); the caller passes it so it stays a setting.
 *   Ties go to the catalog, then to the lexically first key, so the answer is deterministic.
 * - Trigram indexes so the `%` operator in the function above probes an index per key instead of
 *   comparing every key with everything: GIN on public.merchants(merchant_key) for merchants in
 *   force, GiST on private.merchant_catalog_spellings, one row per catalog key or alias (measured:
 *   ~7 s for 600 keys against the seeded catalog when aliases were unnested per query). That table
 *   is derived: a row trigger on public.merchant_catalog rewrites a merchant's spellings when its
 *   key or aliases change (a few hundred admin-edited rows), the foreign key drops them with the
 *   merchant, and the seed (applied after migrations) fills it through the trigger.
 * - private.link_transactions_to_mappings(): statement-level trigger on public.merchants. When a
 *   merchant gets (or changes) its mapping in force and that mapping is approved, its pending
 *   transactions take the mapping (mapping_id, status 'mapped') in the same statement, whoever
 *   moved the pointer: an admin's review_mapping, the resolver's auto-approval, a mappings import.
 *   One set-based UPDATE per statement (transition table), probing the partial index below.
 * - Partial index public.transactions(merchant_key) where status = 'pending': the linking above and
 *   the map_merchants job's "unmapped merchants of this import" scan only pending rows.
 */

create index merchants_key_trgm_in_force_idx
  on public.merchants using gin (merchant_key extensions.gin_trgm_ops)
  where mapping_id is not null;

create index transactions_pending_merchant_key_idx
  on public.transactions (merchant_key)
  where status = 'pending';

create table private.merchant_catalog_spellings (
  spelling text not null,
  merchant_key text not null references public.merchant_catalog (merchant_key) on delete cascade on update cascade,
  primary key (spelling, merchant_key)
);
comment on table private.merchant_catalog_spellings is
  'Catalog keys and aliases, one row each, trigram-indexed for the resolver similarity tier.';

-- GiST, not GIN: on a table this small a GIN `%` probe costs ~1.8 ms a key, a GiST one ~0.3 ms.
create index merchant_catalog_spellings_trgm_idx
  on private.merchant_catalog_spellings using gist (spelling extensions.gist_trgm_ops);
create index merchant_catalog_spellings_merchant_idx on private.merchant_catalog_spellings (merchant_key);

create or replace function private.sync_catalog_spellings()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  delete from private.merchant_catalog_spellings where merchant_key = new.merchant_key;
  insert into private.merchant_catalog_spellings (spelling, merchant_key)
  select distinct s.spelling, new.merchant_key
  from unnest(array_prepend(new.merchant_key, new.aliases)) as s(spelling)
  where s.spelling <> '';
  return null;
end;
$$;

create trigger merchant_catalog_sync_spellings
  after insert or update of merchant_key, aliases on public.merchant_catalog
  for each row execute function private.sync_catalog_spellings();

insert into private.merchant_catalog_spellings (spelling, merchant_key)
select distinct s.spelling, c.merchant_key
from public.merchant_catalog as c
cross join lateral unnest(array_prepend(c.merchant_key, c.aliases)) as s(spelling)
where s.spelling <> ''
on conflict do nothing;

create or replace function private.similar_known_merchants(p_keys text[], p_threshold real)
returns table (
  merchant_key text,
  matched_key text,
  similarity real,
  company_name text,
  ticker text,
  category text,
  from_catalog boolean
)
language plpgsql
volatile  -- sets pg_trgm.similarity_threshold for the rest of the transaction
set search_path = ''
as $$
begin
  if p_threshold is null or p_threshold <= 0 or p_threshold > 1 then
    raise exception 'threshold must be in (0, 1], got %', p_threshold using errcode = '22023';
  end if;
  -- The `%` operator reads its threshold from this setting (transaction-local here).
  perform set_config('pg_trgm.similarity_threshold', p_threshold::text, true);
  return query
  with wanted as (
    select distinct k.key from unnest(p_keys) as k(key) where k.key <> ''
  ),
  -- Materialized: trigram hits first, one index probe per key; left to itself the planner joins the
  -- approved mappings first and tests `%` on every (key, merchant) pair.
  catalog_hits as materialized (
    select w.key, s.merchant_key as matched_key, max(extensions.similarity(w.key, s.spelling)) as sim
    from wanted as w
    join private.merchant_catalog_spellings as s on s.spelling operator(extensions.%) w.key
    group by w.key, s.merchant_key
  ),
  merchant_hits as materialized (
    select w.key, mr.merchant_key as matched_key, extensions.similarity(w.key, mr.merchant_key) as sim,
           mr.mapping_id, mr.mapping_created_at
    from wanted as w
    join public.merchants as mr
      on mr.mapping_id is not null and mr.merchant_key operator(extensions.%) w.key
    where mr.merchant_key <> w.key
  ),
  candidates as (
    select h.key, h.matched_key, h.sim, c.canonical_name, c.ticker, c.category, true as from_catalog
    from catalog_hits as h
    join public.merchant_catalog as c on c.merchant_key = h.matched_key
    union all
    select h.key, h.matched_key, h.sim, m.company_name, m.ticker, m.category, false
    from merchant_hits as h
    join public.llm_mappings as m
      on m.id = h.mapping_id and m.created_at = h.mapping_created_at and m.status = 'approved'
  )
  select distinct on (c.key) c.key, c.matched_key, c.sim, c.canonical_name, c.ticker, c.category, c.from_catalog
  from candidates as c
  where c.sim >= p_threshold
  order by c.key, c.sim desc, c.from_catalog desc, c.matched_key;
end;
$$;
comment on function private.similar_known_merchants(text[], real) is
  'Resolver similarity tier: closest approved merchant or catalog entry per key, at or above a threshold.';

create or replace function private.link_transactions_to_mappings()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.transactions as t
  set mapping_id = n.mapping_id, status = 'mapped'
  from changed_merchants as n
  join public.llm_mappings as m
    on m.id = n.mapping_id and m.created_at = n.mapping_created_at and m.status = 'approved'
  where t.merchant_key = n.merchant_key and t.status = 'pending';
  return null;
end;
$$;
comment on function private.link_transactions_to_mappings() is
  'Pending transactions of merchants whose mapping in force is approved become mapped to it.';

create trigger merchants_link_transactions_insert
  after insert on public.merchants
  referencing new table as changed_merchants
  for each statement execute function private.link_transactions_to_mappings();

create trigger merchants_link_transactions_update
  after update on public.merchants
  referencing new table as changed_merchants
  for each statement execute function private.link_transactions_to_mappings();
