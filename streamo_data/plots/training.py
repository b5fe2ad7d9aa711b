"""Pictures of a trained baseline: its learning curves, the confusion of states, and when it answers.

Geometry is fixed (axes placed at known fractions of a known figure size), so a reader, or a test, can
find a matrix cell at the same pixel in every run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streamo_data.core.align import State
from streamo_data.plots.colors import STATE_HEX
from streamo_data.plots.figures import pyplot, save

CONFUSION_SIZE = (5.0, 4.6)  # inches at 100 dpi
CONFUSION_AXES = (0.24, 0.16, 0.6, 0.66)  # left, bottom, width, height: figure fractions


def plot_curves(metrics: Sequence[dict[str, Any]], path: Path) -> None:
    """Loss per epoch (train and validation) and the validation F1 of each state per epoch."""
    plt = pyplot()
    epochs = [m["epoch"] for m in metrics]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [m["train_loss"] for m in metrics], marker="o", label="train")
    validated = [m for m in metrics if m.get("validation")]  # a release with no validation split has none
    if validated:
        left.plot([m["epoch"] for m in validated], [m["validation"]["loss"] for m in validated], marker="o",
                  label="validation")
    left.set(xlabel="epoch", ylabel="loss", title="loss")
    left.legend()
    for state in State:
        right.plot([m["epoch"] for m in validated], [m["validation"]["states"][state.value]["f1"] for m in validated],
                   marker="o", color=STATE_HEX[state], label=state.value)
    right.set(xlabel="epoch", ylabel="F1", title="validation F1 per state" if validated else "no validation split",
              ylim=(0, 1))
    right.legend()
    figure.tight_layout()
    save(figure, path)


def confusion_cell(row: int, column: int, size: int = 3) -> tuple[float, float]:
    """Pixel (x, y from the top) a quarter of a cell left of and above cell (row, column)'s centre,
    away from the count written in it."""
    width, height = CONFUSION_SIZE[0] * 100, CONFUSION_SIZE[1] * 100
    left, bottom, w, h = CONFUSION_AXES
    x = (left + (column + 0.25) / size * w) * width
    y = (1 - bottom - h + (row + 0.25) / size * h) * height
    return x, y


def plot_confusion(matrix: Sequence[Sequence[int]], path: Path, title: str) -> None:
    """Frames per true (rows) and predicted (columns) state, shaded by the share of their row (recall)."""
    plt = pyplot()
    names = [s.value for s in State]
    shares = [[count / max(1, sum(row)) for count in row] for row in matrix]
    figure = plt.figure(figsize=CONFUSION_SIZE, dpi=100)
    axes = figure.add_axes(CONFUSION_AXES)
    axes.imshow(shares, cmap="Blues", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            axes.text(j, i, f"{count}\n{100 * shares[i][j]:.0f}%", ha="center", va="center", fontsize=9,
                      color="white" if shares[i][j] > 0.5 else "black")
    axes.set_xticks(range(len(names)), names)
    axes.set_yticks(range(len(names)), names)
    axes.set(xlabel="predicted", ylabel="true")
    figure.suptitle(title, fontsize=10)
    save(figure, path)


def plot_timing(offsets: Sequence[int], missed: int, false_alarms: int, path: Path, title: str) -> None:
    """How many frames early (negative) or late each matched response came, with the misses and false
    alarms that no offset describes."""
    plt = pyplot()
    counts = Counter(offsets)
    span = max([3, *(abs(o) for o in offsets)])
    figure, axes = plt.subplots(figsize=(6, 3.4))
    xs = list(range(-span, span + 1))
    axes.bar(xs, [counts.get(x, 0) for x in xs], color=STATE_HEX[State.RESPONSE], width=0.8)
    axes.axvline(0, color="#444444", linewidth=0.8)
    axes.set(xlabel="predicted - true response frame", ylabel="responses",
             title=f"{title}\n{len(offsets)} matched, {missed} missed, {false_alarms} false alarms")
    figure.tight_layout()
    save(figure, path)
