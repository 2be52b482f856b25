"""render.yaml, the seeds' host blueprint, against the code it deploys: its services run commands that
exist, every variable it names is a setting the product reads, each service gets every setting it
needs to run hosted, and no secret has a committed value."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from api.main import create_app
from jobs.__main__ import build_parser
from kamioi.settings import PROJECT_ROOT, Settings

BLUEPRINT = PROJECT_ROOT / "render.yaml"
# Read by the platform or a library, not by Settings.
PLATFORM_VARIABLES = {"PYTHON_VERSION", "PROMETHEUS_MULTIPROC_DIR"}
# What a hosted deployment must set (the local defaults point at the local stack, or leave a feature off).
BOTH = {
    "SUPABASE_URL", "SUPABASE_SECRET_KEY", "DATABASE_URL", "UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN",
    "IMPORT_BUCKET", "EXPORT_BUCKET",
}  # fmt: skip
NEEDS = {
    "kamioi-api": BOTH | {"API_LISTEN_DATABASE_URL", "SUPABASE_JWKS_URL", "API_CORS_ORIGINS", "API_CURSOR_SECRET"},
    "kamioi-worker": BOTH
    | {"SMTP_HOST", "SMTP_PORT", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_STARTTLS", "MAIL_FROM", "MAIL_LINK_BASE_URL"}
    | {"LLM_API_KEY", "LLM_BASE_URL", "LLM_MODEL", "PRICE_API_KEY"},
}
SECRET = re.compile(r"KEY|SECRET|PASSWORD|TOKEN|DATABASE_URL|REPLICA_URL|USERNAME")


@pytest.fixture(scope="module")
def blueprint() -> dict[str, Any]:
    loaded = yaml.safe_load(BLUEPRINT.read_text())
    assert isinstance(loaded, dict)
    return loaded


def env_of(blueprint: dict[str, Any], service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    groups = {group["name"]: group["envVars"] for group in blueprint["envVarGroups"]}
    variables: dict[str, dict[str, Any]] = {}
    for item in service["envVars"]:
        for var in groups[item["fromGroup"]] if "fromGroup" in item else [item]:
            variables[var["key"]] = var
    return variables


def service(blueprint: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [s for s in blueprint["services"] if s["name"] == name]
    assert len(found) == 1, name
    return found[0]


def test_a_web_service_and_a_background_worker(blueprint: dict[str, Any]) -> None:
    kinds = {s["name"]: (s["type"], s["runtime"]) for s in blueprint["services"]}
    assert kinds == {"kamioi-api": ("web", "python"), "kamioi-worker": ("worker", "python")}


def test_builds_install_the_lock_without_dev_tools(blueprint: dict[str, Any]) -> None:
    pinned_uv = re.search(r'"uv==([\d.]+)"', (PROJECT_ROOT / "pyproject.toml").read_text())
    assert pinned_uv is not None
    for s in blueprint["services"]:
        assert s["buildCommand"] == f"pip install uv=={pinned_uv[1]} && uv sync --locked --no-dev", s["name"]


async def test_the_api_command_serves_the_app_and_its_health_check(
    blueprint: dict[str, Any], settings: Settings
) -> None:
    api = service(blueprint, "kamioi-api")
    command = shlex.split(api["startCommand"].split("exec ", 1)[1])
    assert command[0] == ".venv/bin/uvicorn" and command[1] == "api.main:app"
    assert command[command.index("--port") + 1] == "$PORT"
    assert command[command.index("--host") + 1] == "0.0.0.0"  # noqa: S104 (the host's port mapping serves it)
    # The health check answers without any dependency (no lifespan here: no database, no cache).
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://render") as client:
        assert (await client.get(api["healthCheckPath"])).status_code == 200
    assert env_of(blueprint, api)["PROMETHEUS_MULTIPROC_DIR"]["value"] in api["startCommand"]


def test_the_worker_command_parses(blueprint: dict[str, Any]) -> None:
    command = shlex.split(service(blueprint, "kamioi-worker")["startCommand"].removeprefix("exec "))
    assert command[:3] == [".venv/bin/python", "-m", "jobs"]
    args = build_parser().parse_args(command[3:])
    assert args.command == "worker" and args.concurrency >= 1


def test_every_variable_is_a_setting_and_every_needed_setting_is_given(blueprint: dict[str, Any]) -> None:
    aliases = {field.alias for field in Settings.model_fields.values()}
    for name, needed in NEEDS.items():
        variables = env_of(blueprint, service(blueprint, name))
        unknown = set(variables) - aliases - PLATFORM_VARIABLES
        assert not unknown, f"{name} sets variables nothing reads: {unknown}"
        assert not needed - set(variables), f"{name} lacks {needed - set(variables)}"


def test_no_secret_is_committed_and_the_values_are_valid(blueprint: dict[str, Any]) -> None:
    committed: dict[str, str] = {}
    for s in blueprint["services"]:
        for key, var in env_of(blueprint, s).items():
            if SECRET.search(key):
                assert var.get("sync") is False or var.get("generateValue") is True, f"{key} has a committed value"
            elif "value" in var:
                committed[key] = str(var["value"])
    python = committed.pop("PYTHON_VERSION")
    requires = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert python.startswith(requires.removeprefix(">=")), (python, requires)
    committed.pop("PROMETHEUS_MULTIPROC_DIR")
    Settings.model_validate(committed)  # the committed values pass the settings' own validation
    assert (
        Path(committed["IMPORT_BUCKET"]).name
        in tomllib.loads((PROJECT_ROOT / "supabase" / "config.toml").read_text())["storage"]["buckets"]
    )
