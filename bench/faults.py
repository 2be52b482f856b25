"""The long fault suite: every drill of bench/drills at full size, against the stack the settings
point at (it restarts that stack's PostgreSQL and redis-server: use a private stack).

    KAMIOI_STATE_DIR=/tmp/kamioi-rel KAMIOI_ENV_FILE=/tmp/kamioi-rel/.env KAMIOI_DB_PORT=61322 \\
    KAMIOI_REDIS_PORT=61379 KAMIOI_UPSTASH_PORT=61380 KAMIOI_API_PORT=61800 \\
      .venv/bin/python -m bench.faults                      # ~6 minutes; --only kill,llm for some

Prints one line per drill (pass/fail and what was compared) and writes every detail to
<state dir>/faults/results.json. Exit status 1 if any drill failed. The fast parts run in
`make test` (tests/reliability/test_faults.py).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.drills.outages import RestartPostgres, StopRedis
from bench.drills.processes import ApiProcess
from bench.drills.replica import replica_outage_under_load, throwaway_replica
from bench.drills.scenarios import (
    ApiWatch,
    DrillEnv,
    DrillResult,
    cache_outage_under_load,
    database_outage_during_import,
    huge_line_import,
    huge_upload_refused,
    kill_worker_during_import,
    llm_outage_during_mapping,
    storage_full_upload,
)
from kamioi.settings import Settings, get_settings
from local_stack.keys import ensure_keys
from local_stack.manager import Stack
from local_stack.postgres import LocalPostgres
from local_stack.redis_server import LocalRedis
from local_stack.standins.llm_server import serve_in_thread
from local_stack.standins.storage_server import serve_in_thread as storage_in_thread
from local_stack.tokens import token_for

DRILLS = ("kill", "postgres", "redis", "replica", "llm", "disk", "huge-line", "huge-upload")


@contextmanager
def tmpfs(size: str) -> Iterator[Path | None]:
    """A small RAM file system (mounting needs root); None where that is not allowed."""
    with tempfile.TemporaryDirectory(prefix="kamioi-tmpfs-") as mount_point:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", mount_point], capture_output=True, check=False
        )
        try:
            yield Path(mount_point) if mounted.returncode == 0 else None
        finally:
            if mounted.returncode == 0:
                subprocess.run(["umount", mount_point], check=False)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(DRILLS), help=f"comma-separated subset of {','.join(DRILLS)}")
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the imports that are broken")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--llm-outage-s", type=float, default=60.0)
    parser.add_argument("--huge-line-gb", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=None)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    selected = set(args.only.split(","))
    settings = get_settings()
    work_dir = settings.state_dir / "faults"
    work_dir.mkdir(parents=True, exist_ok=True)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    env = DrillEnv(settings.db_url, settings.db_url, work_dir, random.Random(seed))
    headers = {"Authorization": f"Bearer {token_for('admin', ensure_keys(settings.keys_dir), settings.jwt_issuer)}"}
    results: list[DrillResult] = []
    print(f"fault suite on {settings.db_url} (seed {seed}); details in {work_dir}", flush=True)
    keys = {"secret_key": settings.supabase_secret_key, "jwt_secret": settings.supabase_jwt_secret}
    with (
        Stack(settings).worker_paused(),
        tmpfs("1m") as tiny,
        tempfile.TemporaryDirectory(dir=work_dir) as objects,
        storage_in_thread(tiny or Path(objects), **keys) as storage,
    ):
        api_env = {
            "SUPABASE_STORAGE_URL": storage,
            "API_RATE_READS_PER_MINUTE": "1000000",
            "API_RATE_WRITES_PER_MINUTE": "1000000",
            "API_RATE_UPLOADS_PER_HOUR": "1000000",
            "API_LOG_LEVEL": "WARNING",
        }
        with ApiProcess(api_env, work_dir / "api.log") as api:
            drills: dict[str, Callable[[], DrillResult]] = {
                "kill": lambda: kill_worker_during_import(env, rows=args.rows, kills=args.kills, chunk_rows=2000),
                "postgres": lambda: database_outage_during_import(
                    env,
                    RestartPostgres(LocalPostgres(settings)),
                    rows=args.rows,
                    chunk_rows=2000,
                    outage_s=5,
                    api=ApiWatch(api.url, headers, ("/readyz", "/v1/imports?limit=1", "/v1/stats/dashboard")),
                ),
                "redis": lambda: cache_outage_under_load(
                    api.url, headers, StopRedis(LocalRedis(settings)), clients=8, phase_s=10
                ),
                "replica": lambda: run_replica(settings, headers, work_dir),
                "llm": lambda: run_llm(env, args.llm_outage_s),
                "disk": lambda: storage_full(settings, api.url, headers, tiny),
                "huge-line": lambda: huge_line_import(env, line_bytes=int(args.huge_line_gb * 2**30)),
                "huge-upload": lambda: with_default_upload_limit(settings, headers, work_dir, args.huge_line_gb),
            }
            for name in DRILLS:
                if name in selected:
                    print(f"-- {name}", flush=True)
                    results.append(drills[name]())
                    print(f"   {'PASS' if results[-1].passed else 'FAIL'}  {results[-1].summary}", flush=True)
    (work_dir / "results.json").write_text(
        json.dumps([r.__dict__ for r in results], indent=2, default=str), encoding="utf-8"
    )
    print("\n| fault | result | what was checked |\n|---|---|---|")
    for r in results:
        print(f"| {r.name} | {'pass' if r.passed else '**fail**'} | {r.summary} |")
    return 0 if all(r.passed for r in results) else 1


def run_replica(settings: Settings, headers: dict[str, str], work_dir: Path) -> DrillResult:
    """An API reading from the drill's own standby, which is killed under 8 clients for 10 s."""
    with throwaway_replica(settings, work_dir / "replica") as replica:
        env = {
            "READ_REPLICA_URL": replica.settings.local_replica_url,
            "READ_REPLICA_CHECK_S": "0.5",
            "API_RATE_READS_PER_MINUTE": "1000000",
            "API_LOG_LEVEL": "WARNING",
        }
        with ApiProcess(env, work_dir / "api-replica.log") as api:
            return replica_outage_under_load(api.url, headers, replica, clients=8, phase_s=10)


