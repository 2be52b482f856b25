/*
 * Tell the admin API when the dashboard numbers change, so it can invalidate its cached aggregates
 * (api/notify.py LISTENs on channel `kamioi_stats_changed`).
 *
 * Every change that moves a number appends rows to private.stat_deltas (the statement triggers of
 * the dashboard stats migration), so one statement-level trigger there covers imports, reviews,
 * the worker and manual SQL alike. NOTIFY is transactional (sent at commit, dropped on rollback)
 * and identical notifications in one transaction are folded into one; the API debounces bursts.
 */

create or replace function private.notify_stats_changed()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform pg_notify('kamioi_stats_changed', '');
  return null;
end;
$$;
comment on function private.notify_stats_changed() is
  'NOTIFY kamioi_stats_changed after stat deltas are written; the admin API invalidates its cache.';

create trigger stat_deltas_notify
  after insert on private.stat_deltas
  for each statement execute function private.notify_stats_changed();
