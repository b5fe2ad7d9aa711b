"""A release as untrusted input and as earlier work: a downloaded manifest cannot send readers or writers
outside the release, and a re-release that dies before its manifest leaves the earlier release whole."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from datasets import load_dataset
from typer.testing import CliRunner

import streamo_data.release.write as release_module
from streamo_data.cli import app
from streamo_data.core.errors import UserError
from streamo_data.release.validate import validate_release
from streamo_data.release.write import PENDING, write_release
from streamo_data.runtime.runner import Executor
from streamo_data.store.manifest import read_manifest
from streamo_data.store.workdir import SAMPLES

LOCAL = Executor(kind="local")


@pytest.fixture()
def release(work_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "release"
    write_release(work_dir / SAMPLES, out, rows_per_shard=3)
    return out


def rewrite_manifest(release: Path, change: dict[str, object], index: int = 0) -> None:
    manifest = json.loads((release / "manifest.json").read_text())
    manifest["shards"][index].update(change)
    (release / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("change", [
    {"split": "x/../../../../escaped/train"},
    {"split": ".."},
    {"task": "../../elsewhere"},
    {"path": "/etc/passwd"},
    {"path": "data/../../outside.parquet"},
    {"path": "data/temporal_grounding/../../../x.parquet"},
])
def test_a_manifest_naming_paths_outside_the_release_is_refused(release: Path, change: dict[str, object]) -> None:
    rewrite_manifest(release, change)
    with pytest.raises(UserError, match="not a release manifest"):
        read_manifest(release)


def test_export_raw_and_validate_refuse_a_traversing_split(release: Path, tmp_path: Path) -> None:
    rewrite_manifest(release, {"split": "x/../../../escaped/train"})
    runner = CliRunner()
    exported = runner.invoke(app, ["export", "raw", str(release), "--out", str(tmp_path / "out")])
    assert exported.exit_code == 2 and "not a release manifest" in exported.output, exported.output
    assert not (tmp_path / "escaped").exists()
    checked = runner.invoke(app, ["validate", str(release)])
    assert checked.exit_code == 2 and "Traceback" not in checked.output, checked.output


def test_a_shard_path_into_another_release_is_refused(release: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(release, other)
    first = read_manifest(release).shards[0].path
    os.remove(release / first)
    rewrite_manifest(release, {"path": str((other / first).resolve())})
    checked = CliRunner().invoke(app, ["validate", str(release)])
    assert checked.exit_code != 0 and "not a release manifest" in checked.output, checked.output


def test_a_re_release_killed_before_its_manifest_leaves_the_earlier_release(
        work_dir: Path, release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = read_manifest(release)
    before_bytes = {shard.path: (release / shard.path).read_bytes() for shard in before.shards}

    def killed(*_: object) -> None:
        raise KeyboardInterrupt("killed after the new shards, before the new manifest")

    monkeypatch.setattr(release_module, "publish", killed)
    with pytest.raises(KeyboardInterrupt):
        write_release(work_dir / SAMPLES, release, rows_per_shard=2, seed=7)
    assert (release / PENDING).exists()  # the new shards are there, named as pending
    assert read_manifest(release) == before
    assert {shard.path: (release / shard.path).read_bytes() for shard in before.shards} == before_bytes
    report = validate_release(release)
    assert report.ok, report.invalid
    loaded = load_dataset(str(release), cache_dir=str(tmp_path / "hf"))
    assert sum(split.num_rows for split in loaded.values()) == before.num_samples  # the card names its files

    monkeypatch.undo()
    after = write_release(work_dir / SAMPLES, release, rows_per_shard=2, seed=7)
    assert not (release / PENDING).exists()
    on_disk = sorted(p.relative_to(release).as_posix() for p in (release / "data").rglob("*.parquet"))
    assert on_disk == sorted(shard.path for shard in after.shards)
    assert validate_release(release).ok


def test_a_rerun_after_a_killed_re_release_removes_its_leftovers(
        work_dir: Path, release: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(release_module, "publish", lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        write_release(work_dir / SAMPLES, release, rows_per_shard=1, seed=3)
    leftovers = json.loads((release / PENDING).read_text())
    monkeypatch.undo()
    manifest = write_release(work_dir / SAMPLES, release, rows_per_shard=3)
    kept = {shard.path for shard in manifest.shards}
    assert not [path for path in leftovers if path not in kept and (release / path).exists()]
