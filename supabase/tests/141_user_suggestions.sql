-- Users' mapping suggestions through the Data API, attacked as a user: only merchant, company,
-- ticker, category and a note are theirs; lengths and a per-user rate are bounded; bulk approval
-- by filter never approves a suggestion; nobody stores an infinite created_at. A profile's display
-- name is bounded too, and an export is read only by the admin who asked for it.
begin;
\ir _helpers.psql
select plan(37);

select tests.create_user('mallory141@test.local') as mallory \gset
select tests.create_user('eve141@test.local') as eve \gset

-- A suggestion as the issue's attacker sent it, one column at a time -----------------------------
select tests.authenticate_as(:'alice');
select throws_ok(
  $$insert into public.llm_mappings (merchant_name, merchant_key, ticker, tier, confidence, created_at, source, submitted_by)
    values ('TARGET', 'target', 'GME', 'catalog', 1.0, '2030-01-01', 'user', '$$ || :'alice' || $$')$$,
  '42501', null, 'the issue''s suggestion (target -> GME, tier catalog, confidence 1.0, dated 2030) is refused');
select throws_ok(
  $$insert into public.llm_mappings (merchant_name, merchant_key, ticker, tier, source, submitted_by)
    values ('TARGET', 'target', 'GME', 'catalog', 'user', '$$ || :'alice' || $$')$$,
  '42501', 'llm_mappings.tier is set by the server', 'a user cannot choose the tier');
select throws_ok(
  $$insert into public.llm_mappings (merchant_name, merchant_key, ticker, confidence, source, submitted_by)
    values ('TARGET', 'target', 'GME', 1.0, 'user', '$$ || :'alice' || $$')$$,
  '42501', 'llm_mappings.confidence is set by the server', 'a user cannot choose the confidence');
select throws_ok(
  $$insert into public.llm_mappings (merchant_name, merchant_key, ticker, created_at, source, submitted_by)
    values ('TARGET', 'target', 'GME', '2030-01-01', 'user', '$$ || :'alice' || $$')$$,
  '42501', 'llm_mappings.created_at is set by the server', 'a user cannot date a suggestion in the future');
select throws_ok(
  $$insert into public.llm_mappings (merchant_name, merchant_key, created_at, source, submitted_by)
    values ('TARGET', 'target', 'infinity', 'user', '$$ || :'alice' || $$')$$,
  '42501', 'llm_mappings.created_at is set by the server', 'a user cannot date a suggestion infinity');
select throws_ok(
  $$insert into public.llm_mappings (merchant_name, merchant_key, created_at, source, submitted_by)
    values ('TARGET', 'target', '-infinity', 'user', '$$ || :'alice' || $$')$$,
  '42501', null, 'nor -infinity');
select throws_ok(
  $$insert into public.llm_mappings (merchant_name, merchant_key, reason, source, submitted_by)
    values ('TARGET', 'target', 'catalog match', 'user', '$$ || :'alice' || $$')$$,
  '42501', 'llm_mappings.reason is set by the server', 'a user cannot write the reason');
select throws_ok(
  $$insert into public.llm_mappings (merchant_name, merchant_key, import_job_id, source, submitted_by)
    values ('TARGET', 'target', 1, 'user', '$$ || :'alice' || $$')$$,
  '42501', 'llm_mappings.import_job_id is set by the server', 'a user cannot claim an import');
select throws_ok(
  $$insert into public.llm_mappings (merchant_name, merchant_key, provider_state, provider_attempts, source, submitted_by)
    values ('TARGET', 'target', 'answered', 1, 'user', '$$ || :'alice' || $$')$$,
  '42501', 'llm_mappings.provider_state is set by the server', 'a user cannot write provider state');
select throws_ok(
  $$insert into public.llm_mappings (merchant_name, merchant_key, model, prompt_version, source, submitted_by)
    values ('TARGET', 'target', 'gpt', 'v1', 'user', '$$ || :'alice' || $$')$$,
  '42501', 'llm_mappings.model is set by the server', 'a user cannot pose as a model');

