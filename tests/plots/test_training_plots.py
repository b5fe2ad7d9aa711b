"""The training pictures read back by their pixels: the confusion matrix shades each cell by its row's
share, the timing histogram draws one bar per offset that occurred, the curves carry every state."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from streamo_data.core.align import State
from streamo_data.plots.colors import STATE_RGB
from streamo_data.plots.training import confusion_cell, plot_confusion, plot_curves, plot_timing
from streamo_data.train.metrics import confusion, timing_offsets


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_confusion_counts_and_shading(tmp_path: Path) -> None:
    truth = [np.array([0, 0, 0, 1, 1, 2]), np.array([0, 0, 1, 1, 2, 2])]
    predicted = [np.array([0, 0, 1, 1, 1, 2]), np.array([0, 0, 1, 2, 2, 2])]
    matrix = confusion(predicted, truth)
    assert matrix == [[4, 1, 0], [0, 3, 1], [0, 0, 3]]
    out = tmp_path / "confusion.png"
    plot_confusion(matrix, out, "test")
    picture = read_rgb(out)
    assert picture.shape[:2] == (460, 500)
    def darkness(row: int, column: int) -> int:
        x, y = confusion_cell(row, column)
        return 765 - int(picture[int(y), int(x)].astype(int).sum())

    assert darkness(2, 2) > darkness(0, 0) > darkness(1, 2) > darkness(0, 1) > darkness(0, 2)  # 100% 80% 25% 20% 0%
    assert darkness(0, 2) <= 12  # an empty cell is Blues' lightest, #f7fbff


def test_timing_histogram_has_a_bar_per_offset(tmp_path: Path) -> None:
    truth = [np.array([0, 0, 2, 0, 0, 0, 2, 0]), np.array([0, 2, 0, 0, 0, 0, 0, 0])]
    predicted = [np.array([0, 0, 0, 2, 0, 2, 0, 0]), np.array([0, 0, 0, 0, 0, 0, 0, 2])]
    offsets = timing_offsets(predicted, truth)
    assert offsets == [-1, 1, 6]
    out = tmp_path / "timing.png"
    plot_timing(offsets, missed=0, false_alarms=0, path=out, title="test")
    picture = read_rgb(out).astype(int)
    teal = np.abs(picture - np.array(STATE_RGB[State.RESPONSE])).sum(axis=2) < 12
    columns = np.flatnonzero(teal.any(axis=0))
    runs = 1 + int((np.diff(columns) > 1).sum())  # separate bars: -1, 1 and 6 frames
    assert runs == 3


def test_curves_draw_each_state_in_its_colour(tmp_path: Path) -> None:
    epochs = [{"epoch": e, "train_loss": 1.0 / e, "validation": {"loss": 1.2 / e, "states": {
        s.value: {"f1": 0.2 * e + k * 0.1} for k, s in enumerate(State)}}} for e in (1, 2, 3)]
    out = tmp_path / "curves.png"
    plot_curves(epochs, out)
    picture = read_rgb(out).astype(int)
    right = picture[:, picture.shape[1] // 2:]
    for state in State:
        assert (np.abs(right - np.array(STATE_RGB[state])).sum(axis=2) < 12).sum() > 50, state
