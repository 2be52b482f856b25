-- profiles: own row for everyone through the table (admins list users through admin_list_users),
-- nothing for anon; roles are set through the Auth admin API / service_role, never a Data API update.
begin;
\ir _helpers.psql
select plan(22);

-- anon
select tests.authenticate_as_anon();
select throws_ok('select * from public.profiles', '42501', null, 'anon cannot read profiles');
select throws_ok($$update public.profiles set display_name = 'x'$$, '42501', null, 'anon cannot update profiles');

-- a user
select tests.authenticate_as(:'alice');
select results_eq('select id from public.profiles', array[:'alice'::uuid], 'a user reads only their own profile');
select results_eq($$with u as (update public.profiles set display_name = 'Alice A' where id = '$$ || :'alice' || $$' returning 1)
  select count(*)::int from u$$, array[1], 'a user updates their own display name');
select results_eq($$with u as (update public.profiles set display_name = 'hacked' where id = '$$ || :'bob' || $$' returning 1)
  select count(*)::int from u$$, array[0], 'a user cannot update another user''s profile');
select throws_ok($$update public.profiles set role = 'admin' where id = '$$ || :'alice' || $$'$$, '42501', null,
  'a user cannot make themselves admin');
select throws_ok($$update public.profiles set email = 'x@y.z' where id = '$$ || :'alice' || $$'$$, '42501', null,
  'a user cannot change their profile email');
select throws_ok($$insert into public.profiles (id, role) values ('$$ || :'bob' || $$', 'admin')$$, '42501', null,
  'a user cannot insert profiles');
select throws_ok('delete from public.profiles', '42501', null,
  'a user cannot delete profiles (no delete policy, so no DELETE privilege)');
select is(private.is_admin(), false, 'private.is_admin() is false for a user');

-- another user does not see the first
select tests.authenticate_as(:'bob');
select results_eq('select display_name from public.profiles', array['bob@test.local'], 'another user sees only their own profile');

-- an admin
select tests.authenticate_as(:'admin');
select results_eq('select id from public.profiles', array[:'admin'::uuid],
  'through the table an admin reads only their own profile (the admin list is an RPC)');
select is(private.is_admin(), true, 'private.is_admin() is true for an admin');
select results_eq($$with u as (update public.profiles set role = 'admin' where id = '$$ || :'bob' || $$' returning 1)
  select count(*)::int from u$$, array[0], 'an admin''s Data API update reaches no other profile (roles: Auth admin API)');
select ok((select count(*) from public.admin_list_users() where id in (:'alice', :'bob')) = 2,
  'an admin lists every profile through admin_list_users');
select throws_ok('delete from public.profiles', '42501', null,
  'even admins delete users through auth, not profiles');

-- service_role bypasses RLS
select tests.authenticate_as_service_role();
select lives_ok($$update public.profiles set role = 'user' where id = '$$ || :'bob' || $$'$$, 'service_role changes roles');
select ok((select count(*) from public.profiles) >= 3, 'service_role reads every profile');

-- the custom access token hook (run by Supabase Auth as supabase_auth_admin)
select tests.clear_authentication();
set local role supabase_auth_admin;
select public.custom_access_token_hook(jsonb_build_object('user_id', :'admin', 'claims', '{"sub": "x"}'::jsonb))
  -> 'claims' ->> 'user_role' as hook_admin_role \gset
select public.custom_access_token_hook(jsonb_build_object('user_id', :'alice', 'claims', '{"sub": "x"}'::jsonb))
  -> 'claims' as hook_user_claims \gset
reset role;
select is(:'hook_admin_role'::text, 'admin', 'the hook (as supabase_auth_admin) puts user_role admin into an admin''s token');
select is(:'hook_user_claims'::jsonb, '{"sub": "x", "user_role": "user"}'::jsonb,
  'the hook keeps the other claims and adds user_role user');
select tests.authenticate_as(:'alice');
select throws_ok($$select public.custom_access_token_hook('{}'::jsonb)$$, '42501', null, 'users cannot call the hook');
select tests.authenticate_as_anon();
select throws_ok($$select public.custom_access_token_hook('{}'::jsonb)$$, '42501', null, 'anon cannot call the hook');

select tests.clear_authentication();
select * from finish();
rollback;