-- What a user may say is kept, and the server's columns are the server's ------------------------
select lives_ok(
  $$insert into public.llm_mappings (merchant_name, merchant_key, company_name, ticker, category, note, source, submitted_by)
    values ('TARGET', 'pgtap141:target', 'GameStop', 'GME', 'GENERAL_MERCHANDISE', 'I think so', 'user', '$$ || :'alice' || $$')$$,
  'a plain suggestion with a note is accepted');
select results_eq(
  $$select tier, confidence, status, reason, created_at = now(), note
    from public.llm_mappings where merchant_key = 'pgtap141:target' and submitted_by = '$$ || :'alice' || $$'$$,
  $$values (null::text, null::numeric, 'pending'::text, null::text, true, 'I think so'::text)$$,
  'its tier, confidence, reason and date are the server''s');

-- Editing one's pending suggestion: the same columns only ------------------------------------------
select throws_ok(
  $$update public.llm_mappings set tier = 'catalog' where merchant_key = 'pgtap141:target'$$,
  '42501', null, 'a user cannot raise their suggestion''s tier');
select throws_ok(
  $$update public.llm_mappings set confidence = 1 where merchant_key = 'pgtap141:target'$$,
  '42501', null, 'nor its confidence');
select throws_ok(
  $$update public.llm_mappings set reason = 'catalog' where merchant_key = 'pgtap141:target'$$,
  '42501', null, 'nor its reason');
select throws_ok(
  $$update public.llm_mappings set note = repeat('n', 501) where merchant_key = 'pgtap141:target'$$,
  '22001', null, 'nor make its note longer than 500 characters');

-- Lengths -----------------------------------------------------------------------------------------
select throws_ok(
  $$insert into public.llm_mappings (merchant_name, merchant_key, source, submitted_by)
    values (repeat('x', 5 * 1024 * 1024), 'pgtap141:big', 'user', '$$ || :'alice' || $$')$$,
  '22001', null, 'a 5 MB merchant (display) name is refused');
select throws_ok(
  $$insert into public.llm_mappings (merchant_name, merchant_key, company_name, source, submitted_by)
    values ('BIG', 'pgtap141:big', repeat('c', 201), 'user', '$$ || :'alice' || $$')$$,
  '22001', null, 'a company name over 200 characters is refused');
select throws_ok(
  $$insert into public.llm_mappings (merchant_name, merchant_key, source, submitted_by)
    values ('BIG', repeat('k', 501), 'user', '$$ || :'alice' || $$')$$,
  '22001', null, 'a merchant key over 500 characters is refused');
select throws_ok(
  $$insert into public.llm_mappings (merchant_name, merchant_key, note, source, submitted_by)
    values ('BIG', 'pgtap141:big', repeat('n', 501), 'user', '$$ || :'alice' || $$')$$,
  '22001', null, 'a note over 500 characters is refused');

-- Rate --------------------------------------------------------------------------------------------
select tests.authenticate_as(:'mallory');
select throws_ok(
  $$insert into public.llm_mappings (merchant_name, merchant_key, source, submitted_by)
    select 'SPAM ' || g, 'pgtap141:spam:' || g, 'user', '$$ || :'mallory' || $$' from generate_series(1, 20000) as g$$,
  'PT429', 'at most 20 suggestions per statement', '20,000 suggestions in one statement are refused');
select tests.clear_authentication();
select is((select count(*)::int from public.llm_mappings where submitted_by = :'mallory'), 0,
  'and none of them was stored');

select tests.authenticate_as(:'eve');
select lives_ok(
  $$insert into public.llm_mappings (merchant_name, merchant_key, source, submitted_by)
    select 'RATE ' || g, 'pgtap141:rate:' || g, 'user', '$$ || :'eve' || $$' from generate_series(1, 20) as g$$,
  '20 suggestions in one statement are fine');
select lives_ok($$insert into public.llm_mappings (merchant_name, merchant_key, source, submitted_by)
    select 'RATE ' || g, 'pgtap141:rate:' || g, 'user', '$$ || :'eve' || $$' from generate_series(21, 40) as g$$, 'statement 2');
