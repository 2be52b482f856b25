-- Least privilege, generated from the catalog: every table, sequence, function and schema that
-- exists when the suite runs is checked, so a new one needs no edit here. Each rule is one test
-- whose failure lists the offending objects. Then the attacks themselves, as a signed-in user.
begin;
\ir _helpers.psql
select plan(19);

create view tests.api_role (rolname) as values ('anon'::name), ('authenticated'::name);

-- Tables, views and foreign tables of the project's schemas (auth and realtime are Supabase's).
create view tests.project_relation as
  select c.oid, c.oid::regclass::text as name, n.nspname, c.relkind, c.relrowsecurity
  from pg_catalog.pg_class as c
  join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
  where n.nspname in ('public', 'private') and c.relkind in ('r', 'p', 'v', 'm', 'f');

-- Whether a policy on the relation allows the command to the role (directly or through PUBLIC).
create function tests.policy_allows(p_relation oid, p_role name, p_command text)
returns boolean
language sql
stable
as $$
  select exists (
    select 1 from pg_catalog.pg_policy as p
    where p.polrelid = p_relation
      and (0::oid = any (p.polroles) or p_role::regrole::oid = any (p.polroles))
      and p.polcmd in ('*', case p_command when 'SELECT' then 'r' when 'INSERT' then 'a'
                                           when 'UPDATE' then 'w' when 'DELETE' then 'd' end)
  )
$$;

-- Whether a policy applying to the role (directly or through PUBLIC) calls the function.
create function tests.policy_needs(p_function oid, p_role name)
returns boolean
language sql
stable
as $$
  select exists (
    select 1 from pg_catalog.pg_depend as d
    join pg_catalog.pg_policy as p on d.classid = 'pg_catalog.pg_policy'::regclass and d.objid = p.oid
    where d.refclassid = 'pg_catalog.pg_proc'::regclass and d.refobjid = p_function
      and (0::oid = any (p.polroles) or p_role::regrole::oid = any (p.polroles))
  )
$$;

-- What a role may do to a relation: table privileges, and column privileges where they exist.
create function tests.relation_privileges(p_role name, p_relation oid)
returns text[]
language sql
stable
as $$
  select coalesce(array_agg(privilege order by privilege), '{}')
  from unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) as privilege
  where case when privilege in ('DELETE', 'TRUNCATE', 'TRIGGER')
             then has_table_privilege(p_role, p_relation, privilege)
             else has_any_column_privilege(p_role, p_relation, privilege) end
$$;

-- Tables --------------------------------------------------------------------------------------------
select is(
  (select coalesce(array_agg(r.rolname || ': ' || privilege || ' on ' || c.oid::regclass::text order by 1), '{}')
   from pg_catalog.pg_class as c
   join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
   cross join tests.api_role as r
   cross join lateral unnest(tests.relation_privileges(r.rolname, c.oid)) as privilege
   where c.relkind in ('r', 'p', 'v', 'm', 'f')
     and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_(toast|temp)'
     and privilege in ('TRUNCATE', 'REFERENCES', 'TRIGGER')),
  '{}'::text[],
  'anon and authenticated hold no TRUNCATE, REFERENCES or TRIGGER on any table of any schema');

select is(
  (select coalesce(array_agg('service_role: ' || privilege || ' on ' || rel.name order by 1), '{}')
   from tests.project_relation as rel
   cross join lateral unnest(tests.relation_privileges('service_role', rel.oid)) as privilege
   where privilege in ('TRUNCATE', 'REFERENCES', 'TRIGGER')),
  '{}'::text[],
  'service_role holds no TRUNCATE, REFERENCES or TRIGGER on the project''s tables');

