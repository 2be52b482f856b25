/*
 * Round-up rules per user: public.investing_settings.
 *
 * What users of round-up products expect (Acorns 2x/3x/10x and a $5 sweep, Revolut x1-x10, Stash
 * pause): a multiplier applied to each round-up, a threshold in dollars the user's ready total must
 * reach before it is swept into orders, and a pause. One row per user; no row means the defaults
 * (multiplier 1, threshold $5, not paused), so the sweep reads them with a left join and coalesce
 * (private.investing_rules_of) and nobody needs a row created at sign-up.
 *
 * Bounds are constraints, not API checks: a Data API write outside them fails with 23514.
 * RLS: a user reads, creates and updates their own row only (one policy per operation, role
 * authenticated); no delete (setting the defaults back is an update); anon nothing. Admins get no
 * policy: a user's rules are the user's.
 */

create table public.investing_settings (
  user_id uuid primary key references auth.users (id) on delete cascade,
  multiplier smallint not null default 1,
  threshold_dollars numeric(5, 2) not null default 5,
  paused boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint investing_settings_multiplier_range check (multiplier between 1 and 10),
  constraint investing_settings_threshold_range check (threshold_dollars between 1 and 100)
);
comment on table public.investing_settings is
  'Per user round-up rules: multiplier 1-10 per round-up, sweep threshold $1-$100 (default 5), paused. No row = defaults.';

alter table public.investing_settings enable row level security;

create policy "investing_settings: read own" on public.investing_settings
  for select to authenticated
  using (user_id = (select auth.uid()));
create policy "investing_settings: create own" on public.investing_settings
  for insert to authenticated
  with check (user_id = (select auth.uid()));
create policy "investing_settings: update own" on public.investing_settings
  for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));

revoke all on public.investing_settings from anon, authenticated;
grant select, insert, update on public.investing_settings to authenticated;
grant select, insert, update, delete on public.investing_settings to service_role;

create or replace function private.touch_investing_settings()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;

create trigger investing_settings_touch
  before update on public.investing_settings
  for each row execute function private.touch_investing_settings();

-- The rules in force for users, defaults filled in (the sweep's one read of this table).
create or replace function private.investing_rules_of(p_user_ids uuid[])
returns table (user_id uuid, multiplier smallint, threshold_dollars numeric, paused boolean)
language sql
stable
set search_path = ''
as $$
  select u.id, coalesce(s.multiplier, 1::smallint), coalesce(s.threshold_dollars, 5), coalesce(s.paused, false)
  from unnest(p_user_ids) as u (id)
  left join public.investing_settings as s on s.user_id = u.id
$$;
comment on function private.investing_rules_of(uuid[]) is
  'Each user''s round-up rules, the defaults (x1, $5, not paused) where they have no row.';
revoke execute on function private.investing_rules_of(uuid[]) from public, anon, authenticated;
revoke execute on function private.touch_investing_settings() from public, anon, authenticated;
