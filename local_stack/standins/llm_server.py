"""A real local HTTP server speaking the OpenAI chat completions protocol, for tests and fault drills.

It reads the merchant batch from the user message and answers from a small built-in table; its
failure mode can be switched at runtime so tests can watch a client retry, time out and validate.

    python -m local_stack.standins.llm_server --port 8765 --mode good
    curl -X POST localhost:8765/__mode -d '{"mode": "rate_limit_then_ok", "fail_first": 3}'
    curl localhost:8765/__stats

Base URL for clients: http://HOST:PORT/v1. Port 0 picks a free port; the first line on stdout says
which.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, get_args

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from kamioi.mapping.prompt import extract_batch
from local_stack.standins import server

Mode = Literal[
    "good",  # every merchant answered
    "malformed_json",  # the reply content is cut-off JSON
    "rate_limit_then_ok",  # the first `fail_first` requests get 429 with Retry-After, then good
    "server_error",  # 500 on every request
    "server_error_then_ok",  # the first `fail_first` requests get 503, then good
    "slow",  # sleeps `slow_s` before a good answer (longer than a client's timeout)
    "hallucinate",  # a made-up ticker for every merchant, claiming to be verified
    "partial",  # every other merchant dropped, plus an item for a key nobody asked about
    "invalid_items",  # every other item breaks the schema (bad category, confidence, ticker, reason)
    "bad_request",  # 400 on every request
]
MODES: tuple[str, ...] = get_args(Mode)

MADE_UP_TICKER = "ZZQX"
# Descriptors the naive table above maps to the brand inside them: (descriptor, brand ticker, the guard
# strikes the ticker). A venue strikes it; a plumber named Target only loses approval.
TRAP_DESCRIPTORS: tuple[tuple[str, str, bool], ...] = (
    ("CAPITAL ONE ARENA WASHINGTON DC", "COF", True),
    ("AMERICAN AIRLINES CENTER DALLAS TX", "AAL", True),
    ("TARGET FIELD MINNEAPOLIS MN", "TGT", True),
    ("TARGET PLUMBING LLC MINNEAPOLIS MN", "TGT", False),
)
UNASKED_KEY = "not-asked-merchant"

# Word found in a merchant's text -> (company, ticker, category). Matching is naive on purpose: like a
# careless model it names the brand inside a longer name (CAPITAL ONE ARENA -> Capital One, TARGET
# PLUMBING -> Target, AMERICAN AIRLINES CENTER -> American Airlines), so tests can watch the resolver's
# partial-name guard catch it (TRAP_DESCRIPTORS).
KNOWN_MERCHANTS: dict[str, tuple[str, str, str]] = {
    "capital one": ("Capital One Financial", "COF", "LOAN_PAYMENTS"),
    "american airlines": ("American Airlines Group", "AAL", "TRAVEL"),
    "starbucks": ("Starbucks Corporation", "SBUX", "FOOD_AND_DRINK"),
    "mcdonald": ("McDonald's Corporation", "MCD", "FOOD_AND_DRINK"),
    "chipotle": ("Chipotle Mexican Grill", "CMG", "FOOD_AND_DRINK"),
    "taco bell": ("Yum! Brands", "YUM", "FOOD_AND_DRINK"),
    "amazon": ("Amazon.com, Inc.", "AMZN", "GENERAL_MERCHANDISE"),
    "walmart": ("Walmart Inc.", "WMT", "GENERAL_MERCHANDISE"),
    "target": ("Target Corporation", "TGT", "GENERAL_MERCHANDISE"),
    "costco": ("Costco Wholesale Corporation", "COST", "GENERAL_MERCHANDISE"),
    "apple": ("Apple Inc.", "AAPL", "GENERAL_MERCHANDISE"),
    "nike": ("Nike, Inc.", "NKE", "GENERAL_MERCHANDISE"),
    "uber": ("Uber Technologies", "UBER", "TRANSPORTATION"),
    "lyft": ("Lyft, Inc.", "LYFT", "TRANSPORTATION"),
    "netflix": ("Netflix, Inc.", "NFLX", "ENTERTAINMENT"),
    "spotify": ("Spotify Technology", "SPOT", "ENTERTAINMENT"),
    "home depot": ("The Home Depot", "HD", "HOME_IMPROVEMENT"),
    "delta air": ("Delta Air Lines", "DAL", "TRAVEL"),
    "marriott": ("Marriott International", "MAR", "TRAVEL"),
    "cvs": ("CVS Health Corporation", "CVS", "MEDICAL"),
    "verizon": ("Verizon Communications", "VZ", "RENT_AND_UTILITIES"),
    "berkshire": ("Berkshire Hathaway", "BRK.B", "GENERAL_SERVICES"),
}

# How `invalid_items` breaks an item, in turn.
SCHEMA_BREAKS: tuple[dict[str, Any], ...] = (
    {"category": "SHOPPING"},
    {"confidence": 1.7},
    {"ticker": "not a ticker"},
    {"reason": "x" * 300},
)


@dataclass
class FakeState(server.FaultState):
    last_body: Any = None
    last_authorization: str | None = None

    def stats(self) -> dict[str, Any]:
        return super().stats() | {"last_body": self.last_body, "last_authorization": self.last_authorization}


class LLMModeChange(server.ModeChange):
    mode: Mode


def answer(item: dict[str, Any]) -> dict[str, Any]:
    """What a well-behaved model says about one merchant of the batch."""
    text = " ".join(
        [str(item.get("merchant_key", "")), str(item.get("display_name", ""))]
        + [str(sample) for sample in item.get("samples", [])]
    ).lower()
    key = str(item.get("merchant_key", ""))
    for word, (company, ticker, category) in KNOWN_MERCHANTS.items():
        if re.search(rf"\b{re.escape(word)}\b", text):
            return {
                "merchant_key": key,
                "company": company,
                "ticker": ticker,
                "category": category,
                "confidence": 0.95,
                "reason": f"Descriptor names {company}.",
            }
    return {
        "merchant_key": key,
        "company": str(item.get("display_name") or key),
        "ticker": None,
        "category": "GENERAL_MERCHANDISE",
        "confidence": 0.3,
        "reason": "No publicly listed company recognized.",
    }


def reply_content(mode: str, batch: list[dict[str, Any]]) -> str:
    """The assistant message content for a request that is answered (status 200)."""
    answers = [answer(item) for item in batch]
    if mode == "hallucinate":
        answers = [{**a, "ticker": MADE_UP_TICKER, "confidence": 0.9, "ticker_verified": True} for a in answers]
    elif mode == "partial":
        answers = [*answers[::2], {**answer({"merchant_key": UNASKED_KEY}), "confidence": 0.99}]
    elif mode == "invalid_items":
        answers = [
            {**a, **SCHEMA_BREAKS[(index // 2) % len(SCHEMA_BREAKS)]} if index % 2 else a
            for index, a in enumerate(answers)
        ]
    content = json.dumps({"merchants": answers})
    return content[: len(content) // 2] if mode == "malformed_json" else content


def completion(model: str, prompt_chars: int, content: str) -> dict[str, Any]:
    """A chat completion body with a plausible usage block (about 4 characters per token)."""
    prompt_tokens = max(1, prompt_chars // 4)
    completion_tokens = max(1, len(content) // 4)
    return {
        "id": f"chatcmpl-fake-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def api_error(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status, headers=headers)


async def respond(state: FakeState, body: Any, request_no: int) -> JSONResponse:
    mode = state.mode
    if failure := state.scripted_failure(request_no):
        status, headers = failure
        if status == 429:
            return api_error(429, "Rate limit reached", "rate_limit_exceeded", headers)
        return api_error(status, "The server had an error", "server_error", headers)
    if mode == "bad_request":
        return api_error(400, "Invalid request", "invalid_request_error")
    try:
        messages = body["messages"]
        user = next(m["content"] for m in messages if m["role"] == "user")
        batch = extract_batch(user)
    except (KeyError, TypeError, StopIteration, ValueError):
        return api_error(400, "expected a chat request carrying a merchant batch", "invalid_request_error")
    if mode == "slow":
        await asyncio.sleep(state.slow_s)
    content = reply_content(mode, batch)
    prompt_chars = sum(len(str(m.get("content", ""))) for m in messages)
    return JSONResponse(completion(str(body.get("model", "fake")), prompt_chars, content))


def create_app(mode: Mode = "good", *, fail_first: int = 2, slow_s: float = 2.0) -> FastAPI:
    app = FastAPI(title="fake OpenAI-compatible LLM")
    modes = server.FaultModes(FakeState(mode=mode, fail_first=fail_first, slow_s=slow_s), LLMModeChange)
    modes.install(app)

    async def chat_completions(request: Request) -> Response:
        async def handle(state: FakeState, request_no: int) -> Response:
            try:
                body = await request.json()
            except ValueError:
                body = None
            state.last_body = body
            state.last_authorization = request.headers.get("authorization")
            return await respond(state, body, request_no)

        return await modes.counted(handle)

    app.add_api_route("/v1/chat/completions", chat_completions, methods=["POST"])
    app.add_api_route("/chat/completions", chat_completions, methods=["POST"])
    return app


class FakeLLMControl(server.FakeServerControl):
    """Control client of this server; base_url is what an OpenAI-compatible client uses."""

    api_path = "/v1"


@contextmanager
def serve_in_thread(
    mode: Mode = "good", *, host: str = "127.0.0.1", port: int = 0, fail_first: int = 2, slow_s: float = 2.0
) -> Iterator[str]:
    """Run the server on a background thread; yields the base URL (http://host:port/v1)."""
    with server.serve_app_in_thread(
        create_app(mode, fail_first=fail_first, slow_s=slow_s), host=host, port=port
    ) as root:
        yield root + "/v1"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", choices=MODES, default="good")
    parser.add_argument("--fail-first", type=int, default=2, help="failing requests in *_then_ok modes")
    parser.add_argument("--slow-s", type=float, default=2.0, help="delay in slow mode")
    args = parser.parse_args(argv)
    sock = socket.create_server((args.host, args.port))
    print(f"fake LLM server listening on {server.socket_root(sock)}/v1", flush=True)
    server.uvicorn_server(create_app(args.mode, fail_first=args.fail_first, slow_s=args.slow_s)).run(sockets=[sock])


if __name__ == "__main__":
    main()
