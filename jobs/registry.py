"""Which handler runs each job kind.

A job kind is registered by decorating a handler in a module the worker imports:

    from jobs.registry import job_handler

    @job_handler("mapping")
    def map_merchants(ctx: JobContext) -> Outcome: ...

and listing that module in HANDLER_MODULES below (or passing `--module` to `python -m jobs worker`).
Enqueue with `jobs.queue.enqueue(conn, "mapping", payload)` or SQL `private.enqueue_job('mapping', ...)`.
"""

from __future__ import annotations

import enum
import importlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobs.context import JobContext

# Modules whose import registers the project's job kinds.
HANDLER_MODULES = (
    "jobs.imports.handler",
    "jobs.map_merchants",
    "jobs.bulk_review",
    "jobs.reask_merchants",
    "jobs.link_transactions",
    "jobs.invest",
    "jobs.sweep",
    "jobs.correct_allocations",
    "jobs.exports",
    "jobs.backfill_rollups",
    "jobs.mail",
)


class Outcome(enum.Enum):
    SUCCEEDED = "succeeded"
    CANCELLED = "cancelled"  # the handler honoured ctx.cancel_requested
    HANDED_BACK = "handed_back"  # the handler stopped early on ctx.stop_requested: requeue, resume later


JobHandler = Callable[["JobContext"], Outcome]

_handlers: dict[str, JobHandler] = {}


def job_handler(kind: str) -> Callable[[JobHandler], JobHandler]:
    def register(handler: JobHandler) -> JobHandler:
        if _handlers.get(kind, handler) is not handler:
            raise ValueError(f"job kind {kind!r} already has a handler")
        _handlers[kind] = handler
        return handler

    return register


def handler_for(kind: str) -> JobHandler:
    return _handlers[kind]


def registered_kinds() -> list[str]:
    return sorted(_handlers)


def load_handler_modules(modules: Iterable[str] = HANDLER_MODULES) -> None:
    for module in modules:
        importlib.import_module(module)
