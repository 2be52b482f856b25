"""LLM providers that map merchants to company, ticker and category.

The contract lives in `base`, implementations in their own modules; nothing is re-exported here so
that `kamioi.mapping.prompt` can import `base` without pulling in the implementations.
"""
