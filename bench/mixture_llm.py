"""A mixture with LLM stages, end to end: stage throughput against the ideal, a rerun that sends nothing,
and a SIGKILL midway whose resume sends nothing twice.

Usage: python bench/mixture_llm.py [--videos 200] [--service-time 0.2] [--concurrency 16] [--num-cpus 2]

Synthetic videos (``make_synthetic_video``, 10-20 s at 64x48, 10 fps; kept in bench/_work/mixture_llm/videos
and reused between runs) are one videos-only source with four annotators, the paper's multi-stage pipelines:
``narration_pipeline``, ``caption_verified``, ``grounding_queries`` over those captions, ``ts_qa_changes``.
The loopback stub (tests/llm_stub.py) runs in its own process and answers every request after a fixed
service time, so the ideal rate of one annotator is concurrency / service time. The stub here is wrapped
to log, per request, when it arrived and was answered, its reply schema (the pipeline stage) and the
SHA-256 of its body, so that the counts come from the server's side, not from the client's report.

Phases, each `streamo build --config` in a subprocess on a local Ray (``--num-cpus``):
1. a first build into an empty work dir: per annotator and per stage, requests and requests/s (from the
   first arrival to the last answer of that annotator's requests; annotators run one after another in
   config order) against the ideal;
2. the same build again: requests that reach the stub (must be 0) and the cache hits of the annotators'
   reports (must be every request);
3. a fresh work dir, the build SIGKILLed (its process group: Ray with it) once ``--kill-after`` of the
   first build's requests were answered, then resumed: how many bodies the resume sent that had been
   answered before the kill (must be 0), or were in flight at it (sent again: their replies never reached
   the build), and per unique body how many times the stub received it over both runs. The resumed
   release must equal the first build's (shard checksums).
Results go to bench/results/mixture_llm.json and to stdout as Markdown.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(__file__).parent / "_work" / "mixture_llm"
RESULTS = Path(__file__).parent / "results"

# Each reply schema is one stage of one annotator (see streamo_data/sources/annotators/staged.py).
STAGES: dict[str, str] = {
    "narration_window_reply": "narration", "narration_rewrite_reply": "narration",
    "caption_segment_reply": "event_caption", "caption_ground_reply": "event_caption",
    "grounding_query_reply": "queries", "ts_qa_changes_reply": "ts_qa",
}
ANNOTATORS = ("narration", "event_caption", "queries", "ts_qa")


# ---- the stub, in its own process, logging what it receives -----------------------------------------------
def serve(port: int, service_time: float, log_path: Path) -> None:
    """The loopback stub with a request log: ``arrive|done <time> <schema> <sha256 of the body>`` per line."""
    import contextlib
    import threading

    from aiohttp import web

    from tests.llm_stub import StubServer, schema_of

    log = log_path.open("a", buffering=1)

    class LoggingStub(StubServer):
        async def chat(self, request: web.Request) -> web.Response:
            body = json.loads(await request.read())
            key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
            schema = schema_of(body)
            log.write(f"arrive {time.time():.4f} {schema} {key}\n")
            response = await super().chat(request)
            log.write(f"done {time.time():.4f} {schema} {key}\n")
            return response

    with LoggingStub(port, service_time), contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Stub:
    """The logging stub in a subprocess, one log file per phase. Every phase uses the same port: the
    endpoint is part of the cache key and of an annotator's stamp, so another port is another model."""

    def __init__(self, port: int, service_time: float, log_path: Path) -> None:
        self.port, self.log_path = port, log_path
        log_path.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(self.port), "--service-time", str(service_time), "--log",
             str(log_path)], env={**os.environ, "PYTHONPATH": str(ROOT)})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("stub server did not start")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def entries(self) -> list[tuple[str, float, str, str]]:
        if not self.log_path.exists():
            return []
        out = []
        for line in self.log_path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 4:
                out.append((parts[0], float(parts[1]), parts[2], parts[3]))
        return out

    def answered(self) -> int:
        return sum(1 for e in self.entries() if e[0] == "done")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


