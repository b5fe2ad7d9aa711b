"""One sample as a timeline: its sampled frames in rows, each cell a thumbnail over a bar in the colour of
the frame's state, the question and every answer marked on their frames and written out below, seconds
above each row. The same layout (``Layout``, in pixels) serves the PNG and the HTML page, so a reader (and
a test) finds frame ``i`` at the same place in both.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from streamo_data.core.align import State, align
from streamo_data.core.schema import StreamingSample
from streamo_data.plots.colors import BLANK_HEX, STATE_HEX, rgb
from streamo_data.plots.figures import pyplot, save
from streamo_data.store.io import write_text_atomic
from streamo_data.store.storage import AnyPath

COLUMNS = 30  # frames per row: 30 s at 1 fps
CELL_W, THUMB_H, BAR_H = 48, 36, 14
MARGIN, HEADER_H, TICKS_H, ROW_GAP, LINE_H = 16, 56, 18, 10, 18
MIN_WIDTH = 760  # room for the title and the legend above a short sample
# What a timeline draws at most, so that any valid sample (up to 12 h, see schema.MAX_VIDEO_DURATION_S) can be
# shown: its first half hour at 1 fps (60 rows) and 200 turns written out below, a PNG at most about 8,000 px
# tall that matplotlib draws in about 1 GB (it holds the picture as float RGBA); 10^6 frames would be a
# 10 GiB picture and a 200 MB page. A longer sample is drawn up to there and says what is left out.
MAX_DRAWN_FRAMES = 1800
MAX_TEXT_LINES = 200


@dataclass(frozen=True)
class Layout:
    """Where each part of a timeline of ``num_frames`` frames lies, in pixels from the top left."""

    num_frames: int

    @property
    def rows(self) -> int:
        return max(1, math.ceil(self.num_frames / COLUMNS))

    @property
    def width(self) -> int:
        return max(MIN_WIDTH, 2 * MARGIN + min(self.num_frames, COLUMNS) * CELL_W)

    @property
    def row_h(self) -> int:
        return TICKS_H + THUMB_H + BAR_H + ROW_GAP

    def cell(self, frame: int) -> tuple[int, int]:
        """Top left of frame ``frame``'s thumbnail."""
        row, column = divmod(frame, COLUMNS)
        return MARGIN + column * CELL_W, HEADER_H + row * self.row_h + TICKS_H

    def bar(self, frame: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the frame's state bar, a pixel of white on either side."""
        left, top = self.cell(frame)
        return left + 1, top + THUMB_H, left + CELL_W - 1, top + THUMB_H + BAR_H

    @property
    def strip_bottom(self) -> int:
        return HEADER_H + self.rows * self.row_h

    def height(self, text_lines: int) -> int:
        return self.strip_bottom + (text_lines + 1) * LINE_H + MARGIN


@dataclass(frozen=True)
class Turn:
    """A question or an answer, on the frame where the stream shows it."""

    frame: int
    mark: str  # the short label drawn in the frame's bar: Q, Q2, A1, ...
    text: str


def turns_of(sample: StreamingSample) -> list[Turn]:
    alignment = align(sample.questions, sample.responses, sample.num_frames, sample.fps)
    turns = [Turn(frame, "Q" if len(alignment.question_frames) == 1 else f"Q{k + 1}", text)
             for k, (frame, text) in enumerate(sorted(alignment.question_frames.items()))]
    answered = [i for i, state in enumerate(alignment.states) if state is State.RESPONSE]
    turns += [Turn(frame, f"A{k + 1}", alignment.answers[frame]) for k, frame in enumerate(answered)]
    return turns


def seconds(frame: int, fps: float) -> str:
    return f"{frame / fps:g} s"


def title_of(sample: StreamingSample) -> tuple[str, str]:
    return (f"{sample.task} · {sample.source} · {sample.video_name}",
            f"{sample.num_frames} frames at {sample.fps:g} fps · sample {sample.sample_id}")


def text_lines(sample: StreamingSample, turns: list[Turn]) -> list[str]:
    return [f"{turn.mark} · frame {turn.frame} ({seconds(turn.frame, sample.fps)}–"
            f"{seconds(turn.frame + 1, sample.fps)}): {turn.text}" for turn in turns]


def drawn_frames(sample: StreamingSample) -> int:
    """How many of the sample's frames (from the first) a timeline draws: all, up to :data:`MAX_DRAWN_FRAMES`."""
    return min(sample.num_frames, MAX_DRAWN_FRAMES)


def drawn(sample: StreamingSample) -> tuple[Layout, list[Turn], list[str]]:
    """The layout, the turns on the drawn frames and the lines written below, for both formats; a sample
    past what a timeline holds gets a last line saying what is not drawn, so the picture never passes
    for the whole sample."""
    shown = drawn_frames(sample)
    every = turns_of(sample)
    turns = [turn for turn in every if turn.frame < shown]
    lines = text_lines(sample, turns)
    left_out = len(every) - len(turns)
    if len(lines) > MAX_TEXT_LINES:
        left_out += len(lines) - (MAX_TEXT_LINES - 1)
        lines = lines[:MAX_TEXT_LINES - 1]
    if shown < sample.num_frames or left_out:
        frames = (f"frames {shown}–{sample.num_frames - 1} ({seconds(shown, sample.fps)}–"
                  f"{seconds(sample.num_frames, sample.fps)}) not drawn" if shown < sample.num_frames else "")
        turns_note = f"{left_out} more turns not written" if left_out else ""
        lines.append(f"… {', '.join(part for part in (frames, turns_note) if part)}: a timeline shows at most"
                     f" {MAX_DRAWN_FRAMES} frames and {MAX_TEXT_LINES - 1} turns")
    return Layout(shown), turns, lines


def tick_frames(num_frames: int, fps: float) -> list[int]:
    """Frames whose start is a multiple of 5 seconds (or every frame's row start at low rates)."""
    every = max(1, round(5 * fps))
    return [i for i in range(num_frames) if i % every == 0 or i % COLUMNS == 0]


def strip(sample: StreamingSample, layout: Layout, thumbnails: list[np.ndarray] | None) -> np.ndarray:
    """The rows of cells as one RGB picture (white background), the layout's coordinates."""
    canvas = np.full((layout.strip_bottom, layout.width, 3), 255, np.uint8)
    for frame, state in enumerate(sample.states[:layout.num_frames]):
        left, top = layout.cell(frame)
        if thumbnails is not None:
            canvas[top:top + THUMB_H, left + 1:left + CELL_W - 1] = thumbnails[frame][:, 1:CELL_W - 1]
        else:
            canvas[top:top + THUMB_H, left + 1:left + CELL_W - 1] = rgb(BLANK_HEX)
        x0, y0, x1, y1 = layout.bar(frame)
        canvas[y0:y1, x0:x1] = rgb(STATE_HEX[State(state)])
    return canvas


def render_png(sample: StreamingSample, path: AnyPath, thumbnails: list[np.ndarray] | None = None) -> Layout:
    """The timeline as a PNG whose pixels follow ``Layout`` exactly (the strip is placed, not resampled)."""
    plt = pyplot()
    layout, turns, lines = drawn(sample)
    width, height = layout.width, layout.height(len(lines))
    figure = plt.figure(figsize=(width / 100, height / 100), dpi=100)
    figure.figimage(strip(sample, layout, thumbnails), xo=0, yo=height - layout.strip_bottom, origin="upper")

    def text(x: float, y: float, words: str, **style: object) -> None:  # y from the top, in pixels
        figure.text(x / width, 1 - y / height, words, va="center", **style)

    heading, detail = title_of(sample)
    text(MARGIN, 18, _clip(heading, width - 3 * 92 - 2 * MARGIN), fontsize=11, weight="bold")
    text(MARGIN, 38, detail + "   ", fontsize=8, color="#555555")
    legend_x = width - MARGIN - 3 * 92
    for k, state in enumerate(State):
        figure.patches.append(plt.Rectangle(((legend_x + k * 92) / width, 1 - 24 / height), 12 / width, 12 / height,
                                            color=STATE_HEX[state], transform=figure.transFigure, figure=figure))
        text(legend_x + k * 92 + 16, 18, state.value, fontsize=8)
    for frame in tick_frames(layout.num_frames, sample.fps):
        left, top = layout.cell(frame)
        text(left + 1, top - TICKS_H / 2, seconds(frame, sample.fps), fontsize=7, color="#555555")
    for turn in turns:
        x0, y0, x1, y1 = layout.bar(turn.frame)
        text((x0 + x1) / 2, (y0 + y1) / 2, turn.mark, fontsize=7, color="white", weight="bold", ha="center")
    for k, line in enumerate(lines):
        text(MARGIN, layout.strip_bottom + (k + 0.5) * LINE_H, _clip(line, width), fontsize=8)
    save(figure, path)
    return layout


def _clip(line: str, width: int) -> str:
    """A line cut to what ``width`` pixels hold at the timeline's small type (about 6 px a character)."""
    limit = max(20, width // 6)
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _data_uri(thumbnail: np.ndarray) -> str:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(thumbnail, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    return "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode("ascii") if ok else ""


def render_html(sample: StreamingSample, path: Path, thumbnails: list[np.ndarray] | None = None) -> Layout:
    """The timeline as one self-contained HTML file (styles and thumbnails inline, no script, nothing
    fetched), positioned in pixels by the same ``Layout`` as the PNG."""
    layout, turns, lines = drawn(sample)
    marks = {turn.frame: turn.mark for turn in turns}
    ticks = set(tick_frames(layout.num_frames, sample.fps))
    cells = []
    for frame, state in enumerate(sample.states[:layout.num_frames]):
        left, top = layout.cell(frame)
        x0, y0, x1, y1 = layout.bar(frame)
        answer = sample.answers[frame]
        tip = f"frame {frame}, {seconds(frame, sample.fps)}–{seconds(frame + 1, sample.fps)}: {state}"
        tip += f" · {answer}" if answer else ""
        picture = (f'<img src="{_data_uri(thumbnails[frame])}" alt="">' if thumbnails is not None else "")
        cells.append(
            f'<div class="thumb" style="left:{left + 1}px;top:{top}px" title="{html.escape(tip)}">{picture}</div>'
            f'<div class="bar" style="left:{x0}px;top:{y0}px;background:{STATE_HEX[State(state)]}">'
            f"{html.escape(marks.get(frame, ''))}</div>"
            + (f'<div class="tick" style="left:{left + 1}px;top:{top - TICKS_H}px">{seconds(frame, sample.fps)}</div>'
               if frame in ticks else ""))
    heading, detail = title_of(sample)
    legend = "".join(f'<span class="key" style="background:{STATE_HEX[s]}"></span>{s.value} ' for s in State)
    notes = "".join(f'<div class="line" style="top:{layout.strip_bottom + k * LINE_H}px">{html.escape(line)}</div>'
                    for k, line in enumerate(lines))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(heading)}</title>
<style>
body {{ margin: 0; background: #fff; font: 12px/1.3 sans-serif; color: #222; }}
.page {{ position: relative; width: {layout.width}px; height: {layout.height(len(lines))}px; }}
.thumb {{ position: absolute; width: {CELL_W - 2}px; height: {THUMB_H}px; background: {BLANK_HEX}; overflow: hidden; }}
.thumb img {{ display: block; width: {CELL_W}px; height: {THUMB_H}px; margin-left: -1px; }}
.bar {{ position: absolute; width: {CELL_W - 2}px; height: {BAR_H}px; color: #fff; font: bold 9px/{BAR_H}px sans-serif;
        text-align: center; }}
.tick {{ position: absolute; font-size: 10px; color: #555; line-height: {TICKS_H}px; }}
.line {{ position: absolute; left: {MARGIN}px; white-space: nowrap; line-height: {LINE_H}px; }}
.head {{ position: absolute; left: {MARGIN}px; top: 6px; height: {HEADER_H - 12}px; overflow: hidden; }}
.key {{ display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 10px; vertical-align: middle; }}
</style></head>
<body><div class="page">
<div class="head"><b>{html.escape(heading)}</b><br><small>{html.escape(detail)}</small> {legend}</div>
{''.join(cells)}
{notes}
</div></body></html>
"""
    write_text_atomic(path, page)
    return layout
