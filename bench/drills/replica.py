"""The read replica stopped under load: reads move to the primary with no error, and come back.

The drill makes its own streaming standby of the stack's primary (own port, data dir and slot under
the drill's work dir), so the stack's replica keeps serving everyone else; the API under test reads
from it. Clients read analytics with changing windows (each a cache miss, so a database read) while
the standby is killed (`pg_ctl stop -m immediate`: in-flight queries lose their connection) and
started again.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.drills.processes import free_port
from bench.drills.scenarios import DrillResult, wait_for
from kamioi.settings import Settings
from local_stack.replica import LocalReplica

# How long API processes get to notice a stopped replica (their READ_REPLICA_CHECK_S, with room for load).
NOTICE_S = 1.0


@contextmanager
def throwaway_replica(settings: Settings, work_dir: Path) -> Iterator[LocalReplica]:
    replica = LocalReplica(settings.model_copy(update={"state_dir": work_dir, "replica_port": free_port()}))
    replica.initialize()
    replica.start()
    try:
        yield replica
    finally:
        replica.remove()


def _uncached_read(rng: random.Random) -> str:
    """An analytics read with a window nobody asked for lately: the API has to read the database."""
    if rng.random() < 0.5:
        return f"/v1/analytics/top-merchants?days={rng.randint(1, 366)}&limit={rng.randint(1, 100)}"
    return f"/v1/analytics/activity?grain=day&days={rng.randint(1, 366)}"


def source_of(api_url: str, headers: dict[str, str], rng: random.Random) -> str:
    response = httpx.get(api_url + _uncached_read(rng), headers=headers, timeout=30)
    return response.headers.get("x-read-source", "") if response.status_code == 200 else ""


def replica_outage_under_load(
    api_url: str, headers: dict[str, str], replica: LocalReplica, *, clients: int, phase_s: float,
    recovery_s: float = 15.0,
) -> DrillResult:  # fmt: skip
    """Pass: no request fails in any phase; reads come from the replica before, from the primary while
    it is down, and from the replica again within `recovery_s` of its restart."""
    seen: Counter[tuple[str, int, str]] = Counter()
    slowest: dict[str, float] = {}
    stop, lock = threading.Event(), threading.Lock()
    phase = ["before"]  # set by this thread, read by the clients

    def client(n: int) -> None:
        rng = random.Random(n)
        with httpx.Client(base_url=api_url, headers=headers, timeout=60) as http:
            while not stop.is_set():
                # A read belongs to the phase it started in: one that began before the kill may finish on the replica.
                started, started_in = time.monotonic(), phase[0]
                try:
                    response = http.get(_uncached_read(rng))
                    status, source = response.status_code, response.headers.get("x-read-source", "")
                except httpx.HTTPError:
                    status, source = 0, ""
                with lock:
                    seen[(started_in, status, source)] += 1
                    slowest[started_in] = max(slowest.get(started_in, 0.0), time.monotonic() - started)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(phase_s)
    replica.stop(mode="immediate")
    # Until its next check an API process still names the replica on an answer it serves from its
    # cache (X-Read-Source says where this process reads from now); reads then are only counted for errors.
    phase[0] = "noticing"
    time.sleep(NOTICE_S)
    phase[0] = "during"
    time.sleep(phase_s)
    replica.start()
    restarted_at = time.monotonic()
    phase[0] = "after"
    rng = random.Random(0)
    back = wait_for(lambda: source_of(api_url, headers, rng) == "replica", recovery_s, 0.1)
    back_in_s = time.monotonic() - restarted_at
    time.sleep(phase_s)
    stop.set()
    for thread in threads:
        thread.join()

    def count(name: str, source: str | None = None) -> int:
        return sum(n for (p, status, s), n in seen.items() if p == name and (source is None or s == source))

    errors = sum(n for (_, status, _), n in seen.items() if status != 200)
    passed = (
        errors == 0 and count("before", "replica") > 0 and count("during", "primary") > 0
        and count("during", "replica") == 0 and bool(back)
    )  # fmt: skip
    details: dict[str, Any] = {
        "requests": {f"{p} {status} {s or '-'}": n for (p, status, s), n in sorted(seen.items())},
        "slowest_s": {name: round(seconds, 3) for name, seconds in slowest.items()},
        "back_on_replica_s": round(back_in_s, 2) if back else None,
    }
    return DrillResult(
        "read replica stopped under load",
        passed,
        f"{sum(seen.values()):,} reads from {clients} clients, {errors} errors; before: {count('before', 'replica')}"
        f" from the replica; while down: {count('during', 'primary')} from the primary,"
        f" {count('during', 'replica')} from the replica (slowest {slowest.get('during', 0):.2f}s);"
        f" back on the replica {details['back_on_replica_s']}s after its restart",
        details,
    )
