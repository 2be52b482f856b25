"""Lua scripts written for Upstash, made runnable on a plain redis-server.

``upstash-ratelimit`` starts its scripts with ``#!lua flags=allow-key-locking``; that flag exists
only on Upstash and Redis 7 rejects the whole script ("Unexpected flag in script shebang"). The
flag is dropped before the script reaches Redis. That changes the script's SHA1, so the SHA the
client computed is mapped to the one Redis knows (EVALSHA, SCRIPT EXISTS) and back (SCRIPT LOAD).
"""

import hashlib

from local_stack.standins.upstash_proxy.commands import Command
from local_stack.standins.upstash_proxy.replies import RedisReply

UPSTASH_ONLY_SCRIPT_FLAGS = frozenset({b"allow-key-locking"})


def strip_upstash_flags(script: bytes) -> bytes:
    """The script with Upstash-only flags removed from its ``#!lua flags=...`` line."""
    if not script.startswith(b"#!"):
        return script
    shebang, newline, body = script.partition(b"\n")
    words = [_without_upstash_flags(word) for word in shebang.split(b" ")]
    return b" ".join(words) + newline + body


def _without_upstash_flags(word: bytes) -> bytes:
    if not word.startswith(b"flags="):
        return word
    flags = word.removeprefix(b"flags=").split(b",")
    return b"flags=" + b",".join(flag for flag in flags if flag not in UPSTASH_ONLY_SCRIPT_FLAGS)


def _sha1_hex(script: bytes) -> bytes:
    return hashlib.sha1(script, usedforsecurity=False).hexdigest().encode()


class ScriptRegistry:
    """Rewrites script commands on the way in and SCRIPT LOAD replies on the way out."""

    def __init__(self) -> None:
        # One entry per distinct rewritten script text: a handful in practice.
        self._redis_sha: dict[bytes, bytes] = {}
        self._client_sha: dict[bytes, bytes] = {}

    def prepare(self, command: Command) -> Command:
        name = command[0].upper()
        if name in (b"EVAL", b"EVAL_RO") and len(command) > 1:
            return [command[0], self._register(command[1]), *command[2:]]
        if name in (b"EVALSHA", b"EVALSHA_RO") and len(command) > 1:
            return [command[0], self._translate(command[1]), *command[2:]]
        if name == b"SCRIPT" and len(command) > 2:
            subcommand = command[1].upper()
            if subcommand == b"LOAD":
                return [*command[:2], self._register(command[2]), *command[3:]]
            if subcommand == b"EXISTS":
                return [*command[:2], *(self._translate(sha) for sha in command[2:])]
        return command

    def present(self, command: Command, reply: RedisReply) -> RedisReply:
        """SCRIPT LOAD answers with the SHA1 of the script the client sent, as Upstash does."""
        if isinstance(reply, bytes) and [word.upper() for word in command[:2]] == [b"SCRIPT", b"LOAD"]:
            return self._client_sha.get(reply, reply)
        return reply

    def _register(self, script: bytes) -> bytes:
        runnable = strip_upstash_flags(script)
        if runnable != script:
            client_sha, redis_sha = _sha1_hex(script), _sha1_hex(runnable)
            self._redis_sha[client_sha] = redis_sha
            self._client_sha[redis_sha] = client_sha
        return runnable

    def _translate(self, sha: bytes) -> bytes:
        return self._redis_sha.get(sha.lower(), sha)
