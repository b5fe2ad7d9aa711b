"""The mixture build: exact seeded quotas, split by video, the same bytes on Ray and in-process, and a
build killed at a random point (SIGKILL) that resumes to exactly the release of an uninterrupted run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from datasets import load_dataset

from streamo_data.pipelines.mixture import MixtureConfig, run_mixture
from streamo_data.release.stats import release_stats
from streamo_data.release.validate import validate_release
from streamo_data.runtime.runner import Executor
from streamo_data.sources.sample_sources import write_mixture
from streamo_data.store.manifest import read_manifest
from streamo_data.store.tables import iter_rows

ROOT = Path(__file__).resolve().parents[2]
SMALL = Path(__file__).resolve().parents[1] / "fixtures" / "mixture_small.yaml"
LOCAL = Executor(kind="local")


def shards(release: Path) -> list[tuple[str, int, str]]:
    return [(s.path, s.num_rows, s.sha256) for s in read_manifest(release).shards]


def sample_ids(release: Path) -> list[str]:
    return [row["sample_id"] for s in read_manifest(release).shards for row in iter_rows(release / s.path)]


def test_the_reference_config_declares_465k_samples_over_six_tasks() -> None:
    raw = yaml.safe_load((ROOT / "pipelines" / "streamo_instruct.yaml").read_text())
    assert sum(task["quota"] for task in raw["tasks"].values()) == 465_000
    assert len(raw["tasks"]) == 6


def test_small_mixture_meets_its_quotas_and_loads(tmp_path: Path) -> None:
    config = MixtureConfig.load(SMALL)
    result = run_mixture(config, tmp_path / "work", tmp_path / "release", LOCAL)
    release = tmp_path / "release"
    assert validate_release(release).ok

    stats = release_stats(release)
    for task, quota in config.targets.items():
        built = stats["tasks"][task]["samples"]
        assert built == min(quota, result.candidates[task]), (task, built, quota, result.candidates[task])
        assert stats["tasks"][task]["target"] == quota
    assert stats["tasks"]["action_captioning"]["sources"].keys() <= {"charades", "youcook2", "coin"}

    everything = load_dataset(str(release), cache_dir=str(tmp_path / "hf"))
    assert sum(split.num_rows for split in everything.values()) == stats["samples"]
    train = {row["video_id"] for row in everything["train"]}
    assert not train & {row["video_id"] for row in everything["validation"]}
    for task in config.targets:
        assert load_dataset(str(release), task, split="train", cache_dir=str(tmp_path / "hf")).num_rows > 0


def test_same_seed_same_release_other_seed_other_choice(tmp_path: Path) -> None:
    config = MixtureConfig.load(SMALL)
    run_mixture(config, tmp_path / "a", tmp_path / "ra", LOCAL)
    run_mixture(config, tmp_path / "b", tmp_path / "rb", LOCAL)
    assert shards(tmp_path / "ra") == shards(tmp_path / "rb")
    reseeded = config.model_copy(update={"seed": config.seed + 1})
    run_mixture(reseeded, tmp_path / "c", tmp_path / "rc", LOCAL)
    assert set(sample_ids(tmp_path / "rc")) != set(sample_ids(tmp_path / "ra"))


def test_ray_builds_the_same_bytes_as_in_process(tmp_path: Path) -> None:
    import ray

    config = MixtureConfig.load(SMALL)
    run_mixture(config, tmp_path / "local", tmp_path / "rl", LOCAL)
    try:
        run_mixture(config, tmp_path / "ray", tmp_path / "rr", Executor(kind="ray", num_cpus=2))
    finally:
        ray.shutdown()
    assert shards(tmp_path / "rl") == shards(tmp_path / "rr")


def test_a_changed_config_rebuilds_instead_of_mixing_old_parts(tmp_path: Path) -> None:
    config = MixtureConfig.load(SMALL)
    run_mixture(config, tmp_path / "work", tmp_path / "release", LOCAL)
    smaller = config.model_copy(update={"tasks": {**config.tasks, "offline_qa": config.tasks["offline_qa"]
                                                  .model_copy(update={"quota": 2})}})
    result = run_mixture(smaller, tmp_path / "work", tmp_path / "release", LOCAL)
    assert result.resumed_batches == 0
    assert release_stats(tmp_path / "release")["tasks"]["offline_qa"]["samples"] == 2


def test_config_errors_name_the_problem(tmp_path: Path) -> None:
    raw = yaml.safe_load(SMALL.read_text())
    raw["tasks"]["juggling"] = {"quota": 1}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="unknown task"):
        MixtureConfig.load(tmp_path / "bad.yaml")
    raw = yaml.safe_load(SMALL.read_text())
    raw["sources"][0]["annotations"] = "missing.json"
    (tmp_path / "fixtures").mkdir()
    (tmp_path / "fixtures" / "bad.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="source activitynet: annotations .*missing.json does not exist"):
        MixtureConfig.load(tmp_path / "fixtures" / "bad.yaml")


def _build_command(config: Path, work: Path, release: Path) -> list[str]:
    return [sys.executable, "-m", "streamo_data.cli", "build", str(work), "--config", str(config), "--out",
            str(release), "--executor", "local"]


def test_sigkill_at_a_random_point_then_resume_gives_the_same_release(tmp_path: Path) -> None:
    config = write_mixture(tmp_path / "data", 0.004, ROOT / "pipelines" / "public_annotations.yaml",
                           videos_per_batch=8, rows_per_shard=500)
    env = {**os.environ, "COLUMNS": "120"}

    started = time.monotonic()
    subprocess.run(_build_command(config, tmp_path / "w0", tmp_path / "r0"), check=True, env=env,
                   capture_output=True)
    uninterrupted = time.monotonic() - started
    reference_shards, reference_ids = shards(tmp_path / "r0"), sample_ids(tmp_path / "r0")
    assert len(reference_ids) > 1000

    rng = random.Random(20261124)
    killed_midway = 0
    for attempt in range(3):
        work, release = tmp_path / f"w{attempt + 1}", tmp_path / f"r{attempt + 1}"
        process = subprocess.Popen(_build_command(config, work, release), env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 0.9) * uninterrupted)
        process.send_signal(signal.SIGKILL)
        killed_midway += process.wait() == -signal.SIGKILL
        done = subprocess.run(_build_command(config, work, release), env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        assert shards(release) == reference_shards
        assert sample_ids(release) == reference_ids
        assert not list(release.rglob("*.tmp")) and not (release / ".staging").exists()
        assert json.loads((release / "manifest.json").read_text())["num_samples"] == len(reference_ids)
    assert killed_midway >= 2, "the kills should land while the build is still running"


def _edge_mixture(tmp_path: Path, seed: int) -> MixtureConfig:
    """Six videos; grounding queries spelt twice ("light goes out" / "Light goes out."), events ending
    with the video, one in the tail after the last frame; offline QA only on one video."""
    lines = []
    for k in range(6):
        video = f"home/{k}.mp4"
        lines += [{"video": video, "start": 1, "end": 4, "text": f"light goes out {k}", "duration": 20.5},
                  {"video": video, "start": 1, "end": 4, "text": f"Light goes out {k}.", "duration": 20.5},
                  {"video": video, "start": 12, "end": 20.5, "text": f"door closes {k}", "duration": 20.5},
                  {"video": video, "start": 20.2, "end": 20.5, "text": f"tail only {k}", "duration": 20.5}]
    qa = {"video": "home/5.mp4", "start": 2, "end": 6, "text": "Who enters?", "kind": "qa", "answer": "A cat.",
          "duration": 20.5}
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (tmp_path / "qa.jsonl").write_text(json.dumps(qa) + "\n")
    config = {"name": "edges", "seed": seed, "validation_fraction": 0.5, "videos_per_batch": 2,
              "sources": [{"name": "home", "recipe": "generic", "annotations": "events.jsonl"},
                          {"name": "qa", "recipe": "generic", "annotations": "qa.jsonl"}],
              "tasks": {"temporal_grounding": {"quota": 12}, "offline_qa": {"quota": 5, "sources": ["qa"]},
                        "dense_captioning": {"quota": 6}}}
    (tmp_path / "edges.yaml").write_text(yaml.safe_dump(config))
    return MixtureConfig.load(tmp_path / "edges.yaml")


@pytest.mark.parametrize("seed", range(4))
def test_quotas_are_exact_and_no_task_is_all_validation(tmp_path: Path, seed: int) -> None:
    config = _edge_mixture(tmp_path, seed)
    result = run_mixture(config, tmp_path / "work", tmp_path / "release", LOCAL)
    stats = release_stats(tmp_path / "release")
    # 2 distinct queries a video (two spellings are one), each answered; the tail event never shown
    assert {task: stats["tasks"][task]["samples"] for task in config.targets} == {
        "temporal_grounding": 12, "offline_qa": 1, "dense_captioning": 6}
    assert result.duplicates == 0
    assert result.rejects == {"events: evidence starts after the last sampled frame: the stream never shows it": 6}
    for task in config.targets:
        assert stats["tasks"][task]["train"] > 0, (task, stats["tasks"][task])
    questions = [row["questions"][0]["content"].lower() for row in _rows(tmp_path / "release", "temporal_grounding")]
    for k in range(6):
        assert sum(f"light goes out {k}" in q for q in questions) == 1  # two spellings, one sample
        assert sum(f"door closes {k}" in q for q in questions) == 1  # ends with the video: kept


def _rows(release: Path, task: str) -> list[dict]:
    return [row for s in read_manifest(release).shards if s.task == task for row in iter_rows(release / s.path)]
