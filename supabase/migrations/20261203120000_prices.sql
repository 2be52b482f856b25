/*
 * prices: the share prices round-ups are invested at, one row per quote a price provider gave
 * (kamioi/prices: labelled sample prices offline, a real HTTP provider behind settings).
 *
 * History, never overwritten: a new quote is a new row, so every allocation keeps pointing at the
 * exact price it used (allocations.price_id). The allocation engine reads, per ticker, the newest
 * quote no older than PRICE_MAX_AGE_S: index (ticker, as_of desc) makes that one probe per ticker.
 *
 * private.price_holds: why a ticker cannot be priced now (the provider had no quote, only a stale
 * one, does not know the ticker, or failed) and when to ask again. Transactions of a held ticker
 * stay `mapped`; their reason is their ticker's hold, recorded once per ticker instead of being
 * written onto each of its (possibly millions of) transactions.
 *
 * RLS: prices are market data, readable by any signed-in user (the app shows the price an
 * allocation used). Nobody writes them through the Data API; only the worker (postgres) does.
 */

create table public.prices (
  id bigint generated always as identity primary key,
  ticker text not null check (ticker ~ '^[A-Z][A-Z0-9.-]{0,9}$'),
  as_of timestamptz not null,
  price numeric(18, 6) not null check (price > 0),
  source text not null check (source ~ '^[a-z][a-z0-9_]*$'),
  fetched_at timestamptz not null default now(),
  constraint prices_one_quote_per_source unique (ticker, source, as_of)
);
comment on table public.prices is
  'Quotes allocations are made at (ticker, as_of, price, source); source ''sample'' is synthetic demo data.';

create index prices_ticker_as_of_idx on public.prices (ticker, as_of desc, id desc);

alter table public.prices enable row level security;

create policy "prices: signed-in users read" on public.prices
  for select to authenticated using (true);

revoke all on public.prices from anon;
revoke insert, update, delete, truncate, references, trigger on public.prices from authenticated;

create table private.price_holds (
  ticker text primary key,
  reason text not null check (reason in ('no_quote', 'stale_quote', 'unknown_ticker', 'provider_error')),
  detail text,
  attempts integer not null default 1 check (attempts >= 1),
  first_held_at timestamptz not null default now(),
  last_tried_at timestamptz not null default now(),
  retry_at timestamptz not null
);
comment on table private.price_holds is
  'Tickers the price provider could not price, why, and when the allocation engine asks again.';
