/*
 * Export downloads are for the admin who asked, through short-lived links.
 *
 * Before: the worker stored a Storage link signed for 7 days in export_jobs.download_url, which every
 * admin could read (the select policy was "admins read"), hear on the `admin:exports` broadcast and
 * open without any key.
 *
 * - export_jobs.storage_bucket / storage_path: where the finished file is in Storage (null: only on
 *   the worker's disk). The worker no longer signs anything; download_url is the admin API's
 *   download path (`/v1/exports/<id>/download`), which needs the asking admin's token. The admin API
 *   answers that admin's GET /v1/exports/<id> with a Storage link signed anew for
 *   EXPORT_LINK_TTL_S (minutes), and its download redirects to such a link.
 * - Reading an export row through the Data API: only the admin who asked for it (requested_by),
 *   still only while an admin. Exports queued with the secret key or the CLI (no requester) are
 *   read by trusted callers only.
 * - Links already stored are replaced by the API path (the signed URLs handed out before stay valid
 *   at Storage until their expiry: delete those objects to revoke them at once).
 */

alter table public.export_jobs
  add column storage_bucket text check (storage_bucket ~ '^[A-Za-z0-9._-]{1,100}$'),
  add column storage_path text check (length(storage_path) <= 1024);
comment on column public.export_jobs.storage_bucket is 'The Storage bucket holding the finished file, or null.';
comment on column public.export_jobs.storage_path is 'The finished file''s object path in storage_bucket.';
comment on column public.export_jobs.download_url is
  'The admin API''s download path (needs the requesting admin''s token); never a signed link.';

update public.export_jobs
   set download_url = format('/v1/exports/%s/download', id)
 where download_url is not null;

drop policy "export_jobs: admins read" on public.export_jobs;
create policy "export_jobs: admins read their own exports" on public.export_jobs
  for select to authenticated
  using (requested_by = (select auth.uid()) and (select private.is_admin()));

create index export_jobs_requested_by_idx on public.export_jobs (requested_by);
