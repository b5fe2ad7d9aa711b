"""Requests-per-minute and tokens-per-minute limits, as token buckets shared by all requests of a client."""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    """``rate_per_minute`` units a minute, in bursts of up to a minute's worth; ``None`` is unlimited."""

    def __init__(self, rate_per_minute: float | None) -> None:
        self.rate = rate_per_minute / 60.0 if rate_per_minute else None
        self.capacity = float(rate_per_minute or 0)
        self.level = self.capacity
        self.updated = time.monotonic()
        self.lock = asyncio.Lock()

    async def take(self, amount: float) -> None:
        if self.rate is None:
            return
        amount = min(amount, self.capacity)  # a request larger than a minute's budget still goes, alone
        async with self.lock:
            while True:
                now = time.monotonic()
                self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
                self.updated = now
                if self.level >= amount:
                    self.level -= amount
                    return
                await asyncio.sleep((amount - self.level) / self.rate)


class RateLimiter:
    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None) -> None:
        self.requests = TokenBucket(requests_per_minute)
        self.tokens = TokenBucket(tokens_per_minute)

    async def acquire(self, tokens: int) -> None:
        await self.requests.take(1)
        await self.tokens.take(tokens)
