"""Merchant mapping through any OpenAI-compatible chat completions endpoint.

Works with OpenAI, Groq, Together, vLLM and Ollama's /v1. Every HTTP attempt is written to the
ledger through the caller's CallRecorder. A batch the server never answered usably (after the
retries) raises ProviderUnavailable, so the caller can tell "the LLM is down" from "the LLM had no
answer for this merchant" and ask again later.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any

import httpx
from pydantic import ValidationError

from kamioi.mapping.prompt import PROMPT_VERSION, build_messages
from kamioi.mapping.providers.base import (
    CallOutcome,
    CallRecord,
    CallRecorder,
    MerchantQuery,
    MerchantSuggestion,
    ProviderUnavailable,
)

# An unparseable reply is often a one-off sampling accident; twice in a row means the batch itself
# is the problem (too long, confusing), so retrying more only burns tokens.
INVALID_OUTPUT_RETRIES = 1


@dataclass
class _Attempt:
    """What one HTTP attempt produced, before it is recorded."""

    outcome: CallOutcome
    retryable: bool = False
    retry_after_s: float | None = None
    error: str | None = None
    suggestions: list[MerchantSuggestion] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: int = 0


class OpenAICompatibleProvider:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        model: str,
        *,
        http: httpx.AsyncClient | None = None,
        known_tickers: frozenset[str] | None = None,
        max_concurrency: int = 4,
        timeout_s: float = 30,
        max_attempts: int = 5,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 20,
        price_per_1k_prompt: float = 0.0,
        price_per_1k_completion: float = 0.0,
        recorder: CallRecorder | None = None,
        name: str = "openai_compatible",
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.name = name
        self.model = model
        self.prompt_version = PROMPT_VERSION
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient()
        self._known_tickers = known_tickers
        # Caps requests in flight across all batches and callers; not held while backing off.
        self._slots = asyncio.Semaphore(max_concurrency)
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._price_per_1k_prompt = price_per_1k_prompt
        self._price_per_1k_completion = price_per_1k_completion
        self._recorder = recorder

    async def __aenter__(self) -> OpenAICompatibleProvider:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this provider created it."""
        if self._owns_http:
            await self._http.aclose()

    async def suggest_all(self, queries: Sequence[MerchantQuery], batch_size: int = 50) -> list[MerchantSuggestion]:
        """Split queries into batches and map them concurrently, within the concurrency cap."""
        batches = [queries[start : start + batch_size] for start in range(0, len(queries), batch_size)]
        results = await asyncio.gather(*(self.suggest(batch) for batch in batches))
        return [suggestion for batch_result in results for suggestion in batch_result]

    async def suggest(self, batch: Sequence[MerchantQuery]) -> list[MerchantSuggestion]:
        if not batch:
            return []
        body = {
            "model": self.model,
            "messages": build_messages(batch),
            "temperature": 0,
            "response_format": {"type": "json_object"},
        }
        requested = {query.merchant_key for query in batch}
        invalid_retries_left = INVALID_OUTPUT_RETRIES
        for attempt_no in range(1, self._max_attempts + 1):
            attempt = await self._attempt(body, requested)
            await self._record(attempt, attempt_no, merchants=len(batch))
            if attempt.outcome == "ok":
                return attempt.suggestions
            if attempt.outcome == "invalid_output" and invalid_retries_left > 0:
                invalid_retries_left -= 1
                continue
            if not attempt.retryable:
                break
            if attempt_no < self._max_attempts:
                await asyncio.sleep(
                    backoff_s(
                        attempt_no,
                        attempt.retry_after_s,
                        base_s=self._backoff_base_s,
                        max_s=self._backoff_max_s,
                    )
                )
        raise ProviderUnavailable(f"{attempt.outcome} after {attempt_no} attempt(s): {attempt.error}")

    async def _attempt(self, body: dict[str, Any], requested: set[str]) -> _Attempt:
        async with self._slots:
            started = time.perf_counter()
            try:
                response = await self._http.post(self._url, json=body, headers=self._headers, timeout=self._timeout_s)
            except httpx.TimeoutException as exc:
                attempt = _Attempt("timeout", retryable=True, error=_describe(exc))
            except httpx.TransportError as exc:
                attempt = _Attempt("http_error", retryable=True, error=_describe(exc))
            else:
                attempt = self._read_response(response, requested)
            attempt.latency_ms = round((time.perf_counter() - started) * 1000)
        return attempt

    def _read_response(self, response: httpx.Response, requested: set[str]) -> _Attempt:
        status = response.status_code
        if status == 429:
            return _Attempt(
                "rate_limited",
                retryable=True,
                retry_after_s=_retry_after_s(response),
                error=f"HTTP 429: {response.text[:200]}",
            )
        if status != 200:
            return _Attempt(
                "http_error",
                retryable=status >= 500,
                retry_after_s=_retry_after_s(response),
                error=f"HTTP {status}: {response.text[:200]}",
            )
        try:
            payload = response.json()
        except ValueError:
            return _Attempt("invalid_output", error="response body is not JSON")
        prompt_tokens, completion_tokens = _usage(payload)
        try:
            items = _merchant_items(payload)
        except ValueError as exc:
            return _Attempt(
                "invalid_output",
                error=str(exc),
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
            )
        suggestions, error = self._validated(items, requested)
        return _Attempt(
            "ok",
            error=error,
            suggestions=suggestions,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )

    def _validated(self, items: list[Any], requested: set[str]) -> tuple[list[MerchantSuggestion], str | None]:
        """Keep the first valid item per requested key; report what was dropped."""
        by_key: dict[str, MerchantSuggestion] = {}
        invalid = unrequested = 0
        for item in items:
            if not isinstance(item, dict):
                invalid += 1
                continue
            key = item.get("merchant_key")
            if key not in requested:
                unrequested += 1
                continue
            if key in by_key:
                continue
            # The model never gets to vouch for its own ticker.
            fields = {name: value for name, value in item.items() if name != "ticker_verified"}
            try:
                suggestion = MerchantSuggestion.model_validate(fields)
            except ValidationError:
                invalid += 1
                continue
            verified = (
                self._known_tickers is not None
                and suggestion.ticker is not None
                and suggestion.ticker in self._known_tickers
            )
            by_key[suggestion.merchant_key] = suggestion.model_copy(update={"ticker_verified": verified})
        error = f"dropped {invalid} invalid and {unrequested} unrequested items" if invalid or unrequested else None
        return list(by_key.values()), error

    async def _record(self, attempt: _Attempt, attempt_no: int, *, merchants: int) -> None:
        if self._recorder is None:
            return
        cost = (
            attempt.prompt_tokens * self._price_per_1k_prompt
            + attempt.completion_tokens * self._price_per_1k_completion
        ) / 1000
        await self._recorder.record(
            CallRecord(
                provider=self.name,
                model=self.model,
                prompt_version=self.prompt_version,
                merchants=merchants,
                prompt_tokens=attempt.prompt_tokens,
                completion_tokens=attempt.completion_tokens,
                cost_usd=cost,
                latency_ms=attempt.latency_ms,
                outcome=attempt.outcome,
                error=attempt.error,
                attempt=attempt_no,
            )
        )


