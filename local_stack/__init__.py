"""The local, Docker-free stack that stands in for `supabase start` on a plain Debian machine."""
