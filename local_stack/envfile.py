"""The git-ignored .env that `kamioi up` writes: every URL and key the API, worker and tests read."""

from __future__ import annotations

from pathlib import Path


def write_env_file(path: Path, values: dict[str, str]) -> None:
    """Rewrite the stack's keys, keeping any other line a developer added (e.g. LLM_API_KEY)."""
    kept: list[str] = []
    if path.exists():
        for line in path.read_text().splitlines():
            key = line.split("=", 1)[0].strip()
            if line.strip() and not line.startswith("#") and key not in values:
                kept.append(line)
    lines = ["# Written by `kamioi up`; lines below the stack's keys are kept across runs."]
    lines += [f"{key}={value}" for key, value in values.items()]
    path.write_text("\n".join(lines + kept) + "\n")
    path.chmod(0o600)
