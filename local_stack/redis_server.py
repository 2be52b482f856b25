"""A private redis-server for the cache and rate limits (the Upstash REST proxy fronts it).

It requires the stack's password (``requirepass``, generated once with the other keys; REDIS_URL in .env
carries it), so nothing else on the machine can reach the data or the server behind the proxy's back.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import redis

from kamioi.settings import Settings
from local_stack.keys import ensure_keys
from local_stack.processes import StackError, ensure_port_free, read_pid, run, stop_pid, wait_until


@dataclass
class LocalRedis:
    settings: Settings

    @property
    def dir(self) -> Path:
        return self.settings.state_dir / "redis"

    @property
    def pid_file(self) -> Path:
        return self.dir / "redis.pid"

    @property
    def config_file(self) -> Path:
        return self.dir / "redis.conf"

    @property
    def password(self) -> str:
        return ensure_keys(self.settings.keys_dir).redis_password

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.settings.redis_port}/0"

    @property
    def display_url(self) -> str:
        """The URL without its password, for status lines."""
        return f"redis://127.0.0.1:{self.settings.redis_port}/0"

    def is_running(self) -> bool:
        return read_pid(self.pid_file) is not None

    def ping(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def start(self) -> bool:
        """Starts redis-server unless it runs and takes the password; True when it (re)started."""
        if self.is_running():
            if self.ping():
                return False
            # Started before it required a password (or with another one): a cache, so a restart is free.
            self.stop()
        binary = shutil.which("redis-server")
        if binary is None:
            raise StackError("redis-server is not installed; run `make dev` to install it")
        ensure_port_free("127.0.0.1", self.settings.redis_port, "redis-server", "KAMIOI_REDIS_PORT")
        self.dir.mkdir(parents=True, exist_ok=True)
        # The password goes in a file only the owner reads: on the command line every `ps` would show it.
        self.config_file.write_text(f"requirepass {self.password}\n")
        self.config_file.chmod(0o600)
        # A cache: nothing is persisted, so a restart is a cold cache, never stale data.
        run(
            [
                binary, str(self.config_file), "--port", str(self.settings.redis_port), "--bind", "127.0.0.1",
                "--daemonize", "yes", "--pidfile", str(self.pid_file), "--dir", str(self.dir),
                "--logfile", str(self.settings.state_dir / "logs" / "redis.log"),
                "--save", "", "--appendonly", "no", "--maxmemory", "512mb",
                "--maxmemory-policy", "allkeys-lru",
            ],
            what="starting redis-server",
        )
        wait_until(self.ping, 15, "redis-server to answer PING")
        return True

    def stop(self) -> bool:
        return stop_pid(self.pid_file)
