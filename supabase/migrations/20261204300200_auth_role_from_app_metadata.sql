/*
 * The Auth admin API sets a user's role: `app_metadata.user_role` ('admin' | 'user') becomes the
 * profile's role.
 *
 * `kamioi admin create | promote` call Supabase Auth's admin API (create_user, update_user_by_id
 * with app_metadata) with the secret key. app_metadata is writable by the service role only (users
 * cannot edit it, unlike user_metadata), so copying it into public.profiles.role, which stays the
 * authoritative role (is_admin(), the access token hook), gives no user a way to promote
 * themselves. Runs after the profile is created on sign-up (trigger names fire in order:
 * on_auth_user_created, then on_auth_user_role_set). A user without the key keeps their role.
 */

create or replace function private.role_from_app_metadata()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.raw_app_meta_data ->> 'user_role' in ('admin', 'user') then
    update public.profiles
       set role = new.raw_app_meta_data ->> 'user_role'
     where id = new.id and role is distinct from new.raw_app_meta_data ->> 'user_role';
  end if;
  return null;
end;
$$;

create trigger on_auth_user_role_set
  after insert or update of raw_app_meta_data on auth.users
  for each row execute function private.role_from_app_metadata();

revoke execute on function private.role_from_app_metadata() from public, anon, authenticated;
