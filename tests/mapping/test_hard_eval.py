"""The hard evaluation set (kamioi/mapping/data/hard_eval_set.csv) scored offline, with floors.

Floors are the issue's targets: precision >= 99.5%, coverage of public companies >= 80%, no private
merchant given a ticker, consistency >= 95%. `kamioi eval` prints the same numbers.
"""

from __future__ import annotations

from cli.commands.evaluate import HARD_MIN_CONSISTENCY, HARD_MIN_COVERAGE, HARD_MIN_PRECISION
from cli.evaluation import hard_report, offline_predictions
from kamioi.mapping.catalog import load_hard_set, ticker_universe
from kamioi.mapping.providers.offline import OfflineProvider
from kamioi.mapping.trigram import SIMILARITY_THRESHOLD

KINDS = {"venue", "lookalike", "plus", "place", "parent", "deal", "adr", "processor", "private", "government"}


def test_the_set_is_big_labelled_and_covers_every_kind() -> None:
    rows = load_hard_set()
    assert len(rows) >= 300
    assert {row.kind for row in rows} >= KINDS
    assert all(row.source.strip() for row in rows)
    assert [row for row in rows if row.expected_ticker and row.expected_ticker not in ticker_universe()] == []
    assert len({row.descriptor for row in rows}) == len(rows)


def test_offline_pipeline_meets_the_floors() -> None:
    rows = [row.as_eval_row() for row in load_hard_set()]
    report = hard_report(rows, offline_predictions(rows, OfflineProvider.from_catalog(SIMILARITY_THRESHOLD)))

    assert report.tickers.precision >= HARD_MIN_PRECISION, report.tickers.wrong
    assert report.tickers.coverage >= HARD_MIN_COVERAGE
    assert report.private_with_ticker == 0
    assert report.normalization.consistency >= HARD_MIN_CONSISTENCY
