"""What the resolver may decide alone: approval, retries of failed provider calls, and its options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kamioi.mapping.catalog import alias_index, known_tickers, load_catalog
from kamioi.mapping.guard import trapped_brand
from kamioi.mapping.normalizer import place_names
from kamioi.mapping.trigram import SIMILARITY_THRESHOLD
from kamioi.settings import Settings

Tier = Literal["approved", "catalog", "similarity", "llm", "review"]
Status = Literal["approved", "pending", "rejected"]


@dataclass(frozen=True)
class ApprovalPolicy:
    """Which answers are approved without an admin. None: only catalog and mappings in force."""

    min_confidence: float | None = None

    def approves(self, tier: Tier, confidence: float | None, ticker: str | None, ticker_verified: bool) -> bool:
        if tier == "catalog":
            return True
        if self.min_confidence is None or tier not in ("similarity", "llm"):
            return False
        return ticker is not None and ticker_verified and confidence is not None and confidence >= self.min_confidence


@dataclass(frozen=True)
class RetryPolicy:
    """Keys the provider failed on: asked again after min(max_s, base_s * 2^(attempt-1)) (+-20%), at
    most max_attempts sends in all. lease_s must outlast the provider's answer to a whole claim (every
    batch, with its retries): a claim not settled by then is taken to be lost (a crashed asker) and is
    asked again."""

    max_attempts: int = 6
    base_s: float = 60.0
    max_s: float = 3600.0
    lease_s: float = 900.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            max_attempts=settings.mapping_retry_max_attempts,
            base_s=settings.mapping_retry_base_s,
            max_s=settings.mapping_retry_max_s,
            lease_s=settings.mapping_retry_lease_s,
        )


@dataclass(frozen=True)
class ResolverOptions:
    policy: ApprovalPolicy = ApprovalPolicy()
    similarity_threshold: float = SIMILARITY_THRESHOLD
    batch_size: int = 50
    # Tickers an answer may name; the database catalog's tickers are always added to these.
    known_tickers: frozenset[str] = field(default_factory=known_tickers)
    retry: RetryPolicy = RetryPolicy()

    @classmethod
    def from_settings(cls, settings: Settings) -> ResolverOptions:
        return cls(
            policy=ApprovalPolicy(settings.auto_approve_min_confidence),
            similarity_threshold=settings.mapping_similarity_threshold,
            batch_size=settings.llm_batch_size,
            retry=RetryPolicy.from_settings(settings),
        )


@dataclass(frozen=True)
class AnswerCheck:
    """What the partial-name guard makes of a provider's ticker for a key."""

    ticker: str | None  # the ticker to keep (None when the guard struck it)
    approvable: bool  # False: an admin must look, whatever the confidence
    note: str | None  # why, for the mapping's reason


def check_answer(merchant_key: str, ticker: str | None) -> AnswerCheck:
    """Every tier's guard over a provider's answer: a key that carries a brand into another name
    ("capital one arena", "target plumbing") must not get that brand's ticker. A venue, "+" service
    or place continuation strikes the ticker (the answer goes to review); any other continuation
    keeps it pending for an admin."""
    trap = trapped_brand(merchant_key, alias_index(), place_names()) if ticker else None
    if trap is None or load_catalog()[trap.merchant_key].ticker != ticker:
        return AnswerCheck(ticker, True, None)
    if trap.certain:
        return AnswerCheck(None, False, f"partial-name guard: not {trap.merchant_key} ({ticker} struck)")
    return AnswerCheck(ticker, False, f"partial-name guard: {trap.merchant_key} starts a longer name")
