"""Request bodies to Redis commands, and Upstash-only script flags (pure functions)."""

import pytest

from local_stack.standins.upstash_proxy.commands import InvalidRequest, parse_command, parse_commands, path_command
from local_stack.standins.upstash_proxy.scripts import strip_upstash_flags


def test_numbers_keep_the_text_the_client_sent() -> None:
    body = b'["ZADD", "k", 1.50, "m", 10, 1e3, true, false]'
    assert parse_command(body) == [b"ZADD", b"k", b"1.50", b"m", b"10", b"1e3", b"true", b"false"]


def test_strings_are_utf8_encoded() -> None:
    assert parse_command('["SET", "k", "é\\n\\"q\\"", ""]'.encode()) == [b"SET", b"k", 'é\n"q"'.encode(), b""]


def test_pipeline_body_must_be_a_list_of_commands() -> None:
    assert parse_commands(b'[["GET", "a"], ["GET", "b"]]') == [[b"GET", b"a"], [b"GET", b"b"]]
    with pytest.raises(InvalidRequest):
        parse_commands(b'["GET", "a"]')


def test_path_segments_are_percent_decoded_bytes() -> None:
    assert path_command(b"/set/a%2Fb/%FF", b"") == [b"set", b"a/b", b"\xff"]
    assert path_command(b"/set/k", b"body") == [b"set", b"k", b"body"]


@pytest.mark.parametrize(
    ("script", "runnable"),
    [
        (b"#!lua flags=allow-key-locking\nreturn 1", b"#!lua flags=\nreturn 1"),
        (b"#!lua flags=no-writes,allow-key-locking\nreturn 1", b"#!lua flags=no-writes\nreturn 1"),
        (b"#!lua name=x flags=allow-oom\nreturn 1", b"#!lua name=x flags=allow-oom\nreturn 1"),
        (b"return 'flags=allow-key-locking'", b"return 'flags=allow-key-locking'"),
    ],
)
def test_only_upstash_flags_are_stripped(script: bytes, runnable: bytes) -> None:
    assert strip_upstash_flags(script) == runnable
