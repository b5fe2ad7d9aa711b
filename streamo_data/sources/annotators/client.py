"""An OpenAI-compatible chat client for annotation at volume: cached, rate-limited, retried, accounted.

Works with OpenAI itself and any server that speaks its protocol (vLLM, SGLang, Ollama, Azure) through
``base_url``. The API key is read from the environment variable the settings name and goes only into
the ``openai`` client; it is never part of a cache key, a log line, an error message or an output.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import itertools
import logging
import math
import os
import random
import re
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from streamo_data.core.errors import UserError
from streamo_data.sources.annotators.cache import RequestCache, request_key
from streamo_data.store.storage import credentials_end

if TYPE_CHECKING:  # openai is imported where a client is made: a build without LLM stages never loads it
    import openai

log = logging.getLogger(__name__)

CONNECTIONS_PER_POOL = 16
KEYLIKE = re.compile(r"(sk|key|token)-[A-Za-z0-9_\-*.]{4,}", re.IGNORECASE)


DEFAULT_BASE_URL = "https://api.openai.com/v1"


class ClientSettings(BaseModel):
    """Checked when made, so that a bad value is one clear error before anything runs: a concurrency of 0
    would wait forever, a limit of 0 would mean "unlimited" by accident."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    model: str
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = Field(default=60.0, gt=0, allow_inf_nan=False)
    max_attempts: int = Field(default=5, ge=1)
    concurrency: int = Field(default=16, ge=1)
    requests_per_minute: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    tokens_per_minute: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    backoff_base_s: float = Field(default=0.5, ge=0, allow_inf_nan=False)
    backoff_max_s: float = Field(default=30.0, ge=0, allow_inf_nan=False)
    price_input_per_million: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    price_output_per_million: float = Field(default=0.0, ge=0, allow_inf_nan=False)

    @field_validator("model")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a model name is needed (as the endpoint knows it)")
        return value.strip()

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"https?://[^/\s]+", value):
            raise ValueError("should be an http:// or https:// URL, e.g. http://localhost:8000/v1")
        if value is not None and credentials_end(value) is not None:
            # they would be part of every event's provenance, every cache key and every error line
            raise ValueError("credentials do not belong in the URL: the key goes in the environment variable"
                             " that --api-key-env names")
        return value

    @property
    def endpoint(self) -> str:
        """The base URL in one spelling (no trailing slash; OpenAI's when none is given): part of every
        cache key, since the same model name on two endpoints is two models."""
        return (self.base_url or DEFAULT_BASE_URL).rstrip("/")


