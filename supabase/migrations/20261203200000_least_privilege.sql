/*
 * Least privilege for the API roles: each may do what the policies are written for, nothing more.
 *
 * Tried as an attacker holding a user token would (a direct connection as `authenticator`, the
 * request's role and claims set the way PostgREST sets them), RLS held for every row, but three
 * grants were wider than they must be:
 *
 * - Tables. Supabase's default privileges give anon, authenticated and service_role ALL on every
 *   new table in public, and earlier migrations took back only some of it, table by table:
 *   `authenticated` still held TRUNCATE, REFERENCES and TRIGGER on public.llm_calls and
 *   public.merchant_catalog (TRUNCATE ignores RLS: a user could empty the LLM ledger), and
 *   INSERT / DELETE on public.profiles, for which no policy exists. Now, for every table in
 *   public and private (whichever migration created it), anon and authenticated lose everything
 *   and get back exactly the commands (SELECT / INSERT / UPDATE / DELETE) that a policy applying
 *   to them (to that role or to PUBLIC) exists for, on tables with RLS enabled. A table without
 *   RLS, a view and a partition get nothing. service_role keeps its DML (it bypasses RLS: the admin
 *   API's secret key) but loses TRUNCATE, REFERENCES and TRIGGER: nothing it runs needs them; the
 *   worker, the API pools and the tests connect as postgres, the owner, which keeps everything.
 * - Sequences. Identity columns draw their values without any privilege on their sequence
 *   (checked: an insert through a policy works with none), so anon and authenticated lose every
 *   sequence grant; a sequence behind a serial column (nextval default) stays usable by a role that
 *   may insert into its table. service_role keeps USAGE and SELECT, not UPDATE (setval).
 * - Functions. The private schema migration meant to stop PostgreSQL's EXECUTE-to-PUBLIC default
 *   with `alter default privileges ... in schema private revoke execute on functions from public`,
 *   but a per-schema default can only add to the global one, never take from it (pg_default_acl
 *   had no entry), so ~25 private functions (the job queue, import creation and cancellation,
 *   linking, analytics) were executable by anon and authenticated. EXECUTE on everything in
 *   private is revoked from PUBLIC, anon and authenticated, then granted back only where the
 *   querying role itself runs the function:
 *     private.is_admin()               called by policies (and by the two below)
 *     private.require_admin()          called by the SECURITY INVOKER RPCs list_pending_mappings,
 *                                      list_users and review_mapping
 *     private.is_untrusted_non_admin() called by the column-protection triggers on profiles and
 *                                      llm_mappings, which run as the writer
 *   plus, generically, any private function a policy depends on (pg_depend), to the roles that
 *   policy applies to. Security definer functions run as their owner, so what they call needs no
 *   grant, and a trigger's own function is checked when the trigger is created, not when it fires.
 *   service_role keeps its explicit grants (those three; create, cancel and retry an import).
 *   `authenticated` keeps USAGE on private: the bodies of the invoker functions above name
 *   private.* at run time. anon never had it. No function in public is executable by anon or
 *   PUBLIC (custom_access_token_hook is for supabase_auth_admin only, as before).
 * - Realtime. The SELECT policy on realtime.messages checked the setting realtime.topic() but not
 *   the row: a user who set the setting to their own topic read every topic's messages. It is
 *   re-created with `realtime.messages.topic = (select realtime.topic())`. Its other grants
 *   (realtime and auth are Supabase's schemas) are left as Supabase sets them.
 *
 * Default privileges, so later tables and functions start closed (later migrations grant
 * explicitly, and supabase/tests/090_least_privilege.sql fails on anything wider than the policies):
 * for postgres, and supabase_admin where the migration role may change its defaults, new tables and
 * sequences in public give anon and authenticated nothing and service_role no TRUNCATE, REFERENCES,
 * TRIGGER or setval; new functions in public are not executable by anon. Functions postgres creates
 * anywhere are no longer executable by PUBLIC (the global default, the one that applies to private);
 * in public authenticated and service_role still get EXECUTE on new RPCs, as before.
 */

-- Tables ------------------------------------------------------------------------------------------
do $$
declare
  rel record;
  api_role text;
  commands text;
