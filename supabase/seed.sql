/*
 * Seed data for local stacks (`kamioi up`, `supabase start`, `supabase db reset`).
 * The merchant catalog is in seed_catalog.sql (generated from kamioi/mapping/data/catalog.csv).
 */

-- The seeded admin and user; `kamioi token --as admin|user` signs tokens for these ids.
insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data)
values
  ('00000000-0000-4000-a000-000000000001', 'authenticated', 'authenticated', 'admin@kamioi.local', now(),
   '{"provider": "email", "providers": ["email"]}', '{"display_name": "Kamioi Admin"}'),
  ('00000000-0000-4000-a000-000000000002', 'authenticated', 'authenticated', 'user@kamioi.local', now(),
   '{"provider": "email", "providers": ["email"]}', '{"display_name": "Kamioi User"}')
on conflict (id) do nothing;

-- The seeded admin is an admin (profiles are created by the sign-up trigger with role 'user').
update public.profiles set role = 'admin'
where id = '00000000-0000-4000-a000-000000000001' and role <> 'admin';
