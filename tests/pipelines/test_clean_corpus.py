"""A clean corpus: a mixture built with defaults holds no held-out video of any source, one built with
``decontaminate:`` holds no benchmark video in any split, and ``streamo audit --benchmark`` finds each
planted overlap by id (exit 1 while a train sample is on one, 0 once decontaminated)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.core.video_identity import video_stem
from streamo_data.pipelines.mixture import MixtureConfig, run_mixture
from streamo_data.runtime.runner import Executor
from streamo_data.sources.sample_sources import write_mixture
from streamo_data.store.manifest import read_manifest

ROOT = Path(__file__).resolve().parents[2]
FRACTION = 0.002
LOCAL = Executor(kind="local")


def release_videos(release: Path) -> dict[str, set[str]]:
    """split -> the video stems of every sample in it."""
    found: dict[str, set[str]] = {}
    for shard in read_manifest(release).shards:
        paths = pq.read_table(release / shard.path, columns=["video_path"])["video_path"].to_pylist()
        found.setdefault(shard.split, set()).update(video_stem(p) for p in paths)
    return found


@pytest.fixture(scope="module")
def held_out_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clean")
    write_mixture(folder, FRACTION, ROOT / "pipelines" / "public_annotations.yaml", held_out=True)
    return folder


def held_out_ids(folder: Path) -> set[str]:
    coin = json.loads((folder / "annotations" / "COIN.json").read_text())["database"]
    youcook2 = json.loads((folder / "annotations" / "youcookii_annotations_trainval.json").read_text())["database"]
    return ({video for video, entry in coin.items() if entry["subset"] == "testing"}
            | {video for video, entry in youcook2.items() if entry["subset"] == "validation"})


def test_a_default_build_has_no_held_out_video(held_out_sources: Path, tmp_path: Path) -> None:
    held = held_out_ids(held_out_sources)
    assert held  # the files do hold testing and validation videos
    config = MixtureConfig.load(held_out_sources / "mixture.yaml")
    run_mixture(config, tmp_path / "work", tmp_path / "release", LOCAL)
    used = set().union(*release_videos(tmp_path / "release").values())
    assert not used & held
    assert used  # and it did build from the training videos
    coin = json.loads((tmp_path / "work" / "sources" / "coin" / "recipe_report.json").read_text())
    assert coin["subsets"] == ["training"]
    assert sum(n for reason, n in coin["skipped"].items() if reason.startswith("subset testing")) > 0


def test_decontaminate_removes_every_benchmark_video_and_audit_finds_them(held_out_sources: Path,
                                                                          tmp_path: Path) -> None:
    config_path = held_out_sources / "mixture.yaml"
    run_mixture(MixtureConfig.load(config_path), tmp_path / "work", tmp_path / "dirty", LOCAL)
    dirty = release_videos(tmp_path / "dirty")
    # a benchmark that uses three training videos of the corpus, named as a benchmark names them
    planted = sorted(dirty["train"])[:3]
    benchmark = tmp_path / "benchmark_videos.txt"
    benchmark.write_text("# video ids\n" + "".join(f"some/folder/{stem}.mp4\n" for stem in planted))

    found = CliRunner().invoke(app, ["audit", str(tmp_path / "dirty"), "--benchmark", str(benchmark), "--json",
                                     str(tmp_path / "audit.json")], env={"COLUMNS": "250"})
    assert found.exit_code == 1, found.output
    report = json.loads((tmp_path / "audit.json").read_text())[0]
    ids = {i for entry in report["by_corpus_source"] for i in entry["ids"]}
    assert ids == set(planted)
    assert report["train_samples_overlapping"] > 0

    raw = yaml.safe_load(config_path.read_text())
    raw["decontaminate"] = [str(benchmark)]
    clean_config = held_out_sources / "clean.yaml"  # beside the sources: its paths are relative to it
    clean_config.write_text(yaml.safe_dump(raw))
    result = run_mixture(MixtureConfig.load(clean_config), tmp_path / "work", tmp_path / "clean", LOCAL)
    clean = release_videos(tmp_path / "clean")
    assert not set().union(*clean.values()) & set(planted)
    [entry] = result.manifest.decontamination
    assert sum(entry.corpus_videos.values()) == len(planted)
    assert sum(entry.candidates_removed.values()) > 0
    assert "Splits and contamination" in (tmp_path / "clean" / "README.md").read_text()
    report_file = json.loads((tmp_path / "work" / "build_report.json").read_text())
    assert report_file["decontamination"][0]["corpus_videos"] == entry.corpus_videos
    passed = CliRunner().invoke(app, ["audit", str(tmp_path / "clean"), "--benchmark", str(benchmark)],
                                env={"COLUMNS": "250"})
    assert passed.exit_code == 0, passed.output


def test_an_ovo_bench_file_removes_its_coin_youcook2_and_charades_videos(held_out_sources: Path,
                                                                        tmp_path: Path) -> None:
    """OVO-Bench names COIN/<id>.mp4, youcook2/<id>.mp4 and star/<charades id>.mp4: matched by id."""
    raw = yaml.safe_load((held_out_sources / "mixture.yaml").read_text())
    raw["decontaminate"] = [str(ROOT / "tests" / "fixtures" / "benchmarks" / "ovo_bench_new.json")]
    config = held_out_sources / "ovo.yaml"
    config.write_text(yaml.safe_dump(raw))
    result = run_mixture(MixtureConfig.load(config), tmp_path / "work", tmp_path / "release", LOCAL)
    used = set().union(*release_videos(tmp_path / "release").values())
    assert not used & {"coin0000001", "coin0000002", "yc0000003", "CH000004"}
    [entry] = result.manifest.decontamination
    assert entry.benchmark == "ovo-bench"
    assert entry.corpus_videos == {"charades": 1, "coin": 2, "youcook2": 1}