select is(
  (select coalesce(array_agg(r.rolname || ': ' || privilege || ' on ' || rel.name
                             || case when rel.relrowsecurity then ' without a policy' else ' without RLS' end
                             order by 1), '{}')
   from tests.project_relation as rel
   cross join tests.api_role as r
   cross join lateral unnest(tests.relation_privileges(r.rolname, rel.oid)) as privilege
   where privilege in ('SELECT', 'INSERT', 'UPDATE', 'DELETE')
     and not (rel.relrowsecurity and tests.policy_allows(rel.oid, r.rolname, privilege))),
  '{}'::text[],
  'anon and authenticated are granted only the commands a policy is written for them, on RLS tables');

select is(
  (select coalesce(array_agg(rel.name order by 1), '{}')
   from tests.project_relation as rel
   where rel.nspname = 'public' and rel.relkind in ('r', 'p') and not rel.relrowsecurity),
  '{}'::text[],
  'every table in public has row-level security enabled');

-- Sequences: identity columns need no grant; a serial column's sequence only for who may insert.
select is(
  (select coalesce(array_agg(r.rolname || ': ' || privilege || ' on ' || c.oid::regclass::text order by 1), '{}')
   from pg_catalog.pg_class as c
   join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
   cross join tests.api_role as r
   cross join unnest(array['SELECT', 'UPDATE', 'USAGE']) as privilege
   where n.nspname in ('public', 'private') and c.relkind = 'S'
     and has_sequence_privilege(r.rolname, c.oid, privilege)
     and not (privilege = 'USAGE' and exists (
       select 1 from pg_catalog.pg_depend as d
       where d.classid = 'pg_catalog.pg_class'::regclass and d.objid = c.oid and d.deptype = 'a'
         and d.refclassid = 'pg_catalog.pg_class'::regclass
         and has_table_privilege(r.rolname, d.refobjid, 'INSERT')))),
  '{}'::text[],
  'anon and authenticated hold no sequence privileges beyond USAGE on a serial they may insert');

-- Schemas -------------------------------------------------------------------------------------------
select is(
  (select coalesce(array_agg(r.rolname || ': ' || privilege || ' on schema ' || n.nspname order by 1), '{}')
   from pg_catalog.pg_namespace as n
   cross join tests.api_role as r
   cross join unnest(array['USAGE', 'CREATE']) as privilege
   where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_(toast|temp)'
     and has_schema_privilege(r.rolname, n.oid, privilege)
     and (privilege = 'CREATE' or (r.rolname = 'anon' and n.nspname = 'private'))),
  '{}'::text[],
  'anon and authenticated create in no schema, and anon may not use private');

-- Functions -----------------------------------------------------------------------------------------
select is(
  (select coalesce(array_agg(p.oid::regprocedure::text order by 1), '{}')
   from pg_catalog.pg_proc as p
   cross join lateral aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) as acl
   where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace) and acl.grantee = 0),
  '{}'::text[],
  'no function in public or private is executable by PUBLIC');

select is(
  (select coalesce(array_agg(p.oid::regprocedure::text order by 1), '{}')
   from pg_catalog.pg_proc as p
   where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace)
     and has_function_privilege('anon', p.oid, 'EXECUTE')
     and not tests.policy_needs(p.oid, 'anon')),  -- only a policy written for anon could
  '{}'::text[],
  'anon executes no function in public or private');

-- Allowed for authenticated: what its policies depend on, and what invoker code runs as the caller.
select is(
  (select coalesce(array_agg(p.oid::regprocedure::text order by 1), '{}')
   from pg_catalog.pg_proc as p
   where p.pronamespace = 'private'::regnamespace
     and has_function_privilege('authenticated', p.oid, 'EXECUTE')
     and p.oid not in ('private.is_admin()'::regprocedure, 'private.require_admin()'::regprocedure,
                       'private.is_untrusted_non_admin()'::regprocedure,
                       -- the ledger guard's triggers run as the caller and ask it about unsettled sweeps
                       'private.sweeping(uuid,bigint)'::regprocedure)
     and not tests.policy_needs(p.oid, 'authenticated')),
  '{}'::text[],
  'authenticated executes no private function beyond what policies and invoker RPCs/triggers call');

