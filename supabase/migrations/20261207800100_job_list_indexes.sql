/*
 * Indexes for the jobs view (`GET /v1/jobs?state=...`, `kamioi jobs`; SQL in kamioi/job_list.py):
 * one state's jobs newest first, a keyset page on id.
 *
 * Without them a page of failed jobs walks the primary key backwards through every succeeded job
 * (nearly all of them). The queue's state already changes the claim and lease partial indexes, so a
 * state change is not a HOT update today either: (state, id) adds one index entry per change. Dead
 * mails are rare: a partial index holds only them.
 */

create index job_queue_state_id_idx on private.job_queue (state, id);

create index mail_outbox_dead_idx on private.mail_outbox (id) where state = 'dead';
