/*
 * Users' profiles and roles.
 *
 * public.profiles has one row per auth.users row (created by a trigger on sign-up, backfilled for
 * users that already exist) and holds the role: 'admin' | 'user'. The role is authoritative here:
 *
 * - public.custom_access_token_hook copies it into every access token as the `user_role` claim,
 *   so the frontend can route without a query. Supabase Auth runs the hook as supabase_auth_admin,
 *   which gets EXECUTE and read access to profiles and nothing else; API roles cannot call it.
 * - private.is_admin() reads it (not the token) so a demotion takes effect on the next request,
 *   not when the token expires. It is security definer so policies on profiles itself can call it
 *   without recursing into profiles' RLS, stable so `(select private.is_admin())` in a policy is
 *   evaluated once per statement (an initPlan), not once per row.
 *
 * Who may change `role` is enforced by a trigger in the row-level security migration.
 */

create table public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  email text,
  display_name text,
  role text not null default 'user' check (role in ('admin', 'user')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.profiles is 'One row per auth user: display data and the admin/user role.';

-- list_users pages newest first: keyset on (created_at desc, id desc).
create index profiles_created_at_id_idx on public.profiles (created_at desc, id desc);

alter table public.profiles enable row level security;

create trigger profiles_touch_updated_at
  before update on public.profiles
  for each row execute function private.touch_updated_at();

-- Sign-up creates the profile. Security definer: it runs inside Supabase Auth's insert.
create or replace function private.create_profile_for_new_user()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.profiles (id, email, display_name)
  values (new.id, new.email, coalesce(new.raw_user_meta_data ->> 'display_name', split_part(new.email, '@', 1)))
  on conflict (id) do nothing;
  return new;
end;
$$;

create trigger on_auth_user_created
  after insert on auth.users
  for each row execute function private.create_profile_for_new_user();

insert into public.profiles (id, email, display_name)
select u.id, u.email, coalesce(u.raw_user_meta_data ->> 'display_name', split_part(u.email, '@', 1))
from auth.users as u
on conflict (id) do nothing;

create or replace function private.is_admin()
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.profiles as p
    where p.id = (select auth.uid()) and p.role = 'admin'
  )
$$;
comment on function private.is_admin() is 'Whether the requesting user is an admin; call it wrapped: (select private.is_admin()).';
grant execute on function private.is_admin() to authenticated, service_role;

create or replace function public.custom_access_token_hook(event jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  claims jsonb := coalesce(event -> 'claims', '{}'::jsonb);
  profile_role text;
begin
  select p.role into profile_role from public.profiles as p where p.id = (event ->> 'user_id')::uuid;
  claims := jsonb_set(claims, '{user_role}', to_jsonb(coalesce(profile_role, 'user')));
  return jsonb_set(event, '{claims}', claims);
end;
$$;
comment on function public.custom_access_token_hook(jsonb) is 'Supabase Auth hook: adds the user_role claim.';

grant usage on schema public to supabase_auth_admin;
grant execute on function public.custom_access_token_hook(jsonb) to supabase_auth_admin;
revoke execute on function public.custom_access_token_hook(jsonb) from public, anon, authenticated;
grant select on table public.profiles to supabase_auth_admin;