# ---- videos and config ---------------------------------------------------------------------------------
def make_videos(folder: Path, count: int) -> Path:
    """``count`` short synthetic videos, made once and reused (a partial folder is completed)."""
    from streamo_data.sources.sample_data import make_synthetic_video

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        path = folder / f"clip{i:04d}.mp4"
        if not path.exists():
            duration = random.Random(i).uniform(10, 20)
            tmp = path.with_name(f".{path.name}")
            make_synthetic_video(tmp, seed=i, duration_s=round(duration, 1), fps=10, size=(64, 48),
                                 num_events=random.Random(-i).randint(2, 3))
            os.replace(tmp, path)
    return folder


def llm_source(videos: Path, base_url: str, concurrency: int) -> dict[str, Any]:
    """The videos-only source with the four pipelines (as pipelines/streamo_instruct.yaml's koala source)."""
    llm = {"model": "stub-vl", "base_url": base_url, "api_key_env": "", "concurrency": concurrency,
           "timeout_s": 30, "price_input_per_million": 0.15, "price_output_per_million": 0.6}
    return {"name": "clips", "videos": str(videos), "annotators": [
        {**llm, "name": "narration", "kind": "narration_pipeline", "text_model": "stub-text"},
        {**llm, "name": "event_caption", "kind": "caption_verified", "window_s": 10},
        {**llm, "name": "queries", "kind": "grounding_queries", "text_model": "stub-text",
         "query_sources": ["clips:event_caption"]},
        {**llm, "name": "ts_qa", "kind": "ts_qa_changes"},
    ]}


LLM_TASKS = {"narration": "clips:narration", "dense_captioning": "clips:event_caption",
             "temporal_grounding": "clips:queries", "time_sensitive_qa": "clips:ts_qa"}


