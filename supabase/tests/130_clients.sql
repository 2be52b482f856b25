-- Mails about finished jobs, job progress NOTIFYs, and the role that Auth's app_metadata sets.
begin;
\ir _helpers.psql
set local client_min_messages = warning;  -- the state mirror drops seen tables that never existed
select plan(12);

select tests.create_user('mail-admin@test.kamioi.local', 'admin') as admin \gset

-- An import that ends mails the admin who started it, once, with its counts and a link.
select id as job, queue_job_id as q
  from private.create_import_job('transactions', '/tmp/mail-a.csv', repeat('c', 64), 10, :'admin') \gset
update public.import_jobs set processed_rows = 4, inserted_rows = 3, rejected_rows = 1 where id = :job;
select is((select count(*) from private.mail_outbox where job_kind = 'import' and job_id = :job), 0::bigint,
  'no mail while the import runs');
update private.job_queue set state = 'succeeded', finished_at = now() where id = :q;
select is((select recipient from private.mail_outbox where job_kind = 'import' and job_id = :job),
  'mail-admin@test.kamioi.local', 'the import''s end mails its admin');
select is((select details - 'error' from private.mail_outbox where job_kind = 'import' and job_id = :job),
  jsonb_build_object('kind', 'transactions', 'state', 'succeeded', 'processed_rows', 4, 'inserted_rows', 3,
                     'updated_rows', 0, 'rejected_rows', 1, 'link', format('/v1/imports/%s/rejections', :job)),
  'the mail carries the counts and the rejections link');
select ok(exists (select 1 from private.job_queue where kind = 'mail.deliver' and state = 'queued'),
  'a mail.deliver job is queued');
update public.import_jobs set processed_rows = 5 where id = :job;
select is((select count(*) from private.mail_outbox where job_kind = 'import' and job_id = :job), 1::bigint,
  'later progress updates send nothing more');

-- Started by nobody (the CLI) or by a user without an email: no mail.
select id as anon_job, queue_job_id as anon_q
  from private.create_import_job('transactions', '/tmp/mail-b.csv', repeat('d', 64), 10) \gset
update private.job_queue set state = 'cancelled', finished_at = now() where id = :anon_q;
select is((select count(*) from private.mail_outbox where job_kind = 'import' and job_id = :anon_job), 0::bigint,
  'an import nobody started mails nobody');
insert into auth.users (id, aud, role, email) values ('00000000-0000-4000-a000-0000000000e1', 'authenticated', 'authenticated', null);
select is(private.enqueue_job_mail('export', 1, '00000000-0000-4000-a000-0000000000e1', '{}'), null,
  'a user without an email gets no mail');

-- Delivery: claimed attempts are counted; the last failure makes a dead letter.
select id as mail from private.mail_outbox where job_kind = 'import' and job_id = :job \gset
select is((select attempts from private.claim_due_mails(10, 60, array[:mail]::bigint[])), 1, 'a claim counts the attempt');
select is(private.record_mail_failure(:mail, 1, 'refused', 2, 30, 3600), 'pending', 'a failure before the last is retried');
update private.mail_outbox set next_attempt_at = now() where id = :mail;
select is(private.record_mail_failure(:mail, (select attempts from private.claim_due_mails(10, 60, array[:mail]::bigint[])),
  'refused again', 2, 30, 3600), 'dead', 'the last failure is a dead letter');

-- Progress is NOTIFYed (on commit) and broadcast.
select private.publish_job_progress('admin:imports', 'import_progress', jsonb_build_object('id', -1));
select ok(exists (select 1 from realtime.messages where topic = 'admin:imports' and payload = '{"id": -1}'),
  'progress is broadcast on the topic too');

-- app_metadata.user_role, which only Auth's admin API (service role) writes, sets the profile's role.
update auth.users set raw_app_meta_data = raw_app_meta_data || '{"user_role": "user"}' where id = :'admin';
select is((select role from public.profiles where id = :'admin'), 'user', 'app_metadata.user_role sets the role');

select * from finish();
rollback;
