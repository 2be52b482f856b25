"""How far a streaming standby is behind, in one query (the stack's status and the API's read routing).

Lag is the age of the last replayed commit while received WAL still waits to be replayed, and 0 once
replay has caught up with what arrived: an idle primary sends no commits, so the age alone would
grow forever on a standby that is perfectly current. A standby that has WAL waiting but has replayed
no commit since it started counts its lag from its start (a lower bound), not as 0.
"""

REPLICA_LAG_SQL = (
    "select pg_is_in_recovery() as in_recovery,"
    " case when pg_last_wal_receive_lsn() is null or pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()"
    " then 0 else extract(epoch from now() - coalesce(pg_last_xact_replay_timestamp(), pg_postmaster_start_time()))"
    " end::float8 as lag_s"
)
