"""How to call the `kamioi` console script in a line printed for the operator to paste."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def kamioi_command() -> str:
    """The script beside this interpreter (`.venv/bin/kamioi`, relative when under the current directory):
    `make dev` never puts it on PATH, so a bare `kamioi` in a printed curl line would not run."""
    script = Path(sys.executable).parent / "kamioi"
    if not script.exists():
        return "kamioi"
    try:
        return str(script.relative_to(Path(os.getcwd())))
    except ValueError:
        return str(script)
