"""What the LLM stages send, per 1,000 samples they make: requests, images, image tokens and text tokens
per stage, with narration asked the paper's way (one 2 s window a request) and several windows a request
over the frames they share (``narration_windows_per_request``); and how much of each request is a prefix
it shares with the stage's other requests (what a server with prefix caching computes once).

Usage: python bench/llm_tokens.py [--videos 40] [--windows-per-request 5 10]

The videos are the synthetic clips of ``bench/mixture_llm.py`` (10-20 s, kept in bench/_work/mixture_llm/
videos); the source carries the paper's four pipelines (narration, verified event captions, grounding queries,
time-sensitive QA), and ``streamo build --config`` runs in-process against the loopback stub
(tests/llm_stub.py), once per narration setting, each into a fresh work dir. Every count is taken from the
request bodies the stub received: a request is one the server answered (cache hits excluded: each run
starts with an empty cache), its images are its ``image_url`` parts (85 tokens each at the default low
detail), its text tokens the characters of all its text parts / 4 (the estimate ``--dry-run`` uses).
Samples are the release's rows of the task each annotator feeds. Results go to bench/results/llm_tokens.json
and to stdout as Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from mixture_llm import LLM_TASKS, llm_source, make_videos  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(__file__).parent / "_work" / "llm_tokens"
RESULTS = Path(__file__).parent / "results"

# reply schema -> (stage, the annotator it belongs to)
STAGE_OF = {"narration_window_reply": ("narration_window", "narration"),
            "narration_windows_reply": ("narration_windows", "narration"),
            "narration_rewrite_reply": ("narration_rewrite", "narration"),
            "caption_segment_reply": ("caption_segment", "event_caption"),
            "caption_ground_reply": ("caption_ground", "event_caption"),
            "grounding_query_reply": ("grounding_query", "queries"),
            "ts_qa_changes_reply": ("ts_qa_changes", "ts_qa")}
TASK_OF = {source.split(":")[1]: task for task, source in LLM_TASKS.items()}


def texts_of(body: dict[str, Any]) -> list[str]:
    out = []
    for message in body["messages"]:
        content = message["content"]
        out.extend([content] if isinstance(content, str) else [p["text"] for p in content if p["type"] == "text"])
    return out


def prefix_share(bodies: list[dict[str, Any]]) -> float:
    """Mean, over a stage's requests after its first, of the share of the request's text (system, then user
    text up to its first image) that is a prefix of the request before it."""
    shares, before = [], None
    for body in bodies:
        system = body["messages"][0]["content"]
        user = body["messages"][1]["content"]
        first = user if isinstance(user, str) else user[0]["text"]
        text = system + "\n" + first
        if before is not None:
            shares.append(len(os.path.commonprefix([before, text])) / len(text))
        before = text
    return sum(shares) / len(shares) if shares else 1.0


def run(videos: Path, per_request: int, work: Path) -> dict[str, Any]:
    from streamo_data.pipelines.mixture import MixtureConfig, run_mixture
    from streamo_data.release.stats import release_stats
    from streamo_data.runtime.runner import Executor
    from tests.llm_stub import StubServer, schema_of

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with StubServer() as stub:
        source = llm_source(videos, stub.base_url, 16)
        for annotator in source["annotators"]:
            if annotator["kind"] == "narration_pipeline":
                annotator["narration_windows_per_request"] = per_request
        config_path = work / "mixture.yaml"
        config_path.write_text(yaml.safe_dump({
            "name": "bench-llm-tokens", "seed": 0, "fps": 1.0, "validation_fraction": 0.0, "videos_per_batch": 50,
            "sources": [source],
            "tasks": {task: {"quota": 100_000, "sources": [src]} for task, src in LLM_TASKS.items()},
        }, sort_keys=False))
        run_mixture(MixtureConfig.load(config_path), work / "work", work / "release", Executor(kind="local"))
        bodies = list(stub.state.bodies)
    samples = {task: entry["samples"] for task, entry in release_stats(work / "release")["tasks"].items()}
    by_stage: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for body in bodies:
        by_stage[schema_of(body)].append(body)
    stages = {}
    for schema, group in by_stage.items():
        stage, annotator = STAGE_OF[schema]
        images = sum(1 for b in group for m in b["messages"] if not isinstance(m["content"], str)
                     for p in m["content"] if p["type"] == "image_url")
        text = sum(len(t) for b in group for t in texts_of(b)) // 4
        made = samples.get(TASK_OF[annotator], 0)
        per = 1000 / made if made else 0.0
        stages[stage] = {"annotator": annotator, "task": TASK_OF[annotator], "samples": made, "requests": len(group),
                         "images": images, "image_tokens": 85 * images, "text_tokens": text,
                         "per_1000_samples": {"requests": len(group) * per, "image_tokens": 85 * images * per,
                                              "text_tokens": text * per},
                         "prefix_share": prefix_share(group)}
    narration = sorted((r["video_id"], json.dumps(r["responses"])) for r in _rows(work / "release", "narration"))
    return {"windows_per_request": per_request, "samples": samples, "stages": stages, "narration": narration}


def _rows(release: Path, task: str) -> list[dict[str, Any]]:
    from streamo_data.store.manifest import read_manifest
    from streamo_data.store.tables import iter_rows

    return [row for shard in read_manifest(release).shards if shard.task == task
            for row in iter_rows(release / shard.path)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--windows-per-request", type=int, nargs="+", default=[5, 10])
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    videos = make_videos(Path(__file__).parent / "_work" / "mixture_llm" / "videos", args.videos)
    listed = sorted(videos.glob("*.mp4"))[:args.videos]
    chosen = WORK / "videos"
    shutil.rmtree(chosen, ignore_errors=True)
    chosen.mkdir(parents=True)
    for path in listed:
        os.link(path, chosen / path.name)
    runs = [run(chosen, n, WORK / f"n{n}") for n in [1, *args.windows_per_request]]
    paper = runs[0]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "llm_tokens.json").write_text(json.dumps([{k: v for k, v in r.items() if k != "narration"}
                                                         for r in runs], indent=2))
    print(f"{args.videos} videos; samples per task: {paper['samples']}\n")
    print("| narration windows a request | stage | requests | images | image tokens | text tokens |"
          " per 1,000 samples: requests | image tokens | text tokens | shared prefix |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        for stage, s in sorted(r["stages"].items(), key=lambda kv: (kv[1]["annotator"], kv[0])):
            p = s["per_1000_samples"]
            print(f"| {r['windows_per_request']} | {stage} | {s['requests']:,} | {s['images']:,}"
                  f" | {s['image_tokens']:,} | {s['text_tokens']:,} | {p['requests']:,.0f}"
                  f" | {p['image_tokens']:,.0f} | {p['text_tokens']:,.0f}"
                  f" | {s['prefix_share']:.0%} |")
    print()
    first = paper["stages"]["narration_window"]
    for r in runs[1:]:
        ours = r["stages"]["narration_windows"]
        same = "the same narration" if r["narration"] == paper["narration"] else "A DIFFERENT NARRATION"
        print(f"narration, {r['windows_per_request']} windows a request against one: requests"
              f" {ours['requests'] / first['requests']:.2f}x, images {ours['images'] / first['images']:.2f}x,"
              f" text tokens {ours['text_tokens'] / first['text_tokens']:.2f}x, all input tokens"
              f" {(ours['images'] * 85 + ours['text_tokens']) / (first['images'] * 85 + first['text_tokens']):.2f}x;"
              f" {same} ({len(r['narration'])} samples)")


if __name__ == "__main__":
    main()
