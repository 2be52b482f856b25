"""The unmodified upstash_redis.Redis (sync, base64 by default) against the proxy."""

import pytest
from upstash_redis import Redis
from upstash_redis.errors import UpstashError

AWKWARD_STRINGS = ["", "OK", "héllo wörld 🌍", "line one\nline two\r\n", "say \"hi\" \\ 'there'", "T0s=", "0"]


@pytest.mark.parametrize("value", AWKWARD_STRINGS)
def test_strings_round_trip(redis: Redis, key: str, value: str) -> None:
    assert redis.set(key, value)
    assert redis.get(key) == value


def test_numbers_come_back_as_strings_and_missing_keys_as_none(redis: Redis, key: str) -> None:
    redis.set(f"{key}:int", 42)
    redis.set(f"{key}:float", 2.5)
    assert redis.get(f"{key}:int") == "42"
    assert redis.get(f"{key}:float") == "2.5"
    assert redis.get(f"{key}:missing") is None
    assert redis.mget(f"{key}:int", f"{key}:missing") == ["42", None]


def test_incr_and_decr(redis: Redis, key: str) -> None:
    assert redis.incr(key) == 1
    assert redis.incrby(key, 10) == 11
    assert redis.decr(key) == 10


def test_expire_and_ttl(redis: Redis, key: str) -> None:
    redis.set(key, "v")
    assert redis.ttl(key) == -1
    assert redis.expire(key, 100) is True
    assert 0 < redis.ttl(key) <= 100
    assert redis.ttl(f"{key}:missing") == -2


def test_hash_commands(redis: Redis, key: str) -> None:
    assert redis.hset(key, values={"name": "Starbucks", "ticker": "SBUX", "note": "a\nb"}) == 3
    assert redis.hget(key, "ticker") == "SBUX"
    assert redis.hgetall(key) == {"name": "Starbucks", "ticker": "SBUX", "note": "a\nb"}
    assert redis.hincrby(key, "hits", 2) == 2


def test_list_commands(redis: Redis, key: str) -> None:
    assert redis.rpush(key, "a", "OK", "") == 3
    assert redis.lpush(key, "z") == 4
    assert redis.lrange(key, 0, -1) == ["z", "a", "OK", ""]
    assert redis.lpop(key) == "z"


def test_set_commands(redis: Redis, key: str) -> None:
    assert redis.sadd(key, "AAPL", "MSFT", "AAPL") == 2
    assert sorted(redis.smembers(key)) == ["AAPL", "MSFT"]
    assert redis.sismember(key, "MSFT") is True


def test_pipeline_returns_one_result_per_command(redis: Redis, key: str) -> None:
    pipeline = redis.pipeline()
    pipeline.set(key, "v")
    pipeline.incr(f"{key}:n")
    pipeline.get(key)
    pipeline.get(f"{key}:missing")
    assert pipeline.exec() == [True, 1, "v", None]


def test_multi_exec_runs_atomically(redis: Redis, key: str) -> None:
    transaction = redis.multi()
    transaction.set(key, "v")
    transaction.incrby(f"{key}:n", 5)
    transaction.lrange(f"{key}:missing", 0, -1)
    assert transaction.exec() == [True, 5, []]


def test_wrong_token_is_refused(proxy_url: str, proxy_token: str, key: str) -> None:
    with (
        Redis(url=proxy_url, token=f"{proxy_token}x") as intruder,
        pytest.raises(UpstashError, match="Unauthorized"),
    ):
        intruder.get(key)


def test_redis_errors_raise(redis: Redis, key: str) -> None:
    redis.set(key, "not a number")
    with pytest.raises(UpstashError, match="ERR value is not an integer"):
        redis.incr(key)
    with pytest.raises(UpstashError, match="WRONGTYPE"):
        redis.hget(key, "field")


def test_plain_encoding_round_trips(proxy_url: str, proxy_token: str, key: str) -> None:
    with Redis(url=proxy_url, token=proxy_token, rest_encoding=None) as plain:
        assert plain.set(key, 'héllo\n"x"')
        assert plain.get(key) == 'héllo\n"x"'
        assert plain.incr(f"{key}:n") == 1
