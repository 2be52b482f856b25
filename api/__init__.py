"""Kamioi admin API: privileged actions behind verified Supabase tokens (`api.main:app`)."""
