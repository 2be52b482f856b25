/*
 * Row-level security and privileges for every table in `public`.
 *
 * Rules (Supabase's RLS performance guidance): every policy names its role (`to authenticated`),
 * one policy per operation (no `for all`, no overlapping permissive policies), auth calls wrapped
 * in a select so they run once per statement as an initPlan ((select auth.uid()),
 * (select private.is_admin())), and every column a policy filters on is indexed (profiles.id,
 * llm_mappings.submitted_by, transactions.user_id, allocations.user_id).
 *
 * Who may do what (service_role and postgres bypass RLS: the worker and the admin API):
 * - anon: nothing. Table privileges are revoked, so a request without a login is refused outright.
 * - profiles: a user reads and updates their own row; admins read and update all. Inserts come
 *   from the sign-up trigger, deletes from deleting the auth user. Supabase Auth's hook role reads.
 * - llm_mappings: admins do everything. A user may suggest a mapping (source 'user', pending,
 *   submitted_by = self), read their suggestions, and edit or withdraw them while pending.
 * - merchants: admins only (the registry reveals every merchant seen in anyone's purchases).
 * - transactions, allocations: a user reads their own; admins read all and write. Imports and
 *   investing run as service_role / postgres.
 *
 * Protected columns: RLS decides rows, not columns, so BEFORE UPDATE triggers reject changes by
 * non-admin API callers (roles anon / authenticated) to review columns of llm_mappings (status,
 * admin_approved, reviewer, reviewed_at, source, tier, submitted_by) and to profiles.role / email,
 * even on rows the caller owns. Trusted callers (service_role, postgres, security definer
 * functions) pass.
 *
 * TRUNCATE, REFERENCES and TRIGGER bypass or sidestep RLS, so API roles lose them.
 */

-- Privileges --------------------------------------------------------------------------------------
revoke all on public.profiles, public.llm_mappings, public.merchants, public.transactions,
  public.allocations from anon;
revoke truncate, references, trigger on public.profiles, public.llm_mappings, public.merchants,
  public.transactions, public.allocations from authenticated;

-- Who counts as an admin for column protection: only API roles are checked.
create or replace function private.is_untrusted_non_admin()
returns boolean
language sql
stable
set search_path = ''
as $$
  select current_user in ('anon', 'authenticated') and not (select private.is_admin())
$$;
grant execute on function private.is_untrusted_non_admin() to authenticated;

-- profiles ----------------------------------------------------------------------------------------
create policy "profiles: read own, admins read all" on public.profiles
  for select to authenticated
  using (id = (select auth.uid()) or (select private.is_admin()));

create policy "profiles: update own, admins update all" on public.profiles
  for update to authenticated
  using (id = (select auth.uid()) or (select private.is_admin()))
  with check (id = (select auth.uid()) or (select private.is_admin()));

create policy "profiles: the auth hook reads roles" on public.profiles
  for select to supabase_auth_admin
  using (true);

create or replace function private.protect_profile_columns()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if (new.role is distinct from old.role or new.email is distinct from old.email)
     and private.is_untrusted_non_admin() then
    raise exception 'only admins can change a profile''s role or email' using errcode = '42501';
  end if;
  return new;
end;
$$;

create trigger profiles_protect_columns
  before update on public.profiles
  for each row execute function private.protect_profile_columns();

-- llm_mappings ------------------------------------------------------------------------------------
create policy "llm_mappings: admins read all, users read their suggestions" on public.llm_mappings
  for select to authenticated
  using ((select private.is_admin()) or submitted_by = (select auth.uid()));

create policy "llm_mappings: admins insert, users suggest pending mappings" on public.llm_mappings
  for insert to authenticated
  with check (
    (select private.is_admin())
    or (
      submitted_by = (select auth.uid())
      and source = 'user'
      and status = 'pending'
      and admin_approved = false
      and reviewer is null
      and reviewed_at is null
    )
  );

create policy "llm_mappings: admins update all, users their pending suggestions" on public.llm_mappings
  for update to authenticated
  using ((select private.is_admin()) or (submitted_by = (select auth.uid()) and status = 'pending'))
  with check ((select private.is_admin()) or submitted_by = (select auth.uid()));

create policy "llm_mappings: admins delete all, users withdraw pending suggestions" on public.llm_mappings
  for delete to authenticated
  using ((select private.is_admin()) or (submitted_by = (select auth.uid()) and status = 'pending'));

create or replace function private.protect_mapping_review_columns()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if (new.status is distinct from old.status
      or new.admin_approved is distinct from old.admin_approved
      or new.reviewer is distinct from old.reviewer
      or new.reviewed_at is distinct from old.reviewed_at
      or new.source is distinct from old.source
      or new.tier is distinct from old.tier
      or new.submitted_by is distinct from old.submitted_by)
     and private.is_untrusted_non_admin() then
    raise exception 'only admins can change a mapping''s review columns' using errcode = '42501';
  end if;
  return new;
end;
$$;

create trigger llm_mappings_protect_review_columns
  before update on public.llm_mappings
  for each row execute function private.protect_mapping_review_columns();

-- merchants ---------------------------------------------------------------------------------------
create policy "merchants: admins read" on public.merchants
  for select to authenticated using ((select private.is_admin()));
create policy "merchants: admins insert" on public.merchants
  for insert to authenticated with check ((select private.is_admin()));
create policy "merchants: admins update" on public.merchants
  for update to authenticated using ((select private.is_admin())) with check ((select private.is_admin()));
create policy "merchants: admins delete" on public.merchants
  for delete to authenticated using ((select private.is_admin()));

-- transactions ------------------------------------------------------------------------------------
create policy "transactions: read own, admins read all" on public.transactions
  for select to authenticated
  using (user_id = (select auth.uid()) or (select private.is_admin()));
create policy "transactions: admins insert" on public.transactions
  for insert to authenticated with check ((select private.is_admin()));
create policy "transactions: admins update" on public.transactions
  for update to authenticated using ((select private.is_admin())) with check ((select private.is_admin()));
create policy "transactions: admins delete" on public.transactions
  for delete to authenticated using ((select private.is_admin()));

-- allocations -------------------------------------------------------------------------------------
create policy "allocations: read own, admins read all" on public.allocations
  for select to authenticated
  using (user_id = (select auth.uid()) or (select private.is_admin()));
create policy "allocations: admins insert" on public.allocations
  for insert to authenticated with check ((select private.is_admin()));
create policy "allocations: admins update" on public.allocations
  for update to authenticated using ((select private.is_admin())) with check ((select private.is_admin()));
create policy "allocations: admins delete" on public.allocations
  for delete to authenticated using ((select private.is_admin()));
