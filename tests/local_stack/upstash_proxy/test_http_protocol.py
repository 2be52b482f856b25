"""The wire protocol itself, over raw HTTP: what the official clients rely on without showing."""

import hashlib
import time
from base64 import b64encode

import httpx
import pytest

BASE64 = {"Upstash-Encoding": "base64"}


def b64(text: str) -> str:
    return b64encode(text.encode()).decode()


def test_base64_encodes_every_string_except_a_top_level_ok(http: httpx.Client, key: str) -> None:
    assert http.post("/", json=["SET", key, "OK"], headers=BASE64).json() == {"result": "OK"}
    assert http.post("/", json=["GET", key], headers=BASE64).json() == {"result": "OK"}
    http.post("/", json=["RPUSH", f"{key}:l", "OK", "é", 7])
    reply = http.post("/", json=["LRANGE", f"{key}:l", 0, -1], headers=BASE64).json()
    assert reply == {"result": [b64("OK"), b64("é"), b64("7")]}
    assert http.post("/", json=["PING"], headers=BASE64).json() == {"result": b64("PONG")}


def test_ints_and_nulls_are_never_encoded(http: httpx.Client, key: str) -> None:
    assert http.post("/", json=["INCR", key], headers=BASE64).json() == {"result": 1}
    assert http.post("/", json=["GET", f"{key}:missing"], headers=BASE64).json() == {"result": None}
    reply = http.post("/", json=["EVAL", "return {1, 'a', {2, false}}", 0], headers=BASE64).json()
    assert reply == {"result": [1, b64("a"), [2, None]]}


def test_json_numbers_and_booleans_become_their_text(http: httpx.Client, key: str) -> None:
    commands = [["SET", f"{key}:f", 1.0], ["SET", f"{key}:b", True], ["MGET", f"{key}:f", f"{key}:b"]]
    assert http.post("/pipeline", json=commands).json()[-1] == {"result": ["1.0", "true"]}


@pytest.mark.parametrize("body", [b"not json", b'{"SET": 1}', b"[]", b'["SET", "k", null]', b'["SET", ["k"]]'])
def test_malformed_commands_are_400(http: httpx.Client, body: bytes) -> None:
    response = http.post("/", content=body)
    assert response.status_code == 400
    assert response.json()["error"].startswith("ERR ")


def test_redis_error_is_400_with_the_verbatim_message(http: httpx.Client) -> None:
    response = http.post("/", json=["NOSUCHCOMMAND", "x"])
    assert response.status_code == 400
    assert response.json()["error"].startswith("ERR unknown command 'NOSUCHCOMMAND'")
    response = http.post("/", json=["EVALSHA", "0" * 40, 0])
    assert response.json()["error"].startswith("NOSCRIPT ")


def test_commands_that_would_leak_connection_state_are_refused(http: httpx.Client) -> None:
    for command in (["SELECT", 1], ["multi"], ["SUBSCRIBE", "ch"], ["CLIENT", "REPLY", "OFF"]):
        response = http.post("/", json=command)
        assert response.status_code == 400
        assert response.json()["error"].startswith("ERR Command is not available")


def test_pipeline_reports_errors_per_command(http: httpx.Client, key: str) -> None:
    commands = [["SET", key, "x"], ["INCR", key], ["GET", key]]
    assert http.post("/pipeline", json=commands, headers=BASE64).json() == [
        {"result": "OK"},
        {"error": "ERR value is not an integer or out of range"},
        {"result": b64("x")},
    ]


def test_multi_exec_keeps_runtime_errors_per_command(http: httpx.Client, key: str) -> None:
    commands = [["SET", key, "x"], ["HGET", key, "f"], ["APPEND", key, "y"]]
    assert http.post("/multi-exec", json=commands).json() == [
        {"result": "OK"},
        {"error": "WRONGTYPE Operation against a key holding the wrong kind of value"},
        {"result": 2},
    ]


def test_multi_exec_that_cannot_queue_runs_nothing(http: httpx.Client, key: str) -> None:
    response = http.post("/multi-exec", json=[["SET", key, "x"], ["NOSUCHCOMMAND"]])
    assert response.status_code == 400
    assert response.json()["error"].startswith("EXECABORT Transaction discarded because of: ERR unknown")
    assert http.post("/", json=["EXISTS", key]).json() == {"result": 0}


def test_path_form_is_binary_safe(http: httpx.Client, key: str) -> None:
    assert http.get(f"/set/{key}%2Fa/b%20c%0A").json() == {"result": "OK"}
    assert http.get(f"/GET/{key}%2Fa").json() == {"result": "b c\n"}
    assert http.post(f"/set/{key}:body", content="posted value").json() == {"result": "OK"}
    assert http.get(f"/get/{key}:body").json() == {"result": "posted value"}


def test_upstash_only_script_flags_are_accepted_and_shas_match_the_client(http: httpx.Client) -> None:
    script = "#!lua flags=allow-key-locking,no-writes\nreturn ARGV[1]"
    client_sha = hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()
    assert http.post("/", json=["SCRIPT", "LOAD", script]).json() == {"result": client_sha}
    assert http.post("/", json=["EVALSHA", client_sha, 0, "hi"]).json() == {"result": "hi"}
    assert http.post("/", json=["SCRIPT", "EXISTS", client_sha.upper()]).json() == {"result": [1]}
    assert http.post("/", json=["EVAL", script, 0, "again"]).json() == {"result": "again"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic cHJveHk="}, {"Authorization": "Bearer"}],
)
def test_requests_without_the_token_are_401(proxy_url: str, headers: dict[str, str]) -> None:
    for path, body in (("/", ["PING"]), ("/pipeline", [["PING"]]), ("/multi-exec", [["PING"]])):
        response = httpx.post(f"{proxy_url}{path}", json=body, headers=headers)
        assert (response.status_code, response.json()) == (401, {"error": "Unauthorized"})
    assert httpx.get(f"{proxy_url}/get/x", headers=headers).status_code == 401


def test_token_query_parameter_is_accepted(proxy_url: str, proxy_token: str) -> None:
    response = httpx.get(f"{proxy_url}/ping", params={"_token": proxy_token})
    assert response.json() == {"result": "PONG"}


def test_healthz_needs_no_token(proxy_url: str) -> None:
    response = httpx.get(f"{proxy_url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "redis": "PONG"}


def test_redis_down_answers_503_quickly(proxy_without_redis_url: str, proxy_token: str) -> None:
    auth = {"Authorization": f"Bearer {proxy_token}"}
    started = time.monotonic()
    single = httpx.post(proxy_without_redis_url, json=["GET", "k"], headers=auth)
    pipeline = httpx.post(f"{proxy_without_redis_url}/pipeline", json=[["GET", "k"]], headers=auth)
    health = httpx.get(f"{proxy_without_redis_url}/healthz")
    assert time.monotonic() - started < 2
    assert [single.status_code, pipeline.status_code, health.status_code] == [503, 503, 503]
    assert single.json()["error"].startswith("ERR redis unavailable")
    assert health.json()["status"] == "unavailable"
