"""The npm clients (@upstash/redis, @upstash/ratelimit) through Deno, as the Edge Functions use them."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("upstash_js_client.ts")


def test_npm_clients_work_against_the_proxy(proxy_url: str, proxy_token: str, key: str) -> None:
    deno = shutil.which("deno") or shutil.which("deno", path=str(Path(sys.executable).parent))
    if deno is None:
        pytest.skip("deno is not installed (pip install deno)")
    env = {
        **os.environ,
        "UPSTASH_REDIS_REST_URL": proxy_url,
        "UPSTASH_REDIS_REST_TOKEN": proxy_token,
        "KEY_PREFIX": key,
    }
    command = [deno, "run", "--quiet", "--no-config", "--no-lock", "--allow-net", "--allow-env", str(SCRIPT)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "all checks passed"
