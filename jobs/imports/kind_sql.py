"""The set-based SQL of each import kind: clean and type, check, identify duplicates, merge.

`cleaned` turns a row of the chunk's staging table `pg_temp.import_stage as s` (all text, as in the
file) into trimmed text (blank = null) plus the typed value of each typed column (null when the text
is not one); `checks` compare the two. Both are computed once per row into `pg_temp.import_clean`,
which the duplicate check and the merge read as `c` (with its `problems` array). The merge takes the
rows without problems and not reported as duplicates in `pg_temp.import_problems`, and writes the
typed values. See README.md for the rules in words.
"""

from __future__ import annotations

from dataclasses import dataclass

from kamioi.mapping.normalizer import MAX_DESCRIPTOR_CHARS
from kamioi.mapping.providers.base import CATEGORIES  # the one list (llm_mappings' check says the same)

MAX_AMOUNT = 1_000_000
MAX_NAME_CHARS = MAX_DESCRIPTOR_CHARS


@dataclass(frozen=True)
class KindSql:
    cleaned: str  # select list over `s`
    checks: tuple[tuple[str, str], ...]  # (column, expression over `c`: the reason, or null when fine)
    identity: str  # text expression over `c`: rows with equal identity are duplicates
    merge: str  # one statement over problem-free rows; returns (inserted, updated); param %(job)s

    @property
    def problems(self) -> str:
        """An array of 'column<TAB>reason' per row, empty when the row is fine (the common case, so
        the array is only built once some check failed)."""
        reasons = ", ".join(f"({reason})" for _, reason in self.checks)
        items = ",\n".join(f"'{column}' || e'\\t' || ({reason})" for column, reason in self.checks)
        return f"case when coalesce({reasons}) is null then '{{}}'::text[] else array_remove(array[{items}], null) end"


def _text(column: str, transform: str = "{}") -> str:
    return transform.format(f"nullif(btrim(s.{column}), '')") + f" as {column}"


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


_MAPPINGS_CLEANED = ",\n".join(
    [
        _text("merchant_name"),
        _text("company_name"),
        _text("ticker", "upper({})"),
        _text("category", "upper(translate({}, ' -', '__'))"),
        _text("confidence"),
        _text("status", "lower({})"),
        _text("admin_approved"),
        _text("source", "lower({})"),
        _text("tier", "lower({})"),
        _text("model"),
        _text("prompt_version"),
        _text("reason"),
        _text("created_at"),
        _text("reviewer"),
        _text("reviewed_at"),
        "case when btrim(s.confidence) ~ '^(\\d+(\\.\\d*)?|\\.\\d+)$' then btrim(s.confidence)::numeric end"
        " as confidence_value",
        "private.import_boolean(btrim(s.admin_approved)) as admin_approved_value",
        "private.import_timestamptz(btrim(s.created_at)) as created_at_value",
        "private.import_timestamptz(btrim(s.reviewed_at)) as reviewed_at_value",
        "private.import_uuid(btrim(s.reviewer)) as reviewer_value",
    ]
)

