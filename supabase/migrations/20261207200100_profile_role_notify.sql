/*
 * The admin API hears role changes: a profile whose role changes (or that is deleted) sends NOTIFY on
 * `kamioi_profile_role` with the user's id, after the change commits. Each API process remembers
 * profile roles for a few seconds (api/roles.py, API_ROLE_CACHE_S) and forgets that user's at once,
 * so a demoted admin is refused from the next request on, cached aggregates included.
 */

create or replace function private.notify_profile_role_change()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform pg_catalog.pg_notify('kamioi_profile_role', old.id::text);
  return null;
end;
$$;

create trigger profiles_notify_role_change
  after update of role on public.profiles
  for each row
  when (old.role is distinct from new.role)
  execute function private.notify_profile_role_change();

create trigger profiles_notify_role_delete
  after delete on public.profiles
  for each row execute function private.notify_profile_role_change();
