/*
 * Bad input apart from job failures: private.job_queue.bad_input.
 *
 * A job that fails because of what a user gave it (an import of a file that is not the expected CSV,
 * with missing columns, gone or changed since upload) is not a failure of the system, yet it counted
 * in kamioi_jobs_failed_last_hour and fired the documented alert on user mistakes. The worker sets
 * bad_input in the transaction that fails such a job (jobs.errors.BadInputError); /metrics counts
 * those as kamioi_jobs_bad_input_last_hour and the rest as failures.
 *
 * A constant default: adding the column rewrites nothing.
 */

alter table private.job_queue add column bad_input boolean not null default false;
comment on column private.job_queue.bad_input is
  'Failed because of its input (the user''s mistake), not the system: counted apart in /metrics.';
