/*
 * LLM call ledger: one row per HTTP attempt to an LLM provider (including retries and failures),
 * so cost, latency and error rates are auditable and the dashboard can show LLM calls per 1,000
 * transactions. Written by the worker/API (as postgres); admins read it; nobody else sees it.
 */

create table public.llm_calls (
  id bigint generated always as identity primary key,
  created_at timestamptz not null default now(),
  provider text not null,
  model text not null,
  prompt_version text not null,
  merchants integer not null check (merchants >= 0),
  prompt_tokens integer not null default 0,
  completion_tokens integer not null default 0,
  cost_usd numeric(12, 6) not null default 0,
  latency_ms integer not null check (latency_ms >= 0),
  outcome text not null check (outcome in ('ok', 'invalid_output', 'http_error', 'timeout', 'rate_limited')),
  error text,
  attempt integer not null default 1,
  job_id bigint
);

comment on table public.llm_calls is 'Ledger of every LLM provider attempt: tokens, cost, latency, outcome.';

-- Admin dashboard: calls and cost over time, newest first (keyset on created_at, id).
create index llm_calls_created_at_idx on public.llm_calls (created_at desc, id desc);

alter table public.llm_calls enable row level security;

create policy llm_calls_select on public.llm_calls
  for select to authenticated using ((select private.is_admin()));

revoke all on public.llm_calls from anon;
revoke insert, update, delete on public.llm_calls from authenticated;