-- Defaults: what a later migration creates (as postgres) starts closed ------------------------------
set local role postgres;
create table public.tap_probe (id bigint generated always as identity primary key, note text);
create function public.tap_probe_rpc() returns int language sql as 'select 1';
create function private.tap_probe_helper() returns int language sql as 'select 1';
reset role;
select is(
  (select coalesce(array_agg(finding order by finding), '{}')
   from (
     select r.rolname || ': ' || privilege || ' on public.tap_probe' as finding
     from tests.api_role as r
     cross join lateral unnest(tests.relation_privileges(r.rolname, 'public.tap_probe'::regclass)) as privilege
     union all
     select 'service_role: ' || privilege || ' on public.tap_probe'
     from unnest(tests.relation_privileges('service_role', 'public.tap_probe'::regclass)) as privilege
     where privilege in ('TRUNCATE', 'REFERENCES', 'TRIGGER')
     union all
     select r.rolname || ': ' || privilege || ' on public.tap_probe_id_seq'
     from tests.api_role as r
     cross join unnest(array['SELECT', 'UPDATE', 'USAGE']) as privilege
     where has_sequence_privilege(r.rolname, 'public.tap_probe_id_seq', privilege)
     union all
     select 'anon: EXECUTE on public.tap_probe_rpc()'
     where has_function_privilege('anon', 'public.tap_probe_rpc()', 'EXECUTE')
     union all
     select r.rolname || ': EXECUTE on private.tap_probe_helper()'
     from tests.api_role as r
     where has_function_privilege(r.rolname, 'private.tap_probe_helper()', 'EXECUTE')
   ) as findings),
  '{}'::text[],
  'tables, sequences and functions created later give the API roles nothing by default');

-- Attacks as a signed-in user -------------------------------------------------------------------------
select tests.authenticate_as(:'alice');
select throws_ok('truncate public.llm_calls', '42501', null, 'a user cannot empty the LLM ledger');
select throws_ok('truncate public.merchant_catalog', '42501', null, 'a user cannot empty the catalog');
select throws_ok($$select private.enqueue_job('import')$$, '42501', null, 'a user cannot queue a job');
select throws_ok($$select private.create_import_job('transactions', '/etc/passwd', repeat('0', 64), 1)$$, '42501', null,
  'a user cannot create an import');

select tests.authenticate_as(:'admin');
select throws_ok('truncate public.llm_calls', '42501', null, 'an admin''s token cannot truncate either');
select lives_ok($$insert into public.merchants (merchant_key, display_name) values ('pgtap:least', 'Least')$$,
  'an admin inserts into an identity-keyed table with no sequence grant');

-- Realtime: a listener reads only the messages of the topic it is authorised for ------------------------
select tests.clear_authentication();
select 'user:' || :'alice' || ':transactions' as alice_topic, 'user:' || :'bob' || ':transactions' as bob_topic \gset
insert into realtime.messages (topic, extension, event, payload, private)
select topic, 'broadcast', 'probe', '{}', true
from unnest(array[:'alice_topic', :'bob_topic', 'admin:imports', 'admin:review_queue']) as topic;

select tests.authenticate_as(:'alice');
select set_config('realtime.topic', :'alice_topic', true);
select results_eq('select distinct topic from realtime.messages', array[:'alice_topic'],
  'a user on their own topic reads no other topic''s messages');
select set_config('realtime.topic', :'bob_topic', true);
select is_empty('select * from realtime.messages', 'a user who names another user''s topic reads nothing');

select tests.authenticate_as(:'admin');
select set_config('realtime.topic', 'admin:imports', true);
select results_eq('select distinct topic from realtime.messages', array['admin:imports'],
  'an admin on import progress reads neither the review queue nor users'' topics');

select * from finish();
rollback;
