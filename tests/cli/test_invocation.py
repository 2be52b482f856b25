"""The commands `make dev` prints run as printed, from the checkout, with the venv not on PATH."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from cli.commands.demo import print_links
from kamioi.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_printed_token_commands_run_without_the_venv_on_path(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(PROJECT_ROOT)
    print_links(settings)
    out = capsys.readouterr().out
    substitutions = set(re.findall(r"\$\(([^)]*)\)", out))
    assert substitutions == {".venv/bin/kamioi token --as admin"}
    assert re.search(r"^\s+failed jobs\s+\.venv/bin/kamioi jobs", out, re.MULTILINE)
    path = "/usr/bin:/bin"  # a fresh shell: no venv activated, no ~/.local/bin
    for command in substitutions:
        result = subprocess.run(
            ["bash", "-c", command], cwd=PROJECT_ROOT, env={**os.environ, "PATH": path}, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().count(".") == 2  # a JWT
