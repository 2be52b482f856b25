-- Realtime: broadcasts from triggers (one per statement, per user), and who may listen per topic.
begin;
\ir _helpers.psql
select plan(19);

select 'user:' || :'alice' || ':transactions' as alice_topic, 'user:' || :'bob' || ':transactions' as bob_topic \gset

-- Broadcasts ------------------------------------------------------------------------------------
select tests.authenticate_as_service_role();
insert into public.transactions (id, user_id, txn_date, descriptor, amount)
values (9000000000001, :'alice', current_date, 'A1', 1), (9000000000002, :'alice', current_date, 'A2', 2),
       (9000000000003, :'bob', current_date, 'B1', 3);
insert into public.allocations (transaction_id, txn_date, user_id, ticker, amount, shares, price_id, price)
values (9000000000001, current_date, :'alice', 'SBUX', 0.5, 0.005, tests.test_price('SBUX'), 100);
update public.transactions set status = 'mapped' where id in (9000000000001, 9000000000002);
select tests.clear_authentication();

select results_eq($$select event, payload - 'ids' from realtime.messages where topic = '$$ || :'alice_topic' || $$' order by inserted_at, event, payload ->> 'operation'$$,
  $$values ('allocation_changed'::text, '{"operation": "INSERT", "table": "allocations", "count": 1}'::jsonb),
           ('transaction_changed', '{"operation": "INSERT", "table": "transactions", "count": 2}'),
           ('transaction_changed', '{"operation": "UPDATE", "table": "transactions", "count": 2}')$$,
  'a user''s topic gets one message per statement with the row count');
select is((select payload -> 'ids' from realtime.messages
           where topic = :'alice_topic' and event = 'transaction_changed' and payload ->> 'operation' = 'INSERT'),
  '[9000000000002, 9000000000001]'::jsonb, 'the message names the changed ids');
select is((select count(*)::int from realtime.messages where topic = :'bob_topic'), 1,
  'another user''s rows in the same statement go to their own topic only');
select is((select bool_and(private and extension = 'broadcast') from realtime.messages where topic in (:'alice_topic', :'bob_topic')),
  true, 'messages are private broadcasts');

select count(*) as queue_before from realtime.messages where topic = 'admin:review_queue' \gset
insert into public.llm_mappings (merchant_name, merchant_key) select 'BULK ' || g, 'bulk ' || g from generate_series(1, 1000) as g;
select results_eq($$select payload from realtime.messages where topic = 'admin:review_queue' and event = 'review_queue_changed'
  order by inserted_at desc limit $$ || ((select count(*) from realtime.messages where topic = 'admin:review_queue') - :queue_before),
  $$values ('{"operation": "INSERT", "pending_before": 0, "pending_after": 1000, "pending_delta": 1000}'::jsonb)$$,
  'a 1000-row insert of pending mappings sends exactly one review_queue_changed message');
select count(*) as queue_before from realtime.messages where topic = 'admin:review_queue' \gset
update public.llm_mappings set status = 'approved' where merchant_key in ('bulk 1', 'bulk 2');
select is((select count(*)::int from realtime.messages where topic = 'admin:review_queue') - :queue_before, 1,
  'reviewing two mappings in one statement sends one message');
update public.llm_mappings set reason = 'checked' where merchant_key in ('bulk 1', 'bulk 2');
select is((select count(*)::int from realtime.messages where topic = 'admin:review_queue') - :queue_before, 1,
  'changes that do not touch pending mappings send nothing');

-- Who may listen (SELECT) and send (INSERT) -----------------------------------------------------
insert into realtime.messages (topic, extension, event, payload, private)
values ('admin:imports', 'broadcast', 'import_progress', '{"done": 1}', true);

select tests.authenticate_as(:'alice');
select set_config('realtime.topic', :'alice_topic', true);
select ok((select count(*) from realtime.messages where topic = :'alice_topic') >= 3, 'a user listens on their own topic');
select set_config('realtime.topic', :'bob_topic', true);
select is_empty('select * from realtime.messages', 'a user cannot listen on another user''s topic');
select set_config('realtime.topic', 'admin:review_queue', true);
select is_empty('select * from realtime.messages', 'a user cannot listen to the review queue');
select set_config('realtime.topic', 'admin:imports', true);
select is_empty('select * from realtime.messages', 'a user cannot listen to import progress');
select set_config('realtime.topic', :'alice_topic', true);
select throws_ok($$insert into realtime.messages (topic, extension, event, payload, private)
  values ('$$ || :'alice_topic' || $$', 'broadcast', 'transaction_changed', '{}', true)$$, '42501', null,
  'a user cannot send on their own topic (only the database does)');

select tests.authenticate_as(:'admin');
select set_config('realtime.topic', 'admin:review_queue', true);
select ok((select count(*) from realtime.messages where topic = 'admin:review_queue') >= 2, 'an admin listens to the review queue');
select set_config('realtime.topic', 'admin:imports', true);
select ok((select count(*) from realtime.messages where topic = 'admin:imports') >= 1, 'an admin listens to import progress');
select set_config('realtime.topic', :'alice_topic', true);
select is_empty('select * from realtime.messages', 'an admin does not listen on a user''s topic');
select set_config('realtime.topic', 'admin:review_queue', true);
select throws_ok($$insert into realtime.messages (topic, extension, event, payload, private)
  values ('admin:review_queue', 'broadcast', 'review_queue_changed', '{}', true)$$, '42501', null,
  'an admin cannot send on the review queue either');

select tests.authenticate_as_anon();
select set_config('realtime.topic', 'admin:review_queue', true);
select is_empty('select * from realtime.messages', 'anon cannot listen to admin topics');
select set_config('realtime.topic', :'alice_topic', true);
select is_empty('select * from realtime.messages', 'anon cannot listen to user topics');

-- A mapping edit by a user (not an owner of realtime.messages) still broadcasts.
select tests.clear_authentication();
select count(*) as queue_before from realtime.messages where topic = 'admin:review_queue' \gset
select tests.authenticate_as(:'alice');
insert into public.llm_mappings (merchant_name, merchant_key, source, submitted_by)
values ('MY CAFE', 'my cafe', 'user', :'alice');
select tests.clear_authentication();
select is((select count(*)::int from realtime.messages where topic = 'admin:review_queue') - :queue_before, 1,
  'a user''s suggestion reaches the admins'' review queue (security definer broadcast)');

select * from finish();
rollback;
