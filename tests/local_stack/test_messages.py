"""What the operator reads: the replica's status line, counts in the right number, help on every
stack command."""

from __future__ import annotations

import pytest

from cli.main import build_parser
from kamioi.settings import Settings
from local_stack.replica import ReplicaState, describe, replica_state


@pytest.mark.parametrize(
    ("running", "state", "line"),
    [
        (False, None, "(stopped)"),
        (True, None, "(not answering)"),
        (True, ReplicaState(in_recovery=False, lag_s=0.0), "(not a standby!)"),
        (True, ReplicaState(in_recovery=True, lag_s=0.0, streaming=False), "(standby, replication stopped"),
        (True, ReplicaState(in_recovery=True, lag_s=2.25), "(standby, lag 2.2s)"),
    ],
)
def test_the_replica_line_shows_a_lag_only_while_it_streams(
    running: bool, state: ReplicaState | None, line: str
) -> None:
    assert describe(running, state).startswith(line)


def test_the_stacks_replica_streams(settings: Settings) -> None:
    url = settings.local_replica_url.replace("postgres:postgres@", "supabase_admin:postgres@")
    state = replica_state(url)
    assert state.in_recovery and state.streaming


@pytest.mark.parametrize("command", ["up", "stop", "status", "eval", "token", "jobs", "import"])
def test_every_command_explains_itself(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    description = text.split("options:")[0].split("]", 1)[-1] if command != "import" else text
    assert len(description.split()) >= 5 or command == "import", text
    if command == "token":
        assert "--as {admin,user} admin: admin@kamioi.local" in text
