"""Measures behind `kamioi eval`: normalization, ticker precision and coverage, the similarity
threshold, and LLM calls per 1,000 transactions. Pure functions over the labelled set
(kamioi/mapping/data/eval_set.csv) and a transactions file; no database needed.

The pipeline evaluated is the resolver's, tier for tier: an exact catalog spelling (approved),
else the most similar catalog spelling at or above the threshold (pending), else the provider
(an LLM with --llm), else review. Definitions:
- normalization accuracy: descriptors whose key is the labelled key; one-key merchants: labelled
  merchants all of whose descriptors got one and the same key.
- ticker precision: of all the tickers the pipeline proposes (approved or pending), the share that
  is the labelled ticker; a ticker proposed for a private or local merchant counts as wrong.
- catalog coverage: of the descriptors of catalog merchants, the share answered with the right
  ticker (no ticker, for a private catalog merchant).
- LLM calls per 1,000 transactions: the provider calls the map_merchants job would make for a
  file: its distinct keys, walked in the job's chunks, less those the catalog tiers answer, in
  batches. Offline this counts the calls an LLM would receive; with --llm it counts real attempts.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from kamioi.mapping.catalog import EvalRow, alias_index, load_catalog
from kamioi.mapping.normalizer import normalize
from kamioi.mapping.policy import check_answer
from kamioi.mapping.providers.base import MerchantQuery, MerchantSuggestion, Provider
from kamioi.mapping.providers.offline import OfflineProvider
from kamioi.mapping.resolver import ApprovalPolicy

EvalTier = Literal["catalog", "similarity", "llm", "review"]
SWEEP = tuple(round(0.30 + 0.05 * step, 2) for step in range(14))  # 0.30 .. 0.95
TARGET_PRECISION = 0.99


@dataclass(frozen=True)
class NormalizationReport:
    descriptors: int
    correct: int
    merchants: int
    one_key_merchants: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.descriptors if self.descriptors else 0.0

    @property
    def consistency(self) -> float:
        return self.one_key_merchants / self.merchants if self.merchants else 0.0


def evaluate_normalization(rows: Sequence[EvalRow]) -> NormalizationReport:
    keys_by_merchant: dict[str, set[str]] = defaultdict(set)
    correct = 0
    for row in rows:
        key = normalize(row.descriptor).merchant_key
        keys_by_merchant[row.expected_key].add(key)
        correct += key == row.expected_key
    return NormalizationReport(
        descriptors=len(rows),
        correct=correct,
        merchants=len(keys_by_merchant),
        one_key_merchants=sum(len(keys) == 1 for keys in keys_by_merchant.values()),
    )


@dataclass(frozen=True)
class Prediction:
    answered: bool
    ticker: str | None
    tier: EvalTier
    approved: bool


@dataclass(frozen=True)
class TickerReport:
    rows: int
    proposed: int
    proposed_correct: int
    approved: int
    approved_correct: int
    catalog_rows: int
    catalog_covered: int
    tiers: dict[str, int]
    wrong: list[tuple[str, str | None, str | None]]  # (descriptor, proposed, expected)

    @property
    def precision(self) -> float:
        return self.proposed_correct / self.proposed if self.proposed else 1.0

    @property
    def approved_precision(self) -> float:
        return self.approved_correct / self.approved if self.approved else 1.0

    @property
    def coverage(self) -> float:
        return self.catalog_covered / self.catalog_rows if self.catalog_rows else 0.0


def score(rows: Sequence[EvalRow], predictions: Sequence[Prediction]) -> TickerReport:
    proposed = proposed_correct = approved = approved_correct = catalog_rows = catalog_covered = 0
    wrong: list[tuple[str, str | None, str | None]] = []
    for row, prediction in zip(rows, predictions, strict=True):
        right = prediction.ticker == row.expected_ticker
        if prediction.ticker is not None:
            proposed += 1
            proposed_correct += right
            if not right:
                wrong.append((row.descriptor, prediction.ticker, row.expected_ticker))
            if prediction.approved:
                approved += 1
                approved_correct += right
        if row.in_catalog:
            catalog_rows += 1
            catalog_covered += prediction.answered and right
    return TickerReport(
        rows=len(rows),
        proposed=proposed,
        proposed_correct=proposed_correct,
        approved=approved,
        approved_correct=approved_correct,
        catalog_rows=catalog_rows,
        catalog_covered=catalog_covered,
        tiers=dict(Counter(prediction.tier for prediction in predictions)),
        wrong=wrong,
    )


def offline_predictions(rows: Sequence[EvalRow], matcher: OfflineProvider) -> list[Prediction]:
    """The offline pipeline: catalog spelling (approved), similar spelling (pending), else review."""
    predictions = []
    for row in rows:
        found = matcher.match(normalize(row.descriptor).merchant_key)
        if found is None:
            predictions.append(Prediction(False, None, "review", False))
        elif found.similarity == 1.0:
            predictions.append(Prediction(True, found.merchant.ticker, "catalog", True))
        else:
            predictions.append(Prediction(True, found.merchant.ticker, "similarity", False))
    return predictions


async def provider_predictions(
    rows: Sequence[EvalRow],
    matcher: OfflineProvider,
    provider: Provider,
    *,
    policy: ApprovalPolicy,
    trusted: frozenset[str],
    batch_size: int,
) -> list[Prediction]:
    """The pipeline with a provider (an LLM) after the catalog tiers, as the resolver runs it."""
    offline = offline_predictions(rows, matcher)
    queries: dict[str, MerchantQuery] = {}
    for row, prediction in zip(rows, offline, strict=True):
        if not prediction.answered:
            item = normalize(row.descriptor)
            query = queries.setdefault(item.merchant_key, MerchantQuery(item.merchant_key, item.display_name, []))
            query.sample_descriptors.append(row.descriptor)
    answers = await ask_in_batches(provider, list(queries.values()), batch_size)
    predictions = []
    for row, prediction in zip(rows, offline, strict=True):
        answer = None if prediction.answered else answers.get(normalize(row.descriptor).merchant_key)
        if answer is None:
            predictions.append(prediction)
            continue
        checked = check_answer(normalize(row.descriptor).merchant_key, answer.ticker)
        verified = checked.ticker is not None and checked.ticker in trusted
        approved = checked.approvable and policy.approves("llm", answer.confidence, checked.ticker, verified)
        predictions.append(Prediction(True, checked.ticker, "llm", approved))
    return predictions


async def ask_in_batches(
    provider: Provider, queries: Sequence[MerchantQuery], batch_size: int
) -> dict[str, MerchantSuggestion]:
    """A batch the provider could not answer scores as unanswered, as it would stay in production."""
    batches = [queries[start : start + batch_size] for start in range(0, len(queries), batch_size)]
    results = await asyncio.gather(*(provider.suggest(batch) for batch in batches), return_exceptions=True)
    return {
        suggestion.merchant_key: suggestion
        for result in results
        if not isinstance(result, BaseException)
        for suggestion in result
    }


@dataclass(frozen=True)
class HardReport:
    """The hard set: ticker precision and coverage (of public companies), private merchants given a
    ticker, and merchant consistency (every descriptor of a merchant normalized to one key)."""

    tickers: TickerReport
    private_rows: int
    private_with_ticker: int
    normalization: NormalizationReport


def hard_report(rows: Sequence[EvalRow], predictions: Sequence[Prediction]) -> HardReport:
    private = [prediction for row, prediction in zip(rows, predictions, strict=True) if row.expected_ticker is None]
    return HardReport(
        tickers=score(rows, predictions),
        private_rows=len(private),
        private_with_ticker=sum(prediction.ticker is not None for prediction in private),
        normalization=evaluate_normalization(rows),
    )


@dataclass(frozen=True)
class SimilaritySample:
    key: str
    expected_ticker: str | None
    in_catalog: bool
    similarity: float  # to the closest catalog spelling (0 when none shares a trigram)
    proposed_ticker: str | None


@dataclass(frozen=True)
class SweepPoint:
    threshold: float
    matched: int  # samples at or above the threshold
    proposed: int  # of those, with a ticker
    wrong: int  # of those, a ticker other than the labelled one
    found: int  # catalog samples answered with their labelled ticker

    @property
    def precision(self) -> float:
        return 1 - self.wrong / self.proposed if self.proposed else 1.0


@dataclass(frozen=True)
class ThresholdReport:
    samples: int
    catalog_samples: int
    points: list[SweepPoint]
    closest_distinct_catalog: float  # highest similarity between spellings of two catalog merchants

    @property
    def recommended(self) -> float:
        """The lowest threshold whose proposed tickers are right at least TARGET_PRECISION of the time,
        and stay so at every higher threshold (so one lucky grid point cannot pick it)."""
        best = self.points[-1].threshold
        for point in reversed(self.points):
            if point.precision < TARGET_PRECISION:
                break
            best = point.threshold
        return best


def spelling_variants(key: str, spellings: Container[str]) -> list[str]:
    """What banks and data entry do to a merchant name: one letter dropped, two letters swapped, and a
    long name cut at a 12-character field. Variants that are some catalog spelling are left out."""
    middle = len(key) // 2
    variants = []
    if len(key) >= 5:
        variants.append(key[:middle] + key[middle + 1 :])
        if " " not in key[middle - 1 : middle + 1]:
            variants.append(key[: middle - 1] + key[middle] + key[middle - 1] + key[middle + 1 :])
    if len(key) > 12:
        variants.append(key[:12].rstrip())
    return [variant for variant in dict.fromkeys(variants) if variant not in spellings]


def similarity_samples(rows: Sequence[EvalRow], matcher: OfflineProvider) -> list[SimilaritySample]:
    """What reaches the similarity tier: eval descriptors whose key is no catalog spelling, and
    spelling variants of every catalog merchant of the set. `matcher` needs a threshold near 0."""
    catalog = load_catalog()
    spellings = alias_index()
    keys = [(normalize(row.descriptor).merchant_key, row.expected_ticker, row.in_catalog) for row in rows]
    keys = [(key, ticker, in_catalog) for key, ticker, in_catalog in keys if key not in spellings]
    for merchant_key in sorted({row.expected_key for row in rows if row.in_catalog}):
        ticker = catalog[merchant_key].ticker
        keys.extend((variant, ticker, True) for variant in spelling_variants(merchant_key, spellings))
    samples = []
    for key, ticker, in_catalog in keys:
        found = matcher.match(key)
        samples.append(
            SimilaritySample(
                key,
                ticker,
                in_catalog,
                found.similarity if found else 0.0,
                found.merchant.ticker if found else None,
            )
        )
    return samples


def sweep_threshold(
    rows: Sequence[EvalRow], matcher: OfflineProvider, thresholds: Sequence[float] = SWEEP
) -> ThresholdReport:
    """Ticker precision and recall of the similarity tier, threshold by threshold."""
    samples = similarity_samples(rows, matcher)
    points = []
    for threshold in thresholds:
        matched = [sample for sample in samples if sample.similarity >= threshold]
        proposed = [sample for sample in matched if sample.proposed_ticker is not None]
        points.append(
            SweepPoint(
                threshold,
                matched=len(matched),
                proposed=len(proposed),
                wrong=sum(sample.proposed_ticker != sample.expected_ticker for sample in proposed),
                found=sum(s.in_catalog and s.proposed_ticker == s.expected_ticker for s in matched),
            )
        )
    return ThresholdReport(
        samples=len(samples),
        catalog_samples=sum(sample.in_catalog for sample in samples),
        points=points,
        closest_distinct_catalog=matcher.closest_distinct_merchants(),
    )


@dataclass(frozen=True)
class CallsReport:
    transactions: int
    distinct_keys: int
    provider_keys: int
    calls: int

    @property
    def per_1000(self) -> float:
        return 1000 * self.calls / self.transactions if self.transactions else 0.0


def provider_batches(
    descriptors: Iterable[str], matcher: OfflineProvider, *, batch_size: int, chunk_keys: int
) -> tuple[int, int, list[list[MerchantQuery]]]:
    """(transactions, distinct keys, the provider batches the map_merchants job would send), walking
    distinct keys in key order, `chunk_keys` per chunk, `batch_size` per call, each key at most once."""
    samples: dict[str, MerchantQuery] = {}
    transactions = 0
    for descriptor in descriptors:
        transactions += 1
        item = normalize(descriptor)
        if item.merchant_key not in samples:
            samples[item.merchant_key] = MerchantQuery(item.merchant_key, item.display_name, [descriptor])
    keys = sorted(samples)
    batches: list[list[MerchantQuery]] = []
    for start in range(0, len(keys), chunk_keys):
        unknown = [samples[key] for key in keys[start : start + chunk_keys] if matcher.match(key) is None]
        batches.extend(unknown[at : at + batch_size] for at in range(0, len(unknown), batch_size))
    return transactions, len(keys), batches


def calls_report(
    transactions: int, distinct_keys: int, batches: Sequence[Sequence[MerchantQuery]], calls: int | None = None
) -> CallsReport:
    """calls=None: one call per batch (what an LLM would receive); else the attempts counted."""
    return CallsReport(
        transactions=transactions,
        distinct_keys=distinct_keys,
        provider_keys=sum(len(batch) for batch in batches),
        calls=len(batches) if calls is None else calls,
    )