def write_config(path: Path, videos: Path, base_url: str, concurrency: int) -> Path:
    config = {"name": "bench-llm-stages", "seed": 0, "fps": 1.0, "validation_fraction": 0.0,
              "rows_per_shard": 50000, "videos_per_batch": 50,
              "sources": [llm_source(videos, base_url, concurrency)],
              # quotas above what 200 videos offer: every task takes all its candidates
              "tasks": {task: {"quota": 100_000, "sources": [source]} for task, source in LLM_TASKS.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# ---- builds ----------------------------------------------------------------------------------------------
def build_command(config: Path, work: Path, release: Path, num_cpus: int) -> list[str]:
    return [sys.executable, "-m", "streamo_data.cli", "build", str(work), "--config", str(config), "--out",
            str(release), "--num-cpus", str(num_cpus)]


def run_build(config: Path, work: Path, release: Path, num_cpus: int) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(build_command(config, work, release, num_cpus), capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "160"})
    elapsed = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"build failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return elapsed, done.stdout


def reports(work: Path) -> dict[str, dict[str, Any]]:
    """The annotators' own reports (usage: sent, cached, failed) from their state files."""
    out = {}
    for state in sorted((work / "sources").glob("*/annotators/*/state.json")):
        out[state.parent.name] = json.loads(state.read_text())["report"]
    return out


def checksums(release: Path) -> dict[str, str]:
    manifest = json.loads((release / "manifest.json").read_text())
    return {shard["path"]: shard["sha256"] for shard in manifest["shards"]}


def throughput(entries: list[tuple[str, float, str, str]], ideal: float) -> list[dict[str, Any]]:
    """Per annotator and per stage: requests and their rate over the annotator's window."""
    arrive: dict[str, list[float]] = defaultdict(list)
    done: dict[str, list[float]] = defaultdict(list)
    by_stage: Counter[str] = Counter()
    for what, at, schema, _ in entries:
        owner = STAGES.get(schema, schema)
        (arrive if what == "arrive" else done)[owner].append(at)
        if what == "arrive":
            by_stage[schema] += 1
    rows = []
    for owner in ANNOTATORS:
        if not arrive[owner]:
            continue
        window = max(done[owner]) - min(arrive[owner])
        stages = {s: n for s, n in by_stage.items() if STAGES.get(s) == owner}
        rows.append({"annotator": owner, "requests": len(arrive[owner]), "stages": stages, "window_s": window,
                     "rps": len(arrive[owner]) / window, "ideal_rps": ideal,
                     "share_of_ideal": len(arrive[owner]) / window / ideal})
    return rows


def kill_and_resume(config: Path, port: int, service_time: float, baseline: Counter[str], kill_after: float,
                    num_cpus: int, folder: Path) -> dict[str, Any]:
    """A fresh build SIGKILLed once ``kill_after`` of the uninterrupted build's requests were answered, then
    resumed. ``baseline`` is how often the uninterrupted build sent each body: two jobs that make the same
    request at the same moment both send it (neither reply is cached yet), so a copy is "again" only
    beyond that count."""
    total = sum(baseline.values())
    shutil.rmtree(folder, ignore_errors=True)
    work, release = folder / "work", folder / "release"
    stub = Stub(port, service_time, folder.parent / "stub_kill.log")
    try:
        process = subprocess.Popen(build_command(config, work, release, num_cpus), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True,
                                   env={**os.environ, "COLUMNS": "160"})
        while stub.answered() < kill_after * total and process.poll() is None:
            time.sleep(0.05)
        if process.poll() is not None:
            raise RuntimeError("the build ended before the kill point")
        os.killpg(process.pid, signal.SIGKILL)
        killed_at = time.time()
        process.wait()
        time.sleep(2 * service_time + 1)  # whatever was in flight is answered, to a client that is gone
        before = stub.entries()
        resume_s, _ = run_build(config, work, release, num_cpus)
        after = stub.entries()
    finally:
        stub.stop()
    answered = {key for what, at, _, key in before if what == "done" and at <= killed_at}
    asked = {key for what, at, _, key in before if what == "arrive" and at <= killed_at}
    resumed = Counter(key for what, at, _, key in after if what == "arrive" and at > killed_at)
    before_kill = Counter(key for what, at, _, key in before if what == "arrive" and at <= killed_at)
    received = before_kill + resumed
    return {"answered_at_kill": len(answered), "sent_before_kill": sum(before_kill.values()),
            "sent_by_resume": sum(resumed.values()), "unique_bodies": len(received),
            "same_bodies_as_uninterrupted": set(received) == set(baseline),
            "bodies_received_once": sum(1 for n in received.values() if n == 1),
            # the figure that matters: a reply the build had before the kill, asked for again by the resume
            "resume_resent_answered": sum(1 for key in resumed if key in answered),
            "resume_resent_in_flight": sum(1 for key in resumed if key in asked - answered),
            # two jobs asking the same body at once (before any reply is cached), as the uninterrupted build does
            "duplicates_before_kill": sum(1 for n in before_kill.values() if n > 1),
            "duplicates_in_resume": sum(1 for n in resumed.values() if n > 1),
            "resume_s": resume_s}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--service-time", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--kill-after", type=float, default=0.4, help="share of the requests answered first")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--log", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.service_time, args.log)
        return

    started = time.perf_counter()
    videos = make_videos(WORK / "videos", args.videos)
    videos_s = time.perf_counter() - started
    ideal = args.concurrency / args.service_time
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    first, config = WORK / "first", WORK / "mixture.yaml"
    write_config(config, videos, base_url, args.concurrency)
    shutil.rmtree(first, ignore_errors=True)

    stub = Stub(port, args.service_time, WORK / "stub_first.log")
    try:
        build_s, output = run_build(config, first / "work", first / "release", args.num_cpus)
        entries = stub.entries()
    finally:
        stub.stop()
    stages = throughput(entries, ideal)
    total = sum(row["requests"] for row in stages)
    first_reports = reports(first / "work")
    baseline = Counter(key for what, _, _, key in entries if what == "arrive")
    asked = sum(r["usage"]["sent"] + r["usage"]["cached"] for r in first_reports.values())
    annotate_s = max(e[1] for e in entries) - min(e[1] for e in entries)

    stub = Stub(port, args.service_time, WORK / "stub_rerun.log")  # a new stub: it must receive nothing
    try:
        rerun_s, _ = run_build(config, first / "work", WORK / "rerun_release", args.num_cpus)
        rerun_received = sum(1 for e in stub.entries() if e[0] == "arrive")
    finally:
        stub.stop()
    rerun_reports = reports(first / "work")
    # a rerun skips every up-to-date annotator: to see the cache answer, drop their stamps (as a crash between
    # an annotator's run and its stamp would) and run once more
    for state in (first / "work" / "sources").glob("*/annotators/*/state.json"):
        state.unlink()
    stub = Stub(port, args.service_time, WORK / "stub_cached.log")
    try:
        cached_s, _ = run_build(config, first / "work", WORK / "cached_release", args.num_cpus)
        cached_received = sum(1 for e in stub.entries() if e[0] == "arrive")
    finally:
        stub.stop()
    cached_reports = reports(first / "work")
    cached = sum(r["usage"]["cached"] for r in cached_reports.values())
    same_release = (checksums(WORK / "rerun_release") == checksums(first / "release")
                    == checksums(WORK / "cached_release"))

    killed = kill_and_resume(config, port, args.service_time, baseline, args.kill_after, args.num_cpus, WORK / "kill")
    killed["release_equals_first"] = checksums(WORK / "kill" / "release") == checksums(first / "release")

    result = {
        "videos": args.videos, "videos_s": videos_s, "service_time_s": args.service_time,
        "concurrency": args.concurrency, "ideal_rps": ideal, "num_cpus": args.num_cpus,
        "first": {"build_s": build_s, "annotate_window_s": annotate_s, "requests": total, "stages": stages,
                  "bodies": len(baseline), "bodies_sent_more_than_once": sum(1 for n in baseline.values() if n > 1),
                  "reports": {k: {"sent": r["usage"]["sent"], "cached": r["usage"]["cached"],
                                  "failed": r["usage"]["failed"], "events": r["events"], "rejects": r["rejects"]}
                              for k, r in first_reports.items()},
                  "samples": json.loads((first / "release" / "manifest.json").read_text())["num_samples"]},
        "rerun": {"build_s": rerun_s, "received": rerun_received,
                  "annotators_skipped": all(r == first_reports[k] for k, r in rerun_reports.items())},
        "stamps_dropped": {"build_s": cached_s, "received": cached_received, "cached": cached,
                           "asked": asked,
                           "cache_hit_share": cached / asked if asked else 0.0},
        "releases_identical": same_release,
        "kill": killed,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "mixture_llm.json").write_text(json.dumps(result, indent=2))
    print(output.strip(), file=sys.stderr)
    print_markdown(result)


