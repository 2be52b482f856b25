-- Job lanes (user-facing kinds claimed first, a lane filter for reserved slots), coalesced corrections
-- (one queued job for any number of changed mappings), and the one cancel behind import and export jobs.
begin;
\ir _helpers.psql
set local client_min_messages = warning;
select plan(18);

-- Lanes ------------------------------------------------------------------------------------------
select private.enqueue_job('test.lanes_bg', '{}', 0, now() - interval '1 minute') as bg_old \gset
select private.enqueue_job('test.lanes_bg') as bg_new \gset
select id as export_id, queue_job_id as export_q
  from private.create_export_job('transactions', '{}', null, null) \gset
select results_eq(
  format('select lane from private.job_queue where id in (%s, %s, %s) order by id', :bg_old, :bg_new, :export_q),
  $$values ('background'::text), ('background'), ('user')$$,
  'a job''s lane comes from its kind: exports are user-facing, unknown kinds background');
select is((select lane from private.job_lanes where kind = 'import'), 'user', 'imports are user-facing');
select is((select lane from private.job_lanes where kind = 'mail.deliver'), 'user', 'mails are user-facing');
select results_eq(
  format($$select id from private.claim_jobs('lanes-test', array['test.lanes_bg', 'exports.csv'], 60, 1,
                                             array[%s, %s, %s]::bigint[])$$, :bg_old, :bg_new, :export_q),
  format('values (%s::bigint)', :export_q),
  'a claim takes the user-facing job before older background jobs');
select is_empty(
  format($$select id from private.claim_jobs('lanes-test', array['test.lanes_bg'], 60, 5,
                                             array[%s, %s]::bigint[], array['user'])$$, :bg_old, :bg_new),
  'a claim for the user lane (a worker''s reserved slots) takes no background job');
select results_eq(
  format($$select id from private.claim_jobs('lanes-test', array['test.lanes_bg'], 60, 5,
                                             array[%s, %s]::bigint[], array['background'])$$, :bg_old, :bg_new),
  format('values (%s::bigint), (%s)', :bg_old, :bg_new),
  'the background lane in claim order');
select is(private.seconds_until_next_job(array['test.lanes_bg'], array['background']), null,
  'nothing left to wait for in a lane whose jobs are claimed');

-- Coalesced corrections --------------------------------------------------------------------------
select tests.create_user('lanes-user@test.kamioi.local') as carol \gset
create function tests.lane_merchant(p_key text) returns bigint language sql as $$
  with m as (
    insert into public.llm_mappings (merchant_name, merchant_key, ticker, status, admin_approved, category)
    values (upper(p_key), p_key, 'SBUX', 'approved', true, 'FOOD_AND_DRINK') returning id, created_at)
  insert into public.merchants (merchant_key, display_name, mapping_id, mapping_created_at)
  select p_key, p_key, id, created_at from m returning mapping_id
$$;
select tests.lane_merchant('zl one') as one_id \gset
select tests.lane_merchant('zl two') as two_id \gset
select tests.lane_merchant('zl three') as three_id \gset
select tests.test_price('SBUX', 50);
insert into public.transactions (id, user_id, txn_date, descriptor, merchant_key, amount, round_up, status, mapping_id)
values (9160000000001, :'carol', current_date, 'ZL ONE', 'zl one', 4.50, 0.50, 'mapped', :one_id),
       (9160000000002, :'carol', current_date, 'ZL TWO', 'zl two', 3.75, 0.25, 'mapped', :two_id),
       (9160000000003, :'carol', current_date, 'ZL THREE', 'zl three', 2.25, 0.75, 'mapped', :three_id);
select is((select invested from private.invest_chunk(9160000000000, 100, 'VTI', interval '1 day')), 3,
  'each merchant''s mapping bought a lot');
delete from private.job_queue where kind = 'allocations.correct' and state = 'queued';

update public.llm_mappings set ticker = 'AMZN' where id in (:one_id, :two_id);
update public.llm_mappings set ticker = 'WMT' where id = :three_id;
select results_eq(
  format('select mapping_id from private.correction_requests where mapping_id in (%s, %s, %s) order by 1',
         :one_id, :two_id, :three_id),
  format('select unnest(array[%s, %s, %s]::bigint[]) order by 1', :one_id, :two_id, :three_id),
  'every changed mapping with lots is requested');
select results_eq(
  $$select payload from private.job_queue where kind = 'allocations.correct' and state = 'queued'$$,
  $$values ('{}'::jsonb)$$,
  'two statements changing three mappings queue one correction job');

select private.finish_correction_request(:one_id, now() - interval '1 hour');
select ok(exists (select 1 from private.correction_requests where mapping_id = :one_id),
  'a request made again since it was read is kept');

-- One cancel ---------------------------------------------------------------------------------------
select is((select state from private.cancel_export_job(:export_id)), 'running',
  'a running export stays running until its worker stops');
select is((select cancel_requested from public.export_jobs where id = :export_id), true,
  'and is asked to stop');
select throws_ok('select private.cancel_tracked_job(''public.profiles'', 1)', '22023', null,
  'only tables that track jobs can be cancelled through it');
select throws_ok('select private.cancel_import_job(-1)', 'P0002', 'import job -1 not found',
  'an unknown import is not found');

-- Nobody but the owner reaches any of it ------------------------------------------------------------
select tests.authenticate_as(:'carol');
select throws_ok(format('select private.cancel_tracked_job(''public.export_jobs'', %s)', :export_id), '42501', null,
  'a user cannot cancel through cancel_tracked_job');
select throws_ok($$select * from private.claim_jobs('x', array['import'], 60, 1, null, array['user'])$$, '42501', null,
  'a user cannot claim user-lane jobs');
select throws_ok('select * from private.correction_requests', '42501', null, 'a user cannot read correction requests');
select tests.clear_authentication();

select * from finish();
rollback;
