"""Local servers speaking the protocols of services that have no server here (Supabase Storage, Auth and
Realtime, SMTP, Upstash REST, an LLM provider, a price feed), run by the local stack and the tests only."""
