"""Redis replies as Upstash REST JSON, optionally base64-encoded (``Upstash-Encoding: base64``)."""

from base64 import b64encode

from redis.exceptions import ResponseError

RedisReply = bytes | int | None | ResponseError | list["RedisReply"]
JSONValue = str | int | None | list["JSONValue"]


def encode_reply(reply: RedisReply, *, base64: bool) -> dict[str, JSONValue]:
    """``{"result": ...}`` or ``{"error": ...}`` for one command's reply.

    With base64 every string is encoded, ints and nulls are not, errors never are. A top-level
    "OK" goes out plain, as Upstash sends it: both official clients pass a bare "OK" through
    undecoded (and decode "T0s=" to "OK" too), while inside arrays they decode every string.
    """
    if isinstance(reply, ResponseError):
        return {"error": str(reply)}
    if base64 and reply == b"OK":
        return {"result": "OK"}
    return {"result": _encode_value(reply, base64=base64)}


def _encode_value(value: RedisReply, *, base64: bool) -> JSONValue:
    if isinstance(value, bytes):
        return b64encode(value).decode("ascii") if base64 else value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [_encode_value(item, base64=base64) for item in value]
    if isinstance(value, ResponseError):
        # An error nested in an array (a Lua table holding redis.error_reply): kept as its text.
        return _encode_value(str(value).encode(), base64=base64)
    return value
