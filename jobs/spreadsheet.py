"""CSV cells a spreadsheet would run as a formula (OWASP's CSV injection): text starting with
= + - @, a tab or a carriage return gets a leading single quote, so it shows as text. One rule for
every CSV the product writes: the import rejection report (COPY, in SQL) and the exports (Python)."""

from __future__ import annotations

FORMULA_STARTS = "=+-@\t\r"
# The same characters inside a regular expression bracket (PostgreSQL ARE escapes).
_SQL_CLASS = "".join({"-": "\\-", "\t": "\\t", "\r": "\\r"}.get(c, c) for c in FORMULA_STARTS)


def inert(text: str) -> str:
    """`text` as a cell no spreadsheet evaluates."""
    return "'" + text if text[:1] and text[0] in FORMULA_STARTS else text


def inert_sql(column: str) -> str:
    """A SQL expression of the text `column` as a cell no spreadsheet evaluates (as inert())."""
    return f"case when {column} ~ '^[{_SQL_CLASS}]' then '''' || {column} else {column} end"
