"""Merchant mapping: bank descriptors -> merchant keys -> company, ticker and category.

`normalizer` is the one normalization every caller uses; `catalog` holds the known merchants and the
labelled evaluation set; see docs/architecture.md for the other parts.
"""
