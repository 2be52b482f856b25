"""Job kinds only drill workers run (`--module bench.drills.handlers`): the import, mapping and
re-ask handlers under their own names, so a stack's regular worker never claims a drill's job and a
kill always hits the worker the drill owns."""

from __future__ import annotations

from jobs.context import JobContext
from jobs.imports.handler import import_file
from jobs.map_merchants import map_merchants
from jobs.reask_merchants import reask_merchants
from jobs.registry import Outcome, job_handler

DRILL_IMPORT = "drill.import"
DRILL_MAP_MERCHANTS = "drill.map_merchants"
DRILL_REASK = "drill.reask_merchants"


@job_handler(DRILL_IMPORT)
def drill_import(ctx: JobContext) -> Outcome:
    return import_file(ctx)


@job_handler(DRILL_MAP_MERCHANTS)
def drill_map_merchants(ctx: JobContext) -> Outcome:
    return map_merchants(ctx)


@job_handler(DRILL_REASK)
def drill_reask_merchants(ctx: JobContext) -> Outcome:
    return reask_merchants(ctx)
