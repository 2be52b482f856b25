"""The contract between merchant-mapping LLM providers and their callers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, get_args

from pydantic import BaseModel, ConfigDict, Field

Category = Literal[
    "FOOD_AND_DRINK",
    "GENERAL_MERCHANDISE",
    "TRANSPORTATION",
    "TRAVEL",
    "ENTERTAINMENT",
    "PERSONAL_CARE",
    "GENERAL_SERVICES",
    "HOME_IMPROVEMENT",
    "MEDICAL",
    "RENT_AND_UTILITIES",
    "LOAN_PAYMENTS",
    "BANK_FEES",
    "TRANSFER_IN",
    "TRANSFER_OUT",
    "GOVERNMENT_AND_NON_PROFIT",
    "INCOME",
]
"""Plaid's personal-finance primary categories."""

CATEGORIES: tuple[str, ...] = get_args(Category)

TICKER_PATTERN = r"^[A-Z][A-Z.]{0,5}$"
"""A listed symbol such as SBUX or BRK.B: uppercase letters and dots, at most 6 characters."""

CallOutcome = Literal["ok", "invalid_output", "http_error", "timeout", "rate_limited"]


@dataclass(frozen=True)
class MerchantQuery:
    """One normalized merchant to map, with a few raw descriptors as evidence."""

    merchant_key: str
    display_name: str
    sample_descriptors: list[str]


class MerchantSuggestion(BaseModel):
    """What a provider proposes for one merchant; the resolver decides whether it is trusted."""

    model_config = ConfigDict(frozen=True)

    merchant_key: str = Field(min_length=1)
    company: str = Field(min_length=1, max_length=200)
    ticker: str | None = Field(default=None, pattern=TICKER_PATTERN)
    category: Category
    confidence: float = Field(ge=0.0, le=1.0)
    reason: str = Field(max_length=200)
    # Set by the provider, never by the model: True only when the ticker is in the known-tickers set,
    # so an unverified ticker can go to review but never straight to approved.
    ticker_verified: bool = False


class ProviderUnavailable(Exception):
    """The provider could not answer a batch at all (errors, timeouts, rate limits, unusable replies
    after its retries): the batch's merchants are worth asking again later."""


class Provider(Protocol):
    name: str
    model: str
    prompt_version: str

    async def suggest(self, batch: Sequence[MerchantQuery]) -> list[MerchantSuggestion]:
        """At most one suggestion per query; queries the provider answered without are absent.

        Raises (ProviderUnavailable, or any error) when the batch got no answer at all."""
        ...


@dataclass(frozen=True)
class CallRecord:
    """One HTTP attempt against an LLM, as stored in the LLM ledger."""

    provider: str
    model: str
    prompt_version: str
    merchants: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_ms: int
    outcome: CallOutcome
    error: str | None
    attempt: int


class CallRecorder(Protocol):
    async def record(self, rec: CallRecord) -> None: ...
