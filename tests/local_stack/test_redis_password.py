"""The stack's own redis-server (the one `kamioi up` runs) takes only clients that know its password."""

import os
import subprocess

import pytest
import redis

from kamioi.settings import Settings
from local_stack.redis_server import LocalRedis


def test_the_stack_redis_refuses_clients_without_the_password(settings: Settings) -> None:
    local = LocalRedis(settings)
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=settings.redis_port, socket_timeout=5).ping()
    with redis.Redis.from_url(local.url, socket_timeout=5) as client:
        assert client.ping()


def test_the_password_is_in_no_command_line(settings: Settings) -> None:
    password = LocalRedis(settings).password
    command_lines = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert password not in command_lines
    assert os.stat(LocalRedis(settings).config_file).st_mode & 0o077 == 0