MAPPINGS_SQL = KindSql(
    cleaned=_MAPPINGS_CLEANED,
    checks=(
        (
            "merchant_name",
            f"case when c.merchant_name is null then 'required' when length(c.merchant_name) > "
            f"{MAX_NAME_CHARS} then 'longer than {MAX_NAME_CHARS} characters' end",
        ),
        (
            "company_name",
            "case when c.company_name is null then 'required'"
            " when length(c.company_name) > 200 then 'longer than 200 characters' end",
        ),
        ("ticker", "case when c.ticker !~ '^[A-Z][A-Z0-9]{0,5}([.-][A-Z0-9]{1,3})?$' then 'not a ticker symbol' end"),
        (
            "category",
            f"case when c.category not in ({_in(CATEGORIES)})"
            " then 'unknown category (expected e.g. FOOD_AND_DRINK)' end",
        ),
        (
            "confidence",
            "case when c.confidence_value is null and c.confidence is not null then 'not a number'"
            " when c.confidence_value > 1 then 'must be between 0 and 1' end",
        ),
        (
            "status",
            "case when c.status not in ('pending', 'approved', 'rejected')"
            " then 'must be pending, approved or rejected' end",
        ),
        (
            "admin_approved",
            "case when c.admin_approved_value is null and c.admin_approved is not null"
            " then 'not a boolean (true/false)' end",
        ),
        (
            "source",
            "case when c.source not in ('llm', 'admin', 'import', 'catalog', 'user')"
            " then 'must be llm, admin, import, catalog or user' end",
        ),
        (
            "tier",
            "case when c.tier not in ('approved', 'catalog', 'similarity', 'llm', 'review')"
            " then 'must be approved, catalog, similarity, llm or review' end",
        ),
        ("model", "case when length(c.model) > 200 then 'longer than 200 characters' end"),
        ("prompt_version", "case when length(c.prompt_version) > 200 then 'longer than 200 characters' end"),
        ("reason", "case when length(c.reason) > 2000 then 'longer than 2000 characters' end"),
        (
            "created_at",
            "case when c.created_at_value is null and c.created_at is not null"
            " then 'not an ISO 8601 timestamp' when c.created_at_value > now() + interval '1 day'"
            " then 'in the future' end",
        ),
        (
            "reviewed_at",
            "case when c.reviewed_at_value is null and c.reviewed_at is not null then 'not an ISO 8601 timestamp' end",
        ),
        (
            "reviewer",
            "case when c.reviewer is null then null when c.reviewer_value is null then 'not a UUID'"
            " when not exists (select 1 from auth.users as u where u.id = c.reviewer_value)"
            " then 'unknown user' end",
        ),
    ),
    # A duplicate repeats a whole row (typed values; the name's case aside): two proposals for one
    # merchant that differ in anything are history, not duplicates.
    identity=(
        "row(lower(c.merchant_name), c.company_name, c.ticker, c.category, round(c.confidence_value, 4), c.status,"
        " c.admin_approved_value, c.source, c.tier, c.model, c.prompt_version, c.reason, c.created_at_value,"
        " c.reviewer_value, c.reviewed_at_value)::text"
    ),
    # Every row becomes a mapping (llm_mappings keeps each merchant's history). The registry gets
    # every new key; an approved row becomes its merchant's mapping in force unless a newer
    # approved one already is (updated = merchants whose mapping in force moved).
    merge="""
      with inserted as (
        insert into public.llm_mappings (
          created_at, merchant_name, merchant_key, company_name, ticker, category, confidence, status,
          admin_approved, source, tier, model, prompt_version, reason, reviewer, reviewed_at, import_job_id)
        select coalesce(c.created_at_value, now()), c.merchant_name, c.merchant_key, c.company_name, c.ticker,
               c.category, round(c.confidence_value, 4), coalesce(c.status, 'pending'),
               coalesce(c.admin_approved_value, false), coalesce(c.source, 'import'), c.tier, c.model,
               c.prompt_version, c.reason, c.reviewer_value, c.reviewed_at_value, %(job)s
          from pg_temp.import_clean as c
         where cardinality(c.problems) = 0
           and not exists (select 1 from pg_temp.import_problems as p where p.line_number = c.line_number)
         order by c.line_number
        returning id, created_at, merchant_key, company_name, status
      ),
      registered as (
        insert into public.merchants as m (merchant_key, display_name, mapping_id, mapping_created_at)
        select distinct on (i.merchant_key) i.merchant_key, i.company_name,
               case when i.status = 'approved' then i.id end,
               case when i.status = 'approved' then i.created_at end
          from inserted as i
         order by i.merchant_key, i.status = 'approved' desc, i.created_at desc, i.id desc
        on conflict (merchant_key) do update
          set mapping_id = excluded.mapping_id,
              mapping_created_at = excluded.mapping_created_at,
              display_name = excluded.display_name
          where excluded.mapping_id is not null
            and (m.mapping_id is null or excluded.mapping_created_at >= m.mapping_created_at)
        returning m.xmax <> 0 as was_update
      )
      select (select count(*) from inserted), (select count(*) from registered where was_update)
    """,
)

_TRANSACTIONS_CLEANED = ",\n".join(
    [
        _text("user_id"),
        _text("txn_date"),
        _text("descriptor"),
        _text("amount"),
        "private.import_uuid(btrim(s.user_id)) as user_id_value",
        "private.import_date(btrim(s.txn_date)) as txn_date_value",
        # Optional sign and $, thousands commas, at most 2 decimals.
        "case when btrim(s.amount) ~ '^[+-]?\\$?(\\d{1,3}(,\\d{3})+|\\d{1,10})(\\.\\d{1,2})?$'"
        " then replace(replace(btrim(s.amount), '$', ''), ',', '')::numeric end as amount_value",
    ]
)

TRANSACTIONS_SQL = KindSql(
    cleaned=_TRANSACTIONS_CLEANED,
    checks=(
        (
            "user_id",
            "case when c.user_id is null then 'required' when c.user_id_value is null then 'not a UUID'"
            " when not exists (select 1 from auth.users as u where u.id = c.user_id_value)"
            " then 'unknown user' end",
        ),
        (
            "txn_date",
            "case when c.txn_date is null then 'required'"
            " when c.txn_date_value is null then 'not a date (YYYY-MM-DD or M/D/YYYY)'"
            " when c.txn_date_value < date '2000-01-01' then 'before 2000-01-01'"
            " when c.txn_date_value > current_date + 1 then 'in the future' end",
        ),
        (
            "descriptor",
            f"case when c.descriptor is null then 'required' when length(c.descriptor) > "
            f"{MAX_NAME_CHARS} then 'longer than {MAX_NAME_CHARS} characters' end",
        ),
        (
            "amount",
            "case when c.amount is null then 'required'"
            " when c.amount_value is null then 'not an amount (digits, at most 2 decimals)'"
            " when c.amount_value = 0 then 'zero'"
            f" when abs(c.amount_value) > {MAX_AMOUNT} then 'beyond +/-{MAX_AMOUNT:,}' end",
        ),
    ),
    identity="row(c.user_id_value, c.txn_date_value, c.descriptor, round(c.amount_value, 2))::text",
    # Purchases round up to the next whole dollar; refunds (negative amounts) round up nothing.
    merge="""
      with inserted as (
        insert into public.transactions (
          user_id, txn_date, descriptor, merchant_key, amount, round_up, import_job_id, import_line)
        select c.user_id_value, c.txn_date_value, c.descriptor, c.merchant_key, c.amount_value,
               case when c.amount_value > 0 then ceil(c.amount_value) - c.amount_value else 0 end,
               %(job)s, c.line_number
          from pg_temp.import_clean as c
         where cardinality(c.problems) = 0
           and not exists (select 1 from pg_temp.import_problems as p where p.line_number = c.line_number)
         order by c.line_number
        returning 1
      )
      select count(*), 0 from inserted
    """,
)
