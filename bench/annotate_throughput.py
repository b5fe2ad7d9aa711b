"""Annotation throughput: requests per second at 1, 8, 32 and 128 in flight, beside the ideal.

Usage: python bench/annotate_throughput.py [--service-time 0.5] [--seconds 10]

The loopback stub server (tests/llm_stub.py) runs in its own process and answers every request after a
fixed service time, so the ideal rate at concurrency c is c / service_time. The client is the one the
annotators use (`LLMClient`: real `openai` client, semaphore, rate limiter, request cache written per
reply), with an empty cache per level so that every request is really sent. Each request is a caption
request with one 320x240 JPEG frame. Each level sends enough requests for about `--seconds` of ideal
time (at least 20), after an untimed warm-up of one request per slot that opens the connections, so
the figure is the steady state of a long run. Every level runs twice: one client in one process (the
in-process executor), and two clients in two processes sharing the concurrency (the Ray actor pool's
default of two actors). Results go to bench/results/annotate_throughput.json and to stdout as
Markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from streamo_data.sources.annotators.cache import RequestCache
from streamo_data.sources.annotators.client import ClientSettings, LLMClient, request_body
from streamo_data.sources.annotators.frames import encode_jpeg
from streamo_data.sources.annotators.replies import response_format

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
LEVELS = (1, 8, 32, 128)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("stub server did not start")


def body(index: int, image: str) -> dict:
    messages = [{"role": "system", "content": "You are a careful video annotator."},
                {"role": "user", "content": [
                    {"type": "text", "text": f"Frames from {index}s to {index + 5}s of a video that lasts 600s."},
                    {"type": "image_url", "image_url": {"url": image, "detail": "low"}}]}]
    return request_body("stub-vl", messages, 0.2, 200, response_format("caption_reply"))


async def level(base_url: str, concurrency: int, first: int, count: int, image: str) -> tuple[float, float, int]:
    """One client sends ``count`` requests, ``concurrency`` at a time; (start, end, errors)."""
    with tempfile.TemporaryDirectory() as cache_dir:
        settings = ClientSettings(model="stub-vl", base_url=base_url, api_key_env="", concurrency=concurrency,
                                  timeout_s=30.0)
        client = LLMClient(settings, RequestCache(Path(cache_dir)))
        # warm-up, untimed: open the connections a long annotation run keeps open anyway
        await asyncio.gather(*(client.complete(body(-1 - first - i, image)) for i in range(concurrency)))
        client.usage.failed = client.usage.retries = 0
        started = time.time()
        await asyncio.gather(*(client.complete(body(first + i, image)) for i in range(count)))
        finished = time.time()
        failed = client.usage.failed + client.usage.retries
        await client.close()
    return started, finished, failed


def run_client(args: tuple[str, int, int, int, str]) -> tuple[float, float, int]:
    return asyncio.run(level(*args))


def measure(base_url: str, concurrency: int, count: int, image: str, clients: int) -> tuple[float, int]:
    """Requests per second over all clients (each its own process, as the Ray actors are)."""
    if clients == 1:
        started, finished, errors = run_client((base_url, concurrency, 0, count, image))
        return count / (finished - started), errors
    share = count // clients
    jobs = [(base_url, concurrency // clients, k * share, share, image) for k in range(clients)]
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        results = pool.map(run_client, jobs)
    started, finished = min(r[0] for r in results), max(r[1] for r in results)
    return share * clients / (finished - started), sum(r[2] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--service-time", type=float, default=0.5)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    port = free_port()
    server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "llm_stub.py"), "--port", str(port),
                               "--service-time", str(args.service_time)], stdout=subprocess.DEVNULL,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    image = encode_jpeg(np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8))
    rows = []
    try:
        wait_for(port)
        for clients in (1, 2):
            for concurrency in LEVELS:
                if concurrency < clients:
                    continue
                ideal = concurrency / args.service_time
                count = max(20, int(ideal * args.seconds))
                rate, errors = measure(f"http://127.0.0.1:{port}/v1", concurrency, count, image, clients)
                rows.append({"clients": clients, "concurrency": concurrency, "requests": count, "rps": rate,
                             "ideal_rps": ideal, "share_of_ideal": rate / ideal, "errors": errors})
    finally:
        server.terminate()
        server.wait()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "annotate_throughput.json").write_text(json.dumps(
        {"service_time_s": args.service_time, "levels": rows}, indent=2))
    print(f"service time {args.service_time:g} s")
    print("| clients (processes) | in flight | requests | requests/s | ideal | share of ideal | errors |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['clients']} | {row['concurrency']} | {row['requests']} | {row['rps']:.1f} |"
              f" {row['ideal_rps']:.1f} | {row['share_of_ideal']:.1%} | {row['errors']} |")


if __name__ == "__main__":
    main()
