"""Turns Upstash REST request bodies and paths into Redis commands (lists of byte strings)."""

import json
from urllib.parse import unquote_to_bytes

from local_stack.standins.upstash_proxy.unsupported import Unsupported, enforce

Command = list[bytes]

# Commands that change the state of the pooled connection they run on (database, transaction,
# subscription, reply mode), so one request would leak into the next. Upstash refuses them too.
CONNECTION_STATE_COMMANDS = frozenset(
    {
        b"AUTH", b"CLIENT", b"DISCARD", b"EXEC", b"HELLO", b"MONITOR", b"MULTI", b"PSUBSCRIBE",
        b"PSYNC", b"PUNSUBSCRIBE", b"QUIT", b"RESET", b"SELECT", b"SSUBSCRIBE", b"SUBSCRIBE",
        b"SUNSUBSCRIBE", b"SYNC", b"UNSUBSCRIBE", b"UNWATCH", b"WATCH",
    }
)  # fmt: skip


class InvalidRequest(ValueError):
    """The request does not hold a command the proxy may run (answered with HTTP 400)."""


def parse_command(body: bytes) -> Command:
    """One command from a JSON array such as ``["SET", "k", "v"]``."""
    return _command(_load_json(body))


def parse_commands(body: bytes) -> list[Command]:
    """The commands of a /pipeline or /multi-exec body: a JSON array of command arrays."""
    document = _load_json(body)
    if not isinstance(document, list):
        raise InvalidRequest("ERR expected a JSON array of command arrays")
    return [_command(item) for item in document]


def path_command(raw_path: bytes, body: bytes) -> Command:
    """The GET/POST path form: /set/key/value; a POST body becomes the last argument."""
    segments = [unquote_to_bytes(segment) for segment in raw_path.strip(b"/").split(b"/")]
    if body:
        segments.append(body)
    return _checked(segments)


def _load_json(body: bytes) -> object:
    try:
        # Numbers keep the exact text the client wrote: 1.0 stays "1.0", 10 stays "10".
        return json.loads(body, parse_int=str, parse_float=str, parse_constant=str)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidRequest(f"ERR request body is not valid JSON: {error}") from error


def _command(item: object) -> Command:
    if not isinstance(item, list):
        raise InvalidRequest("ERR a command must be a JSON array of strings")
    return _checked([_argument(value) for value in item])


def _argument(value: object) -> bytes:
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, str):
        try:
            return value.encode()
        except UnicodeEncodeError as error:
            raise InvalidRequest("ERR arguments must be valid unicode") from error
    raise InvalidRequest(f"ERR unsupported argument type: {type(value).__name__}")


def _checked(command: Command) -> Command:
    if not command or not command[0]:
        raise InvalidRequest("ERR empty command")
    if command[0].upper() in CONNECTION_STATE_COMMANDS:
        name = command[0].decode(errors="replace")
        raise InvalidRequest(f"ERR Command is not available: '{name}'")
    try:
        return enforce(command)
    except Unsupported as error:
        raise InvalidRequest(str(error)) from error
