/*
 * Users' reads seek user_id: the read policies of the user-facing tables keep the caller's own rows
 * only, with no `or is_admin()` branch.
 *
 * Why: a policy `user_id = (select auth.uid()) or (select private.is_admin())` is an OR of a column
 * test and a parameter, which no index condition can express. Every natural Data API read then
 * filters instead of seeking: `supabase.from('holdings').select()` was a sequential scan of every
 * user's holdings, and `.from('transactions').select().order('txn_date', desc).limit(50)` walked each
 * month's date index reading other users' rows until it had 50 of the caller's (BENCHMARKS.md, issue
 * 20). With `user_id = (select auth.uid())` alone the uid is an initPlan parameter, so the planner
 * seeks the user's index: transactions_user_date_idx (user_id, txn_date desc, id desc) per month
 * partition under a Merge Append, holdings' primary key (user_id, ticker), allocations_user_created_idx
 * (user_id, created_at desc, id desc), profiles' primary key. Those indexes already exist.
 *
 * Admins read everything through the security definer admin RPCs (admin_list_transactions,
 * admin_list_users, dashboard_stats, the /v1 API's private.analytics_* over the owner's pool), and
 * the worker and the importer run as service_role / postgres, which bypass RLS. Through the tables
 * an admin is a user like any other: their own rows. Consequences, intended:
 * - public.list_users (security invoker, admins only) read all profiles through the admin branch;
 *   it is now security definer (its require_admin() still checks the caller's claims and profile).
 * - An UPDATE or DELETE with a WHERE applies the SELECT policy to the rows it reads, so an admin's
 *   Data API write policies on transactions and profiles now reach only the admin's own rows.
 *   Profiles' update policy says so (own row only): roles are set through the Auth admin API
 *   (app_metadata, `kamioi admin promote`), never by a Data API update. The transactions write
 *   policies belong to the ledger's migration (corrections through an RPC).
 *
 * llm_mappings keeps its policies (a user's suggestions are a separate concern).
 */

-- transactions ------------------------------------------------------------------------------------
drop policy "transactions: read own, admins read all" on public.transactions;
create policy "transactions: read own" on public.transactions
  for select to authenticated
  using (user_id = (select auth.uid()));

-- allocations -------------------------------------------------------------------------------------
drop policy "allocations: read own, admins read all" on public.allocations;
create policy "allocations: read own" on public.allocations
  for select to authenticated
  using (user_id = (select auth.uid()));

-- holdings ----------------------------------------------------------------------------------------
drop policy "holdings: read own, admins read all" on public.holdings;
create policy "holdings: read own" on public.holdings
  for select to authenticated
  using (user_id = (select auth.uid()));

-- profiles ----------------------------------------------------------------------------------------
drop policy "profiles: read own, admins read all" on public.profiles;
create policy "profiles: read own" on public.profiles
  for select to authenticated
  using (id = (select auth.uid()));

drop policy "profiles: update own, admins update all" on public.profiles;
create policy "profiles: update own" on public.profiles
  for update to authenticated
  using (id = (select auth.uid()))
  with check (id = (select auth.uid()));

-- list_users: the admins' profile list no longer leans on the admin policy branch -----------------
alter function public.list_users(timestamptz, uuid, int) security definer;