select lives_ok($$insert into public.llm_mappings (merchant_name, merchant_key, source, submitted_by)
    select 'RATE ' || g, 'pgtap141:rate:' || g, 'user', '$$ || :'eve' || $$' from generate_series(41, 60) as g$$, 'statement 3');
select lives_ok($$insert into public.llm_mappings (merchant_name, merchant_key, source, submitted_by)
    select 'RATE ' || g, 'pgtap141:rate:' || g, 'user', '$$ || :'eve' || $$' from generate_series(61, 80) as g$$, 'statement 4');
select lives_ok($$insert into public.llm_mappings (merchant_name, merchant_key, source, submitted_by)
    select 'RATE ' || g, 'pgtap141:rate:' || g, 'user', '$$ || :'eve' || $$' from generate_series(81, 100) as g$$, 'statement 5');
select throws_ok(
  $$insert into public.llm_mappings (merchant_name, merchant_key, source, submitted_by)
    values ('RATE 101', 'pgtap141:rate:101', 'user', '$$ || :'eve' || $$')$$,
  'PT429', 'at most 100 suggestions per hour', 'the 101st suggestion within an hour is refused');

-- Nobody stores infinity; admins keep their Data API inserts ---------------------------------------
select tests.authenticate_as(:'admin');
select throws_ok(
  $$insert into public.llm_mappings (merchant_name, merchant_key, created_at, source)
    values ('INF', 'pgtap141:inf', 'infinity', 'admin')$$,
  '23514', null, 'not even an admin stores an infinite created_at');

-- Bulk approval by confidence skips users' suggestions -----------------------------------------------
-- A suggestion that carries a confidence anyway (written before this rule, or by hand).
select tests.clear_authentication();
update public.llm_mappings set confidence = 1.0, tier = 'catalog'
where merchant_key = 'pgtap141:target' and submitted_by = :'alice';
select is(
  (select reviewed_count from private.bulk_review_mappings_chunk_keys(
     'approved', :'admin', '{"filter": {"merchant_key": "pgtap141:target", "min_confidence": 0.99}}')),
  0, 'bulk approval with min_confidence 0.99 does not approve the user''s suggestion');
select is(
  (select count(*)::int from public.merchants where merchant_key = 'pgtap141:target' and mapping_id is not null),
  0, 'and puts nothing in force for its merchant');
select is(
  (select reviewed_count from private.bulk_review_mappings_chunk_keys(
     'approved', :'admin', '{"filter": {"source": "user", "merchant_key": "pgtap141:target"}}')),
  0, 'not even when the filter asks for users'' suggestions');

-- A profile's display name is bounded too ----------------------------------------------------------
select tests.authenticate_as(:'alice');
select throws_ok(
  format($$update public.profiles set display_name = repeat('x', 5 * 1024 * 1024) where id = '%s'$$, :'alice'),
  '23514', null, 'a user cannot give themselves a 5 MB display name');
select tests.clear_authentication();
insert into auth.users (id, aud, role, email, raw_user_meta_data)
values ('00000000-0000-4000-a141-000000000001', 'authenticated', 'authenticated', 'long141@test.local',
        jsonb_build_object('display_name', repeat('y', 5000)));
select is((select char_length(display_name) from public.profiles where id = '00000000-0000-4000-a141-000000000001'),
  200, 'a sign-up with a long display name gets it cut to 200 characters');

-- Exports are their requesting admin's alone ----------------------------------------------------
select tests.clear_authentication();
select tests.create_user('root2-141@test.local', 'admin') as admin2 \gset
select id as export_id from private.create_export_job('users', '{}', null, :'admin') \gset
select tests.authenticate_as(:'admin2');
select is_empty(format('select * from public.export_jobs where id = %s', :'export_id'),
  'another admin reads nothing of an admin''s export (nor its link)');
select tests.authenticate_as(:'admin');
select is((select count(*)::int from public.export_jobs where id = :'export_id'), 1,
  'the admin who asked reads it');
select is((select download_url from public.export_jobs where id = :'export_id'), null,
  'and no link is stored before it is done');

select * from finish();
rollback;
