/*
 * A profile's display_name is at most 200 characters. Users write it (sign-up metadata, and their own
 * profile through the Data API's update policy); a 5 MB name was accepted and then carried into
 * every admin list and export. Sign-up cuts a longer name from user_metadata to 200 characters
 * rather than failing the sign-up; an update through the Data API with a longer one is refused
 * (23514, PostgREST 400). Existing rows are not checked (NOT VALID): validate after trimming any.
 */

create or replace function private.create_profile_for_new_user()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.profiles (id, email, display_name)
  values (new.id, new.email,
          left(coalesce(new.raw_user_meta_data ->> 'display_name', split_part(new.email, '@', 1)), 200))
  on conflict (id) do nothing;
  return new;
end;
$$;

alter table public.profiles
  add constraint profiles_display_name_length check (char_length(display_name) <= 200) not valid;
