"""Bad input to `streamo build`: one line naming the item and the reason, exit code 2, no traceback, and
nothing written over earlier work."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from streamo_data.store.io import sha256_of
from streamo_data.store.workdir import SAMPLES
from tests.cli.bad_inputs.parts import assert_one_line, invoke, truncate


@pytest.mark.parametrize("tasks", [",", "", " , "])
def test_build_refuses_an_empty_task_list_before_writing(work_copy: Path, tasks: str) -> None:
    before = sha256_of(work_copy / SAMPLES)
    result = invoke("build", work_copy, "--tasks", tasks, "--executor", "local")
    assert_one_line(result, "--tasks")
    assert sha256_of(work_copy / SAMPLES) == before


def test_build_refuses_an_unknown_task_in_one_line(work_copy: Path) -> None:
    before = sha256_of(work_copy / SAMPLES)
    assert_one_line(invoke("build", work_copy, "--tasks", "temporal_grounding,juggling", "--executor", "local"),
                    "juggling", "temporal_grounding")
    assert sha256_of(work_copy / SAMPLES) == before


def test_build_on_a_folder_that_is_not_a_work_dir(tmp_path: Path) -> None:
    assert_one_line(invoke("build", tmp_path / "nothing", "--executor", "local"), "videos.parquet")
    assert not (tmp_path / "nothing").exists()


@pytest.mark.parametrize("name", ["events.parquet", "videos.parquet"])
def test_build_on_a_corrupt_work_file_names_it(work_copy: Path, name: str) -> None:
    truncate(work_copy / name)
    assert_one_line(invoke("build", work_copy, "--executor", "local"), name, "Parquet")


def test_a_build_that_makes_no_sample_keeps_the_earlier_samples(work_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(work_dir, work)
    before = sha256_of(work / SAMPLES)
    # the offline annotator writes captions only: no qa event for time-sensitive QA to ask about
    result = invoke("build", work, "--tasks", "action_captioning", "--executor", "local")
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]  # after the progress bar
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert len(errors) == 1 and "no sample built" in errors[0] and "left as it was" in errors[0]
    assert sha256_of(work / SAMPLES) == before

