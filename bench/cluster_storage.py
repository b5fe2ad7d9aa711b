"""The same mixture built on a Ray cluster of 1 node vs 2 nodes (each node capped to one CPU), and with
its work dir and release on local disk vs on an S3-compatible object store on loopback (moto).

Usage: python bench/cluster_storage.py [--fraction 0.01] [--videos-per-batch 8]

Each configuration gets a fresh cluster (``ray start --head`` plus ``ray start --address=...`` on this
machine, see tests/cluster_parts.py) and runs ``streamo build --config ... --address ...`` as a
subprocess; the wall time is the build's alone (not the cluster's start). Memory is the peak, over the
run, of the summed PSS of each node's processes (its raylet and everything it started; the head also
counts its GCS), and of the driver, sampled every 0.25 s. Each release is checked to hold the same
shard checksums as the first. Results go to bench/results/cluster_storage.json and to stdout as a
Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamo_data.sources.sample_sources import write_mixture  # noqa: E402
from tests.cluster_parts import RayCluster, s3_server  # noqa: E402

WORK = Path(__file__).parent / "_work" / "cluster"
RESULTS = Path(__file__).parent / "results"
MIB = 1024 * 1024
# the last state of a stage's progress bar: "plan ━━━━ 62/62 0:00:26 0:00:00" (elapsed, then remaining)
STAGE_LINE = re.compile(r"^(?P<stage>recipes|plan|build) .*? \d+/\d+ (?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d) ", re.M)


def pss(processes: list[psutil.Process]) -> int:
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += process.memory_full_info().pss
    return total


def head_extras(cluster: RayCluster) -> list[psutil.Process]:
    """The head's processes outside its raylet's tree (the GCS), found by the cluster's folder."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        argv = process.info["cmdline"] or []
        if argv and os.path.basename(argv[0]) == "gcs_server" and any(str(cluster.folder) in a for a in argv):
            found.append(process)
    return found


def run(cluster: RayCluster, config: Path, work: str, release: str, env: dict[str, str]) -> dict:
    command = [sys.executable, "-m", "streamo_data.cli", "build", work, "--config", str(config), "--out", release,
               "--address", cluster.address]
    peaks = {node.name: 0 for node in cluster.nodes} | {"driver": 0}
    start = time.perf_counter()
    process = subprocess.Popen(command, env={**env, "COLUMNS": "120"}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    driver = psutil.Process(process.pid)

    def sample() -> None:
        while process.poll() is None:
            for node in cluster.nodes:
                extra = head_extras(cluster) if node.head else []
                peaks[node.name] = max(peaks[node.name], pss(node.processes() + extra))
            with contextlib.suppress(psutil.NoSuchProcess):
                peaks["driver"] = max(peaks["driver"], pss([driver, *driver.children(recursive=True)]))
            time.sleep(0.25)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    output, _ = process.communicate()
    wall = time.perf_counter() - start
    thread.join()
    if process.returncode != 0:
        raise SystemExit(f"build failed:\n{output}")
    stages = {m["stage"]: int(m["h"]) * 3600 + int(m["m"]) * 60 + int(m["s"]) for m in STAGE_LINE.finditer(output)}
    return {"wall_s": round(wall, 1), "stage_s": stages, "peak_mib": {k: round(v / MIB) for k, v in peaks.items()}}


def shard_sums(release: str) -> list[tuple[str, str]]:
    import fsspec

    with fsspec.open(release.rstrip("/") + "/manifest.json", "rt") as handle:
        manifest = json.load(handle)
    return [(s["path"], s["sha256"]) for s in manifest["shards"]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fraction", type=float, default=0.01)
    parser.add_argument("--videos-per-batch", type=int, default=8)
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    config = write_mixture(WORK / "sources", args.fraction, ROOT / "pipelines" / "public_annotations.yaml",
                           videos_per_batch=args.videos_per_batch, rows_per_shard=5000)
    results = {}
    with s3_server(buckets=("streamo-bench",)) as s3:
        os.environ.update(s3)  # for reading the S3 manifests back here
        env = {**os.environ, **s3}
        runs = [("1 node, local disk", 0, "local"), ("2 nodes, local disk", 1, "local"),
                ("1 node, object store", 0, "s3"), ("2 nodes, object store", 1, "s3")]
        for label, workers, storage in runs:
            key = label.replace(" ", "_").replace(",", "")
            if storage == "s3":
                work, release = f"s3://streamo-bench/{key}/work", f"s3://streamo-bench/{key}/release"
            else:
                work, release = str(WORK / key / "work"), str(WORK / key / "release")
            with RayCluster(env).start(workers=workers) as cluster:
                results[label] = run(cluster, config, work, release, env)
            results[label]["shards"] = shard_sums(release)
            print(label, {k: v for k, v in results[label].items() if k != "shards"}, flush=True)
    first = results["1 node, local disk"]["shards"]
    assert all(r["shards"] == first for r in results.values()), "every configuration must build the same shards"
    samples = json.loads((WORK / "1_node_local_disk" / "release" / "manifest.json").read_text())["num_samples"]
    for r in results.values():
        r.pop("shards")
    def ratio(slow: str, fast: str) -> float:
        return round(results[slow]["wall_s"] / results[fast]["wall_s"], 2)

    summary = {
        "fraction": args.fraction, "samples": samples, "runs": results,
        "speedup_2_nodes_local": ratio("1 node, local disk", "2 nodes, local disk"),
        "speedup_2_nodes_object_store": ratio("1 node, object store", "2 nodes, object store"),
        "object_store_over_local_2_nodes": ratio("2 nodes, object store", "2 nodes, local disk"),
        "object_store_over_local_1_node": ratio("1 node, object store", "1 node, local disk"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cluster_storage.json").write_text(json.dumps(summary, indent=2))
    print(f"\n{samples} samples (fraction {args.fraction}), each node capped to 1 CPU\n")
    print("| run | wall (s) | plan + build stages (s) | peak PSS head (MiB) | peak PSS worker (MiB) |"
          " peak PSS driver (MiB) |")
    print("|---|---|---|---|---|---|")
    for label, r in results.items():
        peak = r["peak_mib"]
        worker = peak.get("worker_node_0", "-")
        staged = r["stage_s"].get("plan", 0) + r["stage_s"].get("build", 0)
        print(f"| {label} | {r['wall_s']} | {staged} | {peak['head_node']} | {worker} | {peak['driver']} |")
    print(json.dumps({k: v for k, v in summary.items() if k not in ("runs",)}, indent=2))


if __name__ == "__main__":
    main()
