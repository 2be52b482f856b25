/*
 * Merchant catalog: well-known merchants with their canonical name, ticker (null for private
 * companies) and Plaid primary category. Rows come from supabase/seed_catalog.sql, generated from
 * kamioi/mapping/data/catalog.csv. The resolver's second tier (after approved mappings) and the
 * ticker check of LLM answers read it.
 *
 * Readable by any signed-in user (the app shows brand names and tickers); written by admins only.
 */

create table public.merchant_catalog (
  merchant_key text primary key,
  canonical_name text not null,
  ticker text check (ticker ~ '^[A-Z][A-Z.]{0,5}$'),
  category text not null,
  aliases text[] not null default '{}',
  updated_at timestamptz not null default now()
);

comment on table public.merchant_catalog is
  'Known merchants by normalized key; the offline mapper and the ticker check rely on it.';

-- Ticker lookups: "is this ticker one we know?" for every LLM answer.
create index merchant_catalog_ticker_idx on public.merchant_catalog (ticker) where ticker is not null;

alter table public.merchant_catalog enable row level security;

create policy merchant_catalog_select on public.merchant_catalog
  for select to authenticated using (true);
create policy merchant_catalog_insert on public.merchant_catalog
  for insert to authenticated with check ((select private.is_admin()));
create policy merchant_catalog_update on public.merchant_catalog
  for update to authenticated using ((select private.is_admin())) with check ((select private.is_admin()));
create policy merchant_catalog_delete on public.merchant_catalog
  for delete to authenticated using ((select private.is_admin()));

revoke all on public.merchant_catalog from anon;
