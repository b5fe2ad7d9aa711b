"""The OpenAI Batch API for large offline runs: write the requests as JSONL, submit, poll, collect.

Collected replies go into the same request cache as online answers; the online pass that follows
then finds every answer cached, validates it, and sends only the retries of invalid replies. So a
batch run produces exactly what an online run would, at the batch price.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from openai import AsyncOpenAI

from streamo_data.sources.annotators.cache import RequestCache
from streamo_data.sources.annotators.client import (
    SECRET_IN_REPLY,
    ClientSettings,
    RequestFailed,
    api_key_from_env,
    quotes_secret,
)

TERMINAL = {"completed", "failed", "expired", "cancelled"}


def batch_lines(pending: list[tuple[str, dict[str, Any]]]) -> bytes:
    """The batch input file: one request per line, its cache key as ``custom_id``."""
    return "".join(json.dumps({"custom_id": key, "method": "POST", "url": "/v1/chat/completions", "body": body},
                              ensure_ascii=False) + "\n" for key, body in pending).encode("utf-8")


async def run_batch(settings: ClientSettings, cache: RequestCache, pending: list[tuple[str, dict[str, Any]]],
                    poll_s: float = 30.0, timeout_s: float = 24 * 3600,
                    on_poll: Callable[[dict[str, Any]], None] | None = None) -> dict[str, int]:
    """Submit ``pending``, wait for the batch, and cache every successful reply; returns counts."""
    if not pending:
        return {"submitted": 0, "cached": 0, "failed": 0}
    key = api_key_from_env(settings)
    client = AsyncOpenAI(api_key=key, base_url=settings.base_url, timeout=settings.timeout_s, max_retries=3)
    try:
        uploaded = await client.files.create(file=("requests.jsonl", batch_lines(pending)), purpose="batch")
        batch = await client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                            completion_window="24h")
        started = time.monotonic()
        while batch.status not in TERMINAL:
            if time.monotonic() - started > timeout_s:
                raise RequestFailed(f"batch {batch.id} still {batch.status} after {timeout_s:g}s")
            await asyncio.sleep(poll_s)
            batch = await client.batches.retrieve(batch.id)
            if on_poll is not None:
                on_poll(batch.model_dump())
        if batch.status != "completed" or not batch.output_file_id:
            raise RequestFailed(f"batch {batch.id} ended {batch.status}")
        output = await client.files.content(batch.output_file_id)
        cached = failed = 0
        for line in output.text.splitlines():
            if not line.strip():
                continue
            try:  # one unreadable output line is one request left to the online pass, not a lost batch
                record = json.loads(line)
                response = record.get("response") or {}
                if response.get("status_code") != 200:
                    raise ValueError("not answered")
                body, custom_id = response["body"], record["custom_id"]
                content = body["choices"][0]["message"]["content"] or ""
                if not isinstance(content, str) or not isinstance(custom_id, str):
                    raise TypeError("not a completion")
                if quotes_secret(content, key):
                    raise ValueError(SECRET_IN_REPLY)
            except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                failed += 1
                continue
            usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
            cache.put(custom_id, {"content": content, "usage": usage, "model": settings.model, "via": "batch"})
            cached += 1
        return {"submitted": len(pending), "cached": cached, "failed": failed}
    finally:
        await client.close()
