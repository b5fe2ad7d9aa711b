"""Requests-per-minute and tokens-per-minute limits, as token buckets shared by all requests of a client.

A bucket holds at most one second's worth of its rate (at least one unit), not a minute's: a full
minute's burst at the start of every client (and Ray gives every actor its own client) would let a
run send twice its limit in its first minute. A take larger than what the bucket holds goes once the
bucket is full and leaves it in debt, which later takes wait out, so a limit holds on average even
for requests larger than a second's budget. The guarantee, for any stretch of T seconds: at most
``capacity + rate * T`` units, plus the overshoot of the last take.
"""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    """``rate_per_minute`` units a minute; ``None`` is unlimited."""

    def __init__(self, rate_per_minute: float | None) -> None:
        self.rate = rate_per_minute / 60.0 if rate_per_minute else None
        self.capacity = max(1.0, self.rate or 0.0)
        self.level = self.capacity
        self.updated = time.monotonic()
        self.lock = asyncio.Lock()

    async def take(self, amount: float) -> None:
        if self.rate is None:
            return
        needed = min(amount, self.capacity)
        async with self.lock:  # first come, first served: a large take is not starved by small ones
            while True:
                now = time.monotonic()
                self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
                self.updated = now
                if self.level >= needed:
                    self.level -= amount
                    return
                await asyncio.sleep((needed - self.level) / self.rate)


class RateLimiter:
    """Both limits of one client; every attempt of every request takes from them (retries included)."""

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None) -> None:
        self.requests = TokenBucket(requests_per_minute)
        self.tokens = TokenBucket(tokens_per_minute)

    async def acquire(self, tokens: int) -> None:
        await self.requests.take(1)
        await self.tokens.take(tokens)
