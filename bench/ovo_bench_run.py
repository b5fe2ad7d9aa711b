"""`streamo benchmark ovo-bench run` against a loopback endpoint with a fixed service time: throughput as a
share of the ideal, frames decoded per second, and what each protocol sends per benchmark item.

Usage: .venv/bin/python bench/ovo_bench_run.py [--videos 8] [--service-time 0.2] [--concurrency 16]

The annotations are OVO-Bench's layout (every task, one entry of each per video) over generated 60 s
videos (640x360, 30 fps); the stub (tests/llm_stub.py) runs in its own process and answers each request
after the service time. The ideal wall time is the larger of (requests x service time / concurrency) and
the longest chain of requests one streaming question makes (a turn waits for the turn before it).
Image tokens are what the frames would cost a real model: 85 each at OpenAI's low detail, and Qwen2.5-VL's
(w/28)(h/28) at the decoded size; text tokens are characters / 4. Results to bench/results/ovo_bench_run.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamo_data.benchmarks.ovo.annotations import load_annotations  # noqa: E402
from streamo_data.benchmarks.ovo.models import EndpointModel  # noqa: E402
from streamo_data.benchmarks.ovo.protocols import jobs_for  # noqa: E402
from streamo_data.benchmarks.ovo.run import RunSettings, file_digest, run_benchmark  # noqa: E402
from streamo_data.sources.annotators.cache import RequestCache  # noqa: E402
from streamo_data.sources.annotators.client import ClientSettings, LLMClient  # noqa: E402
from tests.conftest import write_video  # noqa: E402

WORK = Path(__file__).parent / "_work" / "ovo_bench_run"
RESULTS = Path(__file__).parent / "results"
OPTIONS = ["a red cup", "a blue cup", "a green cup", "no cup"]


def entries_for(video: str, base: int) -> list[dict[str, Any]]:
    """One entry of each of the twelve tasks on a 60 s video."""
    out: list[dict[str, Any]] = []
    for k, task in enumerate(("EPM", "ASI", "HLD", "STU", "OJR", "ATR", "ACR", "OCR", "FPD")):
        out.append({"id": base + k, "task": task, "video": video, "realtime": 10 + 5 * k,
                    "question": f"What is on the table in {video} ({task})?", "options": OPTIONS, "gt": k % 4})
    steps = [(f"first step of {video}", 5, 20), (f"second step of {video}", 30, 45)]
    out.append({"id": base + 9, "task": "CRR", "video": video, "question": f"What does she do in {video}?",
                "ask_time": 20, "clue_time": 35,
                "test_info": [{"realtime": t, "type": int(t >= 35)} for t in (20, 30, 40, 50)]})
    out.append({"id": base + 10, "task": "SSR", "video": video, "all_steps": [step for step, _, _ in steps],
                "start_time": [a for _, a, _ in steps], "end_time": [b for _, _, b in steps],
                "test_info": [{"realtime": t, "step": step, "type": int(a <= t <= b)}
                              for step, a, b in steps for t in (10, 25, 40)]})
    out.append({"id": base + 11, "task": "REC", "video": video, "activity": f"clapping ({video})",
                "start_times": [10, 30], "end_times": [12, 32],
                "test_info": [{"realtime": t, "count": 1 + (t > 32)} for t in (15, 35, 55)]})
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CountingClient(LLMClient):
    """The annotators' client, tallying what each request carries."""

    images = 0
    text_chars = 0

    async def complete(self, body: dict[str, Any], usage: Any = None) -> str:
        for message in body["messages"]:
            content = message["content"]
            if isinstance(content, str):
                self.text_chars += len(content)
                continue
            for part in content:
                if part["type"] == "text":
                    self.text_chars += len(part["text"])
                else:
                    self.images += 1
        return await super().complete(body, usage)


async def run_one(protocol: str, annotations: Any, settings: ClientSettings, out: Path, concurrency: int,
                  annotations_path: Path, videos: Path) -> tuple[Any, CountingClient]:
    client = CountingClient(settings, RequestCache(out.with_name(out.name + ".work") / "cache"))
    run = RunSettings(annotations=file_digest(annotations_path), protocol=protocol, model="stub",
                      endpoint=settings.endpoint)
    report = await run_benchmark(annotations, videos, EndpointModel(client), run, out, concurrency=concurrency)
    return report, client


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--service-time", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    videos = WORK / "videos"
    entries: list[dict[str, Any]] = []
    for n in range(args.videos):
        name = f"Ego4D/clips/video_{n}.mp4"
        if not (videos / name).exists():
            write_video(videos / name, 1800, 30.0, (640, 360))
        entries.extend(entries_for(name, 100 * n))
    annotations_path = WORK / "ovo_bench_new.json"
    annotations_path.write_text(json.dumps(entries))
    port = free_port()
    server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "llm_stub.py"), "--port", str(port),
                               "--service-time", str(args.service_time)], stdout=subprocess.DEVNULL,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    rows = {}
    try:
        time.sleep(2)
        for protocol in ("offline", "streaming"):
            annotations = load_annotations(annotations_path)
            out = WORK / f"results_{protocol}.json"
            for stale in (out, out.with_name(out.name + ".work")):
                subprocess.run(["rm", "-rf", str(stale)], check=True)
            settings = ClientSettings(model="stub", base_url=f"http://127.0.0.1:{port}/v1", api_key_env="",
                                      concurrency=args.concurrency)
            started = time.perf_counter()
            report, client = asyncio.run(run_one(protocol, annotations, settings, out, args.concurrency,
                                                 annotations_path, videos))
            wall = time.perf_counter() - started
            jobs = jobs_for(protocol, annotations.lists)
            requests = report.usage["sent"] + report.usage["cached"]
            chain = 1 if protocol == "offline" else max(
                (job.last_frame if job.last_frame is not None else 59) - job.ask_frame + 1 for job in jobs)
            ideal = max(requests * args.service_time / args.concurrency, chain * args.service_time)
            items = len(entries)
            rows[protocol] = {
                "items": items, "jobs": len(jobs), "requests": requests, "wall_s": wall, "ideal_s": ideal,
                "share_of_ideal": ideal / wall, "failed": sum(report.failed.values()),
                "frames_decoded": report.frames_decoded,
                "decoded_frames_per_s": report.frames_decoded / max(report.decode_seconds, 1e-9),
                "requests_per_item": requests / items, "images_sent_per_item": client.images / items,
                "text_tokens_per_item": client.text_chars / 4 / items,
                "image_tokens_per_item_low_detail": 85 * client.images / items,
                "image_tokens_per_item_qwen": client.images * (448 // 28) * (252 // 28) / items}
    finally:
        server.terminate()
        server.wait()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ovo_bench_run.json").write_text(json.dumps({"service_time_s": args.service_time,
                                                            "concurrency": args.concurrency, **rows}, indent=2))
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