@dataclass
class Usage:
    """What a run spent, for the report: requests by outcome, retries, tokens and their cost."""

    sent: int = 0
    cached: int = 0
    failed: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retry_reasons: dict[str, int] = field(default_factory=dict)

    def add(self, other: Usage) -> None:
        for name in ("sent", "cached", "failed", "retries", "prompt_tokens", "completion_tokens"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, count in other.retry_reasons.items():
            self.retry_reasons[reason] = self.retry_reasons.get(reason, 0) + count

    def cost(self, settings: ClientSettings) -> float:
        return (self.prompt_tokens * settings.price_input_per_million
                + self.completion_tokens * settings.price_output_per_million) / 1e6

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def request_body(model: str, messages: list[dict[str, Any]], temperature: float, max_tokens: int,
                 response_format: dict[str, Any]) -> dict[str, Any]:
    """A chat-completions request body; everything in it (and nothing else) makes the cache key."""
    return {"model": model, "messages": messages, "temperature": temperature, "max_tokens": max_tokens,
            "response_format": response_format}


@dataclass(frozen=True)
class TokenCount:
    """A request's tokens by kind, as ``--dry-run`` reports them: text in (characters / 4), images in,
    and the completion budget."""

    text: int
    image: int
    completion: int
    images: int

    @property
    def total(self) -> int:
        return self.text + self.image + self.completion


# An image at high (or auto) detail of unknown size, for the rate limiter: 2x2 tiles, the most an image of up
# to 1,024 pixels a side costs (--dry-run counts each video's own size).
HIGH_DETAIL_BOUND = 85 + 170 * 4


def count_tokens(body: dict[str, Any], image_tokens: int | None = None) -> TokenCount:
    """A rough count of one request: ``image_tokens`` per image when given, else by each image's detail
    (85 at low, :data:`HIGH_DETAIL_BOUND` otherwise)."""
    chars, images, image = 0, 0, 0
    for message in body["messages"]:
        content = message["content"]
        if isinstance(content, str):
            chars += len(content)
            continue
        for part in content:
            if part["type"] == "text":
                chars += len(part["text"])
            else:
                images += 1
                low = part.get("image_url", {}).get("detail", "low") == "low"
                image += image_tokens if image_tokens is not None else 85 if low else HIGH_DETAIL_BOUND
    return TokenCount(text=chars // 4, image=image, completion=body["max_tokens"], images=images)


def estimate_tokens(body: dict[str, Any], image_tokens: int | None = None) -> int:
    """A rough count for the TPM limit and --dry-run: text characters / 4, a cost per image by its detail,
    plus the completion budget."""
    return count_tokens(body, image_tokens).total


class RequestFailed(RuntimeError):
    """A request that could not be answered; its message is safe to log (the key is redacted). One
    request's failure is a reject of its job, not a user error: a run goes on without it."""


class MissingApiKey(UserError):
    """The variable that should hold the API key is not set: nothing can be sent."""


def api_key_from_env(settings: ClientSettings) -> str:
    """The key from the named variable; an empty name means a server that needs none."""
    if not settings.api_key_env:
        return "EMPTY"
    key = os.environ.get(settings.api_key_env)
    if not key:
        raise MissingApiKey(f"environment variable {settings.api_key_env} is not set (it holds the API key)")
    return key


def _seconds(value: str, scale: float = 1.0) -> float | None:
    try:
        seconds = float(value) * scale
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def retry_after_seconds(error: openai.APIStatusError) -> float | None:
    """The server's Retry-After (seconds, milliseconds or an HTTP date), when it sent one that means a
    time; anything else (``soon``, ``inf``, a broken date) is as if none was sent: the usual backoff."""
    headers = error.response.headers
    if (value := headers.get("retry-after-ms")) is not None and (seconds := _seconds(value, 1e-3)) is not None:
        return seconds
    value = headers.get("retry-after")
    if not value:
        return None
    if (seconds := _seconds(value)) is not None:
        return seconds
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:  # RFC 9110 dates are GMT
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return max(0.0, parsed.timestamp() - time.time())


def quotes_secret(content: str, key: str) -> bool:
    """Whether a reply holds the API key (a gateway that echoes the Authorization header): such a reply
    is refused, never cached, so the key cannot reach events, a release or its exports."""
    return bool(key) and key != "EMPTY" and key in content


SECRET_IN_REPLY = "the reply quotes the API key: refused (not cached, not written)"


class NotACompletion(ValueError):
    """A 200 reply that is not a chat completion (an HTML error page from a proxy, no choices, ...)."""


def reply_content(raw: httpx.Response) -> tuple[str, dict[str, int]]:
    """The reply text and token usage of a chat-completions response, or NotACompletion saying why not."""
    try:
        reply = raw.json()
    except ValueError:
        raise NotACompletion(f"the reply is not a chat completion (not JSON: {raw.text[:60]!r})") from None
    try:
        content = reply["choices"][0]["message"].get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        raise NotACompletion("the reply is not a chat completion (no choices[0].message)") from None
    if not isinstance(content, str):
        raise NotACompletion(f"the reply is not a chat completion (content is a {type(content).__name__})")
    usage = reply.get("usage") if isinstance(reply.get("usage"), dict) else {}
    return content, {k: v for k, v in usage.items() if isinstance(v, int)}


class LLMClient:
    """One async client: at most ``concurrency`` requests in flight, within the RPM/TPM limits."""

    def __init__(self, settings: ClientSettings, cache: RequestCache) -> None:
        from streamo_data.sources.annotators.limits import RateLimiter

        self.settings = settings
        self.cache = cache
        self._key = api_key_from_env(settings)
        # One HTTP connection pool per CONNECTIONS_PER_POOL requests in flight: httpcore matches queued
        # requests to connections in time quadratic in the pool's size, which at 128 in flight costs more
        # CPU than everything else a request does. Requests are spread over the pools in turn.
        pools = max(1, math.ceil(settings.concurrency / CONNECTIONS_PER_POOL))
        from openai import AsyncOpenAI

        self.clients = [AsyncOpenAI(api_key=self._key, base_url=settings.base_url, timeout=settings.timeout_s,
                                    max_retries=0) for _ in range(pools)]
        self._turn = itertools.count()
        self.semaphore = asyncio.Semaphore(settings.concurrency)
        # requests on their way, by cache key: an identical request asked meanwhile (two videos opening on
        # the same frames) waits for that reply instead of being sent a second time
        self.in_flight: dict[str, asyncio.Future[str]] = {}
        self.limiter = RateLimiter(settings.requests_per_minute, settings.tokens_per_minute)
        self.usage = Usage()

    def redact(self, text: str) -> str:
        """Error text with the key (or anything shaped like one) removed: servers echo keys in 401s."""
        if self._key and self._key != "EMPTY":
            text = text.replace(self._key, "***")
        return KEYLIKE.sub("***", text)

    async def complete(self, body: dict[str, Any], usage: Usage | None = None) -> str:
        """The reply text for a request body: from the cache, or from the server (then cached at once).
        Counts go to the client's usage and, when given, to ``usage`` (one job's share)."""
        tallies = [self.usage] + ([usage] if usage is not None else [])
        key = request_key(body, self.settings.endpoint)
        if (hit := self.cache.get(key)) is not None:
            return self._cached(hit["content"], tallies)
        if (pending := self.in_flight.get(key)) is not None:
            return self._cached(await asyncio.shield(pending), tallies)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.in_flight[key] = future
        try:
            async with self.semaphore:
                # another process (a Ray actor) may have answered it while this one waited for a slot
                if (hit := self.cache.get(key)) is not None:
                    future.set_result(hit["content"])
                    return self._cached(hit["content"], tallies)
                content, spent = await self._send(body, tallies)
            # the atomic write (temp file, fsync-free rename) runs off the event loop: it is the costliest
            # thing a reply does locally, and the loop has other replies to read meanwhile
            await asyncio.to_thread(self.cache.put, key, {"content": content, "usage": spent,
                                                          "model": self.settings.model})
            future.set_result(content)
        except BaseException as error:
            if not future.done():
                future.set_exception(error)
                future.exception()  # retrieved here: a failure nobody else waited for is not logged again
            raise
        finally:
            del self.in_flight[key]
        for tally in tallies:
            tally.sent += 1
            tally.prompt_tokens += spent.get("prompt_tokens", 0)
            tally.completion_tokens += spent.get("completion_tokens", 0)
        return content

    @staticmethod
    def _cached(content: str, tallies: list[Usage]) -> str:
        for tally in tallies:
            tally.cached += 1
        return content

    async def _send(self, body: dict[str, Any], tallies: list[Usage]) -> tuple[str, dict[str, int]]:
        import openai  # imported by __init__ already: this only names it here

        settings = self.settings
        tokens = estimate_tokens(body)
        for attempt in range(1, settings.max_attempts + 1):
            await self.limiter.acquire(tokens)  # every attempt is a request the server counts
            try:
                # The typed `chat.completions.create` re-walks every parameter against its TypedDicts
                # (about 2 ms of CPU a request, the bottleneck at 100+ in flight); our bodies are already
                # plain JSON, so they go through the client's own POST, with the same errors and retries.
                # ... and the reply is read as plain JSON rather than built into typed models.
                client = self.clients[next(self._turn) % len(self.clients)]
                raw = await client.post("/chat/completions", body=body, cast_to=httpx.Response)
                content, spent = reply_content(raw)
                if quotes_secret(content, self._key):  # asked again, it would echo the key again
                    for tally in tallies:
                        tally.failed += 1
                    raise RequestFailed(SECRET_IN_REPLY)
                return content, spent
            except NotACompletion as error:
                reason, wait = str(error), None
            except openai.APIStatusError as error:
                status = error.status_code
                if status != 429 and status < 500 and status != 408:
                    for tally in tallies:
                        tally.failed += 1
                    raise RequestFailed(self.redact(f"HTTP {status}: {error.message}")) from None
                reason, wait = f"HTTP {status}", retry_after_seconds(error)
            except openai.APITimeoutError:
                reason, wait = "timeout", None
            except openai.APIConnectionError as error:
                reason, wait = f"connection error: {type(error.__cause__).__name__}", None
            if attempt == settings.max_attempts:
                for tally in tallies:
                    tally.failed += 1
                raise RequestFailed(self.redact(f"gave up after {attempt} attempts (last: {reason})"))
            for tally in tallies:
                tally.retries += 1
                tally.retry_reasons[reason] = tally.retry_reasons.get(reason, 0) + 1
            if wait is None:  # jittered exponential backoff
                ceiling = min(settings.backoff_max_s, settings.backoff_base_s * 2 ** (attempt - 1))
                wait = ceiling * random.uniform(0.5, 1.5)
            log.info("retrying after %s in %.2fs (attempt %d)", self.redact(reason), wait, attempt)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