def print_markdown(result: dict[str, Any]) -> None:
    first = result["first"]
    print(f"{result['videos']} videos, service time {result['service_time_s']:g} s, concurrency"
          f" {result['concurrency']} (ideal {result['ideal_rps']:.0f} requests/s), {result['num_cpus']} CPUs")
    print(f"first build: {first['build_s']:.0f} s wall, {first['annotate_window_s']:.0f} s of it annotating,"
          f" {first['requests']} requests, {first['samples']} samples\n")
    print("| annotator | stage requests | requests | window | requests/s | ideal | share of ideal |")
    print("|---|---|---|---|---|---|---|")
    for row in first["stages"]:
        stages = ", ".join(f"{s.removesuffix('_reply')} {n}" for s, n in row["stages"].items())
        print(f"| {row['annotator']} | {stages} | {row['requests']} | {row['window_s']:.1f} s | {row['rps']:.1f} |"
              f" {row['ideal_rps']:.0f} | {row['share_of_ideal']:.0%} |")
    rerun, cached, kill = result["rerun"], result["stamps_dropped"], result["kill"]
    print(f"\nrerun: {rerun['build_s']:.0f} s, {rerun['received']} requests received, annotators skipped:"
          f" {rerun['annotators_skipped']}")
    print(f"stamps dropped: {cached['build_s']:.0f} s, {cached['received']} received, {cached['cached']} cache hits"
          f" of {cached['asked']} asked ({cached['cache_hit_share']:.0%});"
          f" releases identical: {result['releases_identical']}")
    print(f"SIGKILL after {kill['answered_at_kill']} answers ({kill['sent_before_kill']} sent), resume sent"
          f" {kill['sent_by_resume']} in {kill['resume_s']:.0f} s; {kill['unique_bodies']} unique bodies (the same as"
          f" uninterrupted: {kill['same_bodies_as_uninterrupted']}), {kill['bodies_received_once']} received once;"
          f" the resume sent {kill['resume_resent_answered']} bodies answered before the kill and"
          f" {kill['resume_resent_in_flight']} in flight at it; bodies sent twice at once by two jobs:"
          f" {kill['duplicates_before_kill']} before the kill, {kill['duplicates_in_resume']} in the resume;"
          f" release equals the first: {kill['release_equals_first']}")
    print(f"uninterrupted build: {first['bodies']} unique bodies, {first['bodies_sent_more_than_once']} sent more"
          " than once (two jobs asking the same at once)")


if __name__ == "__main__":
    main()
