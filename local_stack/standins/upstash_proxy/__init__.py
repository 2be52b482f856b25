"""Upstash-compatible REST endpoint over a real redis-server (``python -m local_stack.standins.upstash_proxy``).

Speaks the protocol the unmodified ``upstash-redis`` (Python) and ``@upstash/redis`` (npm) clients
send: POST / with one command, POST /pipeline and POST /multi-exec with a list of commands, and the
GET path form (/set/key/value). Replies are ``{"result": ...}`` / ``{"error": ...}``.
"""
