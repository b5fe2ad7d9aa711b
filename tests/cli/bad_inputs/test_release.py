"""Bad input to `streamo release`, `validate` and `stats`: one line naming the item and the reason, exit
code 2, no traceback, and nothing written over earlier work."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from streamo_data.release.validate import validate_release
from streamo_data.store.manifest import read_manifest
from streamo_data.store.workdir import SAMPLES
from tests.cli.bad_inputs.parts import assert_one_line, invoke, truncate


@pytest.mark.parametrize(("option", "value"), [("--rows-per-shard", "0"), ("--rows-per-shard", "-5"),
                                               ("--validation-fraction", "1.5"), ("--validation-fraction", "-0.1"),
                                               ("--validation-fraction", "nan")])
def test_release_refuses_nonsense_numbers_before_writing(work_dir: Path, tmp_path: Path, option: str,
                                                         value: str) -> None:
    out = tmp_path / "release"
    assert_one_line(invoke("release", work_dir, "--out", out, option, value), option, value)
    assert not out.exists()


def test_release_from_corrupt_samples_names_the_file(work_copy: Path, tmp_path: Path) -> None:
    truncate(work_copy / SAMPLES)
    assert_one_line(invoke("release", work_copy, "--out", tmp_path / "r"), SAMPLES)


@pytest.mark.parametrize("command", ["validate", "stats"])
def test_a_folder_that_is_not_a_release(command: str, tmp_path: Path) -> None:
    assert_one_line(invoke(command, tmp_path), str(tmp_path), "manifest.json")


def test_a_corrupt_manifest_is_one_line(release_copy: Path) -> None:
    (release_copy / "manifest.json").write_text("{not json", encoding="utf-8")
    for command in ("validate", "stats"):
        assert_one_line(invoke(command, release_copy), "manifest.json")


def test_validate_reports_a_shard_with_a_corrupt_footer_as_a_problem(release_copy: Path) -> None:
    shard = read_manifest(release_copy).shards[0].path
    truncate(release_copy / shard)
    result = invoke("validate", release_copy)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "not a readable Parquet file" in result.output and shard in result.output


def test_stats_on_a_corrupt_shard_names_it(release_copy: Path) -> None:
    shard = read_manifest(release_copy).shards[0].path
    truncate(release_copy / shard)
    assert_one_line(invoke("stats", release_copy), shard)


def test_validate_reports_parquet_files_the_manifest_does_not_list(release_copy: Path) -> None:
    """`load_dataset` reads every data/<task>/<split>-*.parquet: an unlisted one is part of the data."""
    shard = read_manifest(release_copy).shards[0]
    extra = (release_copy / shard.path).with_name(f"{shard.split}-00099-of-00099.parquet")
    shutil.copy(release_copy / shard.path, extra)
    assert not validate_release(release_copy).ok
    result = invoke("validate", release_copy)
    assert result.exit_code == 1 and extra.relative_to(release_copy).as_posix() in result.output, result.output
    assert "not listed in manifest.json" in result.output


def test_release_into_a_folder_of_other_files_is_refused(work_dir: Path, tmp_path: Path) -> None:
    """Writing a release removes unlisted Parquet files under data/: never in a folder that is not a release."""
    own = tmp_path / "mine"
    (own / "data" / "x").mkdir(parents=True)
    (own / "data" / "x" / "train-keep.parquet").write_bytes(b"mine")
    (own / "notes.txt").write_text("mine", encoding="utf-8")
    assert_one_line(invoke("release", work_dir, "--out", own), "notes.txt")
    assert (own / "data" / "x" / "train-keep.parquet").read_bytes() == b"mine"
    assert_one_line(invoke("release", work_dir, "--out", own / "notes.txt"), "is a file")
    assert_one_line(invoke("schemas", "--out", own / "notes.txt"), "is a file")


def test_a_release_can_be_rewritten_in_place(release_copy: Path, work_dir: Path) -> None:
    result = invoke("release", work_dir, "--out", release_copy)
    assert result.exit_code == 0 and validate_release(release_copy).ok, result.output

