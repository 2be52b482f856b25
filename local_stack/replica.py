"""A streaming hot standby of the project's cluster: the local stack's read replica.

Made once with `pg_basebackup -R` from the primary through a physical replication slot (so the
primary keeps the WAL it has not replayed yet, at most `max_slot_wal_keep_size`), in its own data
dir under the state dir and on its own port (KAMIOI_REPLICA_PORT). It replays everything the primary
commits and answers read-only queries; pg_cron stays loaded but schedules nothing while the server is
in recovery, so the jobs run on the primary only. `hot_standby_feedback` keeps the primary's vacuum
from removing rows a long analytics query on the standby still reads.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import psycopg

from kamioi.replication import REPLICA_LAG_SQL
from kamioi.settings import Settings
from local_stack.postgres import (
    LOCAL_PASSWORD,
    PG_BIN,
    SUPERUSER,
    as_server_user,
    cluster_running,
    pg_ctl,
    prepare_server_dir,
    remove_server_dir,
)
from local_stack.processes import StackError, ensure_port_free, run, wait_until

STANDBY_SETTINGS = {"hot_standby": "on", "hot_standby_feedback": "on"}


@dataclass(frozen=True)
class ReplicaState:
    in_recovery: bool
    lag_s: float  # 0 when everything the primary sent is replayed
    # A WAL receiver is streaming from the primary. Without one, lag 0 only means "replayed all it got".
    streaming: bool = True


# Whether this standby's WAL receiver streams (no row at all: it is not connected to a primary).
STREAMING_SQL = "select coalesce((select status = 'streaming' from pg_stat_wal_receiver limit 1), false)"


def describe(running: bool, state: ReplicaState | None) -> str:
    """The replica's line in `kamioi status`: never a lag for a server that receives nothing."""
    if not running:
        return "(stopped)"
    if state is None:
        return "(not answering)"
    if not state.in_recovery:
        return "(not a standby!)"
    if not state.streaming:
        return "(standby, replication stopped: not receiving from the primary)"
    return f"(standby, lag {state.lag_s:.1f}s)"


def replica_state(url: str, timeout_s: float = 2.0) -> ReplicaState:
    """Whether the server at `url` is a standby and how far its replay is behind (kamioi.replication)."""
    with psycopg.connect(url, connect_timeout=max(1, int(timeout_s)), autocommit=True) as conn:
        row = conn.execute(REPLICA_LAG_SQL).fetchone()
        assert row is not None
        streaming = conn.execute(STREAMING_SQL).fetchone()
    return ReplicaState(
        in_recovery=bool(row[0]), lag_s=max(0.0, float(row[1])), streaming=bool(streaming and streaming[0])
    )


@dataclass
class LocalReplica:
    settings: Settings

    @property
    def server_dir(self) -> Path:
        return self.settings.state_dir / "replica"

    @property
    def data_dir(self) -> Path:
        return self.server_dir.resolve() / "data"

    @property
    def log_file(self) -> Path:
        return self.server_dir.resolve() / "postgres.log"

    @property
    def slot(self) -> str:
        """Per port, so a second standby of the same primary (a drill's) never takes this one's slot."""
        return f"kamioi_replica_{self.settings.replica_port}"

    @property
    def superuser_url(self) -> str:
        return (
            f"postgresql://{SUPERUSER}:{LOCAL_PASSWORD}@{self.settings.db_host}:{self.settings.replica_port}/postgres"
        )

    def is_running(self) -> bool:
        return cluster_running(self.data_dir)

    def state(self) -> ReplicaState | None:
        try:
            return replica_state(self.superuser_url)
        except psycopg.OperationalError:
            return None

    def initialize(self) -> bool:
        """Take the base backup once (the primary must be up). Returns whether it was taken now."""
        if (self.data_dir / "PG_VERSION").exists():
            return False
        self._reset_slot()
        prepare_server_dir(self.server_dir)
        primary = (
            f"host={self.settings.db_host} port={self.settings.db_port} user={SUPERUSER} password={LOCAL_PASSWORD}"
        )
        run(
            as_server_user([
                str(PG_BIN / "pg_basebackup"), "-D", str(self.data_dir), "-d", primary,
                "-X", "stream", "-S", self.slot, "-R", "-c", "fast",
            ]),
            what="pg_basebackup of the primary for the replica",
        )  # fmt: skip
        conf = "\n".join(f"{key} = {value}" for key, value in STANDBY_SETTINGS.items())
        with (self.data_dir / "postgresql.conf").open("a") as handle:
            handle.write(f"\n# kamioi local read replica\nport = {self.settings.replica_port}\n{conf}\n")
        return True

    def _reset_slot(self) -> None:
        """A fresh slot for a fresh standby (an old one would hold WAL for a data dir that is gone)."""
        self._drop_slot()
        with psycopg.connect(self.settings.superuser_db_url, autocommit=True) as conn:
            conn.execute("select pg_create_physical_replication_slot(%s, true)", (self.slot,))
            # A standby stopped for long must not fill the primary's disk: past this it needs a new backup.
            conn.execute("alter system set max_slot_wal_keep_size = '8GB'")
            conn.execute("select pg_reload_conf()")

    def start(self) -> None:
        if self.is_running():
            return
        ensure_port_free(self.settings.db_host, self.settings.replica_port, "read replica", "KAMIOI_REPLICA_PORT")
        run(
            pg_ctl(
                "start", "-w", "-t", "60", "-D", str(self.data_dir), "-l", str(self.log_file),
                "-o", f"-p {self.settings.replica_port}",
            ),
            what=f"starting the read replica (log: {self.log_file})",
        )  # fmt: skip
        wait_until(lambda: self.state() is not None, 30, "the read replica to accept connections")
        state = self.state()
        if state is None or not state.in_recovery:
            raise StackError(f"the server on port {self.settings.replica_port} is not a standby; run `kamioi reset`")

    def stop(self, mode: str = "fast") -> bool:
        if not self.is_running():
            return False
        run(pg_ctl("stop", "-w", "-m", mode, "-D", str(self.data_dir)), what="stopping the read replica")
        return True

    def _drop_slot(self) -> None:
        with psycopg.connect(self.settings.superuser_db_url, autocommit=True) as conn:
            conn.execute(
                "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = %s",
                (self.slot,),
            )

    def remove(self) -> None:
        """Delete the standby, and its slot when the primary is up (`kamioi reset` deletes both anyway)."""
        self.stop()
        with contextlib.suppress(psycopg.OperationalError):
            self._drop_slot()
        remove_server_dir(self.server_dir)
