"""The release card's plots: written with the release, named in its README, drawn from its stats (the
state plot in the states' colours beside the paper's hatched bars; an example timeline per task whose
bars are that sample's states), and `datasets` still loads the folder as it is."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from datasets import load_dataset

from streamo_data.core.align import State
from streamo_data.core.schema import QuestionTurn, ResponseTurn, StreamingSample
from streamo_data.plots.colors import STATE_RGB
from streamo_data.plots.timeline import Layout, text_lines, turns_of
from streamo_data.release.write import write_release
from streamo_data.store.manifest import read_manifest
from streamo_data.store.tables import from_row, read_table, to_row, write_rows
from streamo_data.store.workdir import SAMPLES
from streamo_data.video.probe import video_id_for
from tests.plots.test_show import assert_bars


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("card")
    rows = []
    for k in range(6):
        name = f"v{k}.mp4"
        common = {"source": "generic", "video_id": video_id_for(name), "video_path": name, "duration_s": 20.0,
                  "fps": 1.0, "num_frames": 20}
        rows.append(to_row(StreamingSample.create(task="dense_captioning", **common,
                                                  questions=[QuestionTurn(content="Describe.", time=0)],
                                                  responses=[ResponseTurn(content="A.", st_time=2 + k, end_time=9)])))
        rows.append(to_row(StreamingSample.create(task="offline_qa", **common,
                                                  questions=[QuestionTurn(content=f"Q{k}?", time=0)],
                                                  responses=[ResponseTurn(content="B.", time=5 + k)])))
    write_rows(root / "work" / SAMPLES, StreamingSample, rows)
    write_release(root / "work" / SAMPLES, root / "release", validation_fraction=0.2)
    return root / "release"


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_every_plot_is_written_and_named_in_the_card(release: Path) -> None:
    card = (release / "README.md").read_text(encoding="utf-8")
    named = re.findall(r"!\[[^\]]*\]\((assets/[^)]+\.png)\)", card)
    assert sorted(named) == sorted(p.relative_to(release).as_posix() for p in (release / "assets").glob("*.png"))
    assert {"assets/state_shares.png", "assets/example_dense_captioning.png", "assets/example_offline_qa.png",
            "assets/samples_by_task_and_source.png", "assets/video_lengths.png",
            "assets/responses_per_sample.png", "assets/task_shares.png"} == set(named)
    assert load_dataset(str(release), "offline_qa", split="train").num_rows > 0


def test_state_plot_uses_the_state_colours(release: Path) -> None:
    picture = read_rgb(release / "assets" / "state_shares.png").astype(int)
    for state in State:
        assert (np.abs(picture - np.array(STATE_RGB[state])).sum(axis=2) < 12).sum() > 200, state


def test_example_timelines_show_their_samples_states(release: Path) -> None:
    manifest = read_manifest(release)
    for task in manifest.tasks:
        first = next(s for s in manifest.shards if s.task == task)
        sample = from_row(StreamingSample, read_table(release / first.path).slice(0, 1).to_pylist()[0])
        picture = read_rgb(release / "assets" / f"example_{task}.png")
        layout = Layout(sample.num_frames)
        assert picture.shape[:2] == (layout.height(len(text_lines(sample, turns_of(sample)))), layout.width)
        assert_bars(picture, layout, sample)


def test_a_second_release_into_the_folder_keeps_the_same_plots(release: Path, tmp_path: Path) -> None:
    before = {p.name: p.read_bytes() for p in (release / "assets").glob("*.png")}
    again = tmp_path / "again"
    write_release(release.parent / "work" / SAMPLES, again, validation_fraction=0.2)
    assert {p.name: p.read_bytes() for p in (again / "assets").glob("*.png")} == before  # deterministic bytes
