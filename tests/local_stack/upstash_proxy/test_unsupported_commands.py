"""Commands Upstash documents as unavailable are refused in its error shape; the documented ones behave as documented.

Every refused command is also checked against redis-server itself (through its password), so a refusal
that let the command through anyway would fail here.
"""

import socket
from collections.abc import Iterator

import httpx
import pytest
import redis as redis_py

REFUSED = [
    ["CONFIG", "SET", "maxmemory", "1"],
    ["CONFIG", "SET", "requirepass", ""],
    ["CONFIG", "SET", "notify-keyspace-events", "KEA", "appendonly", "yes"],
    ["CONFIG", "REWRITE"],
    ["CONFIG", "RESETSTAT"],
    ["SHUTDOWN", "NOSAVE"],
    ["shutdown"],
    ["REPLICAOF", "127.0.0.1", "1"],
    ["SLAVEOF", "127.0.0.1", "1"],
    ["ACL", "SETUSER", "intruder", "on", ">secret", "~*", "+@all"],
    ["ACL", "SETUSER", "default", "nopass"],
    ["ACL", "DELUSER", "default"],
    ["ACL", "SAVE"],
    ["MIGRATE", "127.0.0.1", "1", "k", "0", "1000"],
    ["SAVE"],
    ["BGSAVE"],
    ["BGREWRITEAOF"],
    ["SWAPDB", "0", "1"],
    ["MOVE", "k", "1"],
    ["DEBUG", "SLEEP", "0"],
    ["MODULE", "LOAD", "/tmp/evil.so"],
    ["MONITOR"],
    ["SELECT", "1"],
    ["FAILOVER"],
]


@pytest.fixture
def direct(redis_port: int, redis_password: str) -> Iterator[redis_py.Redis]:
    """redis-server without the proxy, to see what a refused command would have changed."""
    client = redis_py.Redis(port=redis_port, password=redis_password, decode_responses=True)
    yield client
    client.close()


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert list(body) == ["error"] and body["error"].startswith("ERR "), body


@pytest.mark.parametrize("command", REFUSED, ids=lambda command: " ".join(command[:2]))
def test_refused_alone_in_a_pipeline_and_in_a_transaction(
    http: httpx.Client, direct: redis_py.Redis, command: list[str]
) -> None:
    before = direct.config_get("*")
    _refused(http.post("/", json=command))
    _refused(http.post("/pipeline", json=[["PING"], command]))
    _refused(http.post("/multi-exec", json=[["PING"], command]))
    _refused(http.post("/" + "/".join(command)))
    assert direct.ping()
    assert direct.config_get("*") == before
    assert direct.acl_users() == ["default"]
    replication = direct.info("replication")
    assert isinstance(replication, dict) and replication["role"] == "master"


def test_config_get_exposes_only_notify_keyspace_events(http: httpx.Client) -> None:
    assert http.post("/", json=["CONFIG", "GET", "*"]).json()["result"][0] == "notify-keyspace-events"
    assert len(http.post("/", json=["CONFIG", "GET", "*"]).json()["result"]) == 2
    assert http.post("/", json=["CONFIG", "GET", "requirepass"]).json() == {"result": []}
    assert http.post("/", json=["CONFIG", "GET", "maxmemory", "dir"]).json() == {"result": []}


def test_config_set_changes_notify_keyspace_events(http: httpx.Client, direct: redis_py.Redis) -> None:
    try:
        assert http.post("/", json=["CONFIG", "SET", "notify-keyspace-events", "Kg$"]).json() == {"result": "OK"}
        config = direct.config_get("notify-keyspace-events")
        assert isinstance(config, dict) and set(config["notify-keyspace-events"]) == set("Kg$")
    finally:
        direct.config_set("notify-keyspace-events", "")


def test_read_only_acl_subcommands_answer(http: httpx.Client) -> None:
    assert http.post("/", json=["ACL", "WHOAMI"]).json() == {"result": "default"}
    assert http.post("/", json=["ACL", "USERS"]).json() == {"result": ["default"]}


def test_flushall_and_flushdb_are_supported_and_empty_the_database(http: httpx.Client, key: str) -> None:
    # Upstash documents both (one logical database); the other tests' keys are all per-test, so none
    # of them is in flight while this one runs.
    for flush in (["FLUSHALL"], ["FLUSHDB", "ASYNC"]):
        http.post("/", json=["SET", key, "v"])
        assert http.post("/", json=flush).json() == {"result": "OK"}
        assert http.post("/", json=["DBSIZE"]).json() == {"result": 0}


def test_redis_server_refuses_clients_without_the_password(redis_port: int) -> None:
    with pytest.raises(redis_py.AuthenticationError):
        redis_py.Redis(port=redis_port).ping()
    with pytest.raises(redis_py.AuthenticationError):
        redis_py.Redis(port=redis_port, password="not-the-password").ping()
    with socket.create_connection(("127.0.0.1", redis_port), timeout=5) as raw:
        raw.sendall(b"KEYS *\r\n")
        assert raw.recv(100).startswith(b"-NOAUTH")
