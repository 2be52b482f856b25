"""Durable background jobs in Postgres (private.job_queue), the worker process, and bulk imports."""