begin
  for rel in
    select c.oid::regclass as name, n.nspname as schema_name, c.relrowsecurity as rls
    from pg_catalog.pg_class as c
    join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
    where n.nspname in ('public', 'private') and c.relkind in ('r', 'p', 'v', 'm', 'f')
  loop
    execute format('revoke all on table %s from public, anon, authenticated', rel.name);
    if rel.schema_name = 'public' then
      execute format('revoke truncate, references, trigger on table %s from service_role', rel.name);
    end if;
    continue when not rel.rls;
    foreach api_role in array array['anon', 'authenticated'] loop
      select string_agg(distinct cmd.name, ', ') into commands
      from pg_catalog.pg_policy as p
      cross join lateral unnest(case p.polcmd
        when 'r' then array['select'] when 'a' then array['insert']
        when 'w' then array['update'] when 'd' then array['delete']
        else array['select', 'insert', 'update', 'delete'] end) as cmd(name)
      where p.polrelid = rel.name
        and (0::oid = any (p.polroles) or api_role::regrole::oid = any (p.polroles));
      if commands is not null then
        execute format('grant %s on table %s to %I', commands, rel.name, api_role);
      end if;
    end loop;
  end loop;
end
$$;

-- Sequences ---------------------------------------------------------------------------------------
do $$
declare
  seq record;
  api_role text;
begin
  for seq in
    select c.oid::regclass as name, n.nspname as schema_name, owner_table.refobjid::regclass as owned_by
    from pg_catalog.pg_class as c
    join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
    -- 'a': a serial column's sequence (nextval default); identity sequences are 'i' and need no grant.
    left join pg_catalog.pg_depend as owner_table
      on owner_table.classid = 'pg_catalog.pg_class'::regclass and owner_table.objid = c.oid
     and owner_table.refclassid = 'pg_catalog.pg_class'::regclass and owner_table.deptype = 'a'
    where n.nspname in ('public', 'private') and c.relkind = 'S'
  loop
    execute format('revoke all on sequence %s from public, anon, authenticated', seq.name);
    if seq.schema_name = 'public' then
      execute format('revoke update on sequence %s from service_role', seq.name);
    end if;
    continue when seq.owned_by is null;
    foreach api_role in array array['anon', 'authenticated'] loop
      if has_table_privilege(api_role, seq.owned_by, 'insert') then
        execute format('grant usage on sequence %s to %I', seq.name, api_role);
      end if;
    end loop;
  end loop;
end
$$;

-- Functions ---------------------------------------------------------------------------------------
revoke execute on all routines in schema private from public, anon, authenticated;
revoke execute on all routines in schema public from public, anon;

grant execute on function private.is_admin(), private.require_admin(), private.is_untrusted_non_admin()
  to authenticated, service_role;

do $$
declare
  needed record;
begin
  for needed in
    select distinct d.refobjid::regprocedure as func, r.rolname
    from pg_catalog.pg_depend as d
    join pg_catalog.pg_policy as p on d.classid = 'pg_catalog.pg_policy'::regclass and d.objid = p.oid
    join pg_catalog.pg_proc as f on d.refclassid = 'pg_catalog.pg_proc'::regclass and f.oid = d.refobjid
    join pg_catalog.pg_roles as r
      on r.rolname in ('anon', 'authenticated') and (0::oid = any (p.polroles) or r.oid = any (p.polroles))
    where f.pronamespace = 'private'::regnamespace
  loop
    execute format('grant execute on function %s to %I', needed.func, needed.rolname);
  end loop;
end
$$;

-- Default privileges for what later migrations create ------------------------------------------------
do $$
declare
  creator text;
begin
  foreach creator in array array['postgres', 'supabase_admin'] loop
    continue when not exists (select from pg_catalog.pg_roles where rolname = creator)
      or not pg_has_role(creator, 'member');
    execute format('alter default privileges for role %I in schema public
                    revoke all on tables from public, anon, authenticated', creator);
    execute format('alter default privileges for role %I in schema public
                    revoke truncate, references, trigger on tables from service_role', creator);
    execute format('alter default privileges for role %I in schema public
                    revoke all on sequences from public, anon, authenticated', creator);
    execute format('alter default privileges for role %I in schema public
                    revoke update on sequences from service_role', creator);
    execute format('alter default privileges for role %I in schema public
                    revoke execute on functions from anon', creator);
  end loop;
end
$$;
-- Global, not per schema: only the global default can take EXECUTE away from PUBLIC.
alter default privileges for role postgres revoke execute on functions from public;

-- Realtime: a message is visible only on its own topic ------------------------------------------------
drop policy "realtime: admins hear admin topics, users their own topic" on realtime.messages;
create policy "realtime: admins hear admin topics, users their own topic" on realtime.messages
  for select to authenticated
  using (
    realtime.messages.extension = 'broadcast'
    and realtime.messages.topic = (select realtime.topic())
    and (
      ((select realtime.topic()) in ('admin:imports', 'admin:review_queue') and (select private.is_admin()))
      or (select realtime.topic()) = 'user:' || (select auth.uid())::text || ':transactions'
    )
  );
