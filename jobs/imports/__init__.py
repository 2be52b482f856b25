"""Bulk CSV imports (llm_mappings, transactions) run as resumable background jobs; see README.md."""
