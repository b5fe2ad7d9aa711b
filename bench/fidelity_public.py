"""Fidelity to the paper's corpus: the task shares and state ratio that the public-annotation build reaches,
what the LLM stages give, and a release that mixes both, each beside the paper's figures.

Usage: python bench/fidelity_public.py [--fraction 0.1] [--mixed-fraction 0.01] [--num-cpus 2]
(run bench/mixture_llm.py first for the LLM parts; without it only the public build is measured)

1. public: synthetic files in the sources' published formats (streamo_data/sources/sample_sources.write_mixture) with
   the quotas of pipelines/public_annotations.yaml scaled by ``--fraction``, built with `streamo build
   --config`.
2. llm: the release of bench/mixture_llm.py's first build (four LLM pipelines over synthetic videos; the stub
   answers by contract, so its figures are those of the pipelines' shapes, not of a real model's content).
3. mixed: the public sources at ``--mixed-fraction`` plus that LLM source, quotas at the paper's task shares
   (pipelines/streamo_instruct.yaml) scaled to the same fraction, each task's sources those of
   public_annotations.yaml plus its LLM annotator. Its LLM requests are answered from bench/mixture_llm.py's
   cache (copied), so the stub should receive none; the count is reported.
Every figure is `streamo stats --json`'s ``fidelity``. Results go to bench/results/fidelity_public.json and to
stdout as Markdown.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from mixture_llm import LLM_TASKS, Stub, run_build  # noqa: E402

from streamo_data.corpus.fidelity import PAPER_STATE_RATIO, PAPER_TASK_SHARES, STATES  # noqa: E402
from streamo_data.sources.sample_sources import write_mixture  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(__file__).parent / "_work" / "fidelity"
LLM_WORK = Path(__file__).parent / "_work" / "mixture_llm"
RESULTS = Path(__file__).parent / "results"


def stats(release: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "streamo_data.cli", "stats", str(release), "--json"],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def summary(result: dict[str, Any], build_s: float) -> dict[str, Any]:
    fid = result["fidelity"]
    return {"samples": result["samples"], "build_s": round(build_s, 1),
            "task_share": {task: row["share"] for task, row in fid["shares"].items()},
            "state_share": {state: row["share"] for state, row in fid["state_share"].items()},
            "state_ratio": fid["state_ratio"]["ours"],
            "responses_per_sample": fid["responses_per_sample"]["ours"],
            "fidelity": fid}


def public(fraction: float, num_cpus: int) -> dict[str, Any]:
    folder = WORK / "public"
    shutil.rmtree(folder, ignore_errors=True)
    config = write_mixture(folder, fraction, ROOT / "pipelines" / "public_annotations.yaml")
    build_s, _ = run_build(config, folder / "work", folder / "release", num_cpus)
    return summary(stats(folder / "release"), build_s)


def mixed(fraction: float, num_cpus: int) -> dict[str, Any]:
    """Public sources and the LLM source under the paper's task shares; LLM replies from the cache."""
    folder = WORK / "mixed"
    shutil.rmtree(folder, ignore_errors=True)
    config_path = write_mixture(folder, fraction, ROOT / "pipelines" / "public_annotations.yaml")
    config = yaml.safe_load(config_path.read_text())
    llm_config = yaml.safe_load((LLM_WORK / "mixture.yaml").read_text())
    clips = llm_config["sources"][0]  # the same endpoint URL as the cached replies were made with
    config["name"] = "synthetic-mixed"
    config["sources"].append(clips)
    paper = yaml.safe_load((ROOT / "pipelines" / "streamo_instruct.yaml").read_text())["tasks"]
    for task, entry in config["tasks"].items():
        entry["quota"] = int(paper[task]["quota"] * fraction)
        if task in LLM_TASKS and entry.get("sources"):
            entry["sources"] = [*entry["sources"], LLM_TASKS[task]]
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    work = folder / "work"
    work.mkdir(parents=True)
    shutil.copytree(LLM_WORK / "first" / "work" / "llm_cache", work / "llm_cache")
    port = int(clips["annotators"][0]["base_url"].rsplit(":", 1)[1].split("/")[0])
    service_time = json.loads((RESULTS / "mixture_llm.json").read_text())["service_time_s"]
    stub = Stub(port, service_time, folder / "stub.log")
    try:
        build_s, _ = run_build(config_path, work, folder / "release", num_cpus)
        received = sum(1 for e in stub.entries() if e[0] == "arrive")
    finally:
        stub.stop()
    result = stats(folder / "release")
    out = summary(result, build_s)
    out["llm_requests_received"] = received
    out["llm_samples"] = sum(count for task in result["tasks"].values()
                             for source, count in task["sources"].items() if source.startswith("clips:"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--mixed-fraction", type=float, default=0.01)
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args()

    started = time.perf_counter()
    results: dict[str, Any] = {"fraction": args.fraction, "mixed_fraction": args.mixed_fraction,
                               "public": public(args.fraction, args.num_cpus)}
    if (LLM_WORK / "first" / "release" / "manifest.json").exists():
        results["llm"] = summary(stats(LLM_WORK / "first" / "release"), 0.0)
        results["mixed"] = mixed(args.mixed_fraction, args.num_cpus)
    else:
        print("no bench/_work/mixture_llm release: run bench/mixture_llm.py for the LLM parts", file=sys.stderr)
    results["total_s"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fidelity_public.json").write_text(json.dumps(results, indent=2))
    print_markdown(results)


def print_markdown(results: dict[str, Any]) -> None:
    names = [name for name in ("public", "llm", "mixed") if name in results]
    heads = {"public": f"public build ({results['fraction']:.0%})", "llm": "LLM stages only",
             "mixed": f"mixed ({results['mixed_fraction']:.0%}, paper quotas)"}
    print("| | paper | " + " | ".join(heads[n] for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    print("| samples | 465,800 | " + " | ".join(f"{results[n]['samples']:,}" for n in names) + " |")
    for task, paper in PAPER_TASK_SHARES.items():
        print(f"| {task} | {paper:.1%} | " + " | ".join(f"{results[n]['task_share'].get(task, 0):.1%}"
                                                       for n in names) + " |")
    for state in STATES:
        print(f"| {state} | {PAPER_STATE_RATIO[STATES.index(state)] / 17:.1%} | "
              + " | ".join(f"{results[n]['state_share'][state]:.1%}" for n in names) + " |")
    print("| Silence:Standby:Response (of 17) | 12:3:2 | " + " | ".join(results[n]["state_ratio"] for n in names)
          + " |")
    print("| responses per sample | n/a | " + " | ".join(f"{results[n]['responses_per_sample']:.2f}" for n in names)
          + " |")
    if "mixed" in results:
        print(f"\nmixed: {results['mixed']['llm_samples']} samples from the LLM source,"
              f" {results['mixed']['llm_requests_received']} LLM requests received (all from the cache)")


if __name__ == "__main__":
    main()