def run_llm(env: DrillEnv, outage_s: float) -> DrillResult:
    with serve_in_thread("good") as llm_url:
        return llm_outage_during_mapping(env, llm_url, merchants=500, outage_s=outage_s, timeout_s=2.0)


def storage_full(settings: Settings, api_url: str, headers: dict[str, str], tiny: Path | None) -> DrillResult:
    if tiny is None:
        return DrillResult("Storage full while an upload streams in", False, "not run: mounting a tmpfs needs root")
    return storage_full_upload(settings.db_url, api_url, headers, tiny, too_big=5_000_000)


def with_default_upload_limit(settings: Settings, headers: dict[str, str], work_dir: Path, gb: float) -> DrillResult:
    """The API with the production upload limit, its Storage on a real disk, and a stream far larger than it."""
    keys = {"secret_key": settings.supabase_secret_key, "jwt_secret": settings.supabase_jwt_secret}
    with tempfile.TemporaryDirectory(dir=work_dir) as objects, storage_in_thread(Path(objects), **keys) as storage:
        env = {"SUPABASE_STORAGE_URL": storage, "API_RATE_UPLOADS_PER_HOUR": "1000000", "API_LOG_LEVEL": "WARNING"}
        with ApiProcess(env, work_dir / "api-upload.log") as api:
            return huge_upload_refused(
                api.url, headers, Path(objects), size=int(gb * 2**30), limit=settings.api_upload_max_bytes
            )


if __name__ == "__main__":
    sys.exit(main())