def backoff_s(attempt_no: int, retry_after_s: float | None, *, base_s: float, max_s: float) -> float:
    """Exponential backoff with full jitter, never shorter than the server's Retry-After (itself
    capped at max_s: a server asking for an hour must not park a worker for an hour)."""
    ceiling = min(max_s, base_s * 2 ** (attempt_no - 1))
    return max(random.uniform(0, ceiling), min(retry_after_s or 0.0, max_s))


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _retry_after_s(response: httpx.Response) -> float | None:
    """Retry-After as seconds; the header may be a number of seconds or an HTTP date."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _usage(payload: Any) -> tuple[int, int]:
    usage = payload.get("usage") if isinstance(payload, dict) else None
    if not isinstance(usage, dict):
        return 0, 0
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return (prompt if isinstance(prompt, int) else 0, completion if isinstance(completion, int) else 0)


def _merchant_items(payload: Any) -> list[Any]:
    """The `merchants` list from a chat completion; ValueError when the reply is unusable."""
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise ValueError("completion has no message content") from exc
    if not isinstance(content, str):
        raise ValueError("message content is not text")
    try:
        reply = json.loads(content)
    except json.JSONDecodeError as exc:
        raise ValueError(f"message content is not JSON: {exc}") from exc
    items = reply.get("merchants") if isinstance(reply, dict) else None
    if not isinstance(items, list):
        raise ValueError('message content has no "merchants" list')
    return items
