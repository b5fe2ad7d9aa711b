"""How close a corpus comes to the paper's Streamo-Instruct-465K: its figures as data, and ours beside them.

The figures are those of the Streamo paper (arXiv 2512.21334, section 4 and Fig. 3). Rules chosen where the
paper is silent, each one applied by every report (``streamo stats``, the dataset card, ``streamo audit``):

* Shares are of samples (records); a difference is ours minus the paper's, in percentage points.
* The state ratio is also written as ``x:y:z`` scaled to the paper's total of 17 (12 + 3 + 2), so each term
  reads directly against 12, 3 and 2 and no term divides by a state that may be absent.
* Video lengths are counted per distinct video, in the paper's bins, each closed below and open above
  (a 30 s video is in 30-60 s); the last bin is everything from 240 s on.
* The paper states no responses per sample: that figure is ours alone, with no difference.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

PAPER_SAMPLES = 465_800
PAPER_VIDEOS = 135_875

# Our task names against the paper's: "event caption" is our dense_captioning, "event grounding" our
# temporal_grounding.
PAPER_TASK_SHARES: dict[str, float] = {
    "time_sensitive_qa": 0.348,
    "temporal_grounding": 0.263,
    "offline_qa": 0.138,
    "narration": 0.127,
    "dense_captioning": 0.067,
    "action_captioning": 0.058,
}

# The released corpus's task folders and the tasks each holds (both QA tasks share `qa/`).
RELEASE_FOLDERS: dict[str, tuple[str, ...]] = {
    "qa": ("time_sensitive_qa", "offline_qa"),
    "event_grounding": ("temporal_grounding",),
    "event_caption": ("dense_captioning",),
    "action_caption": ("action_captioning",),
    "narration": ("narration",),
}
PAPER_FOLDER_SHARES: dict[str, float] = {
    folder: round(sum(PAPER_TASK_SHARES[task] for task in tasks), 4) for folder, tasks in RELEASE_FOLDERS.items()
}

STATES = ("silence", "standby", "response")
PAPER_STATE_RATIO: tuple[int, int, int] = (12, 3, 2)
PAPER_STATE_SHARES: dict[str, float] = {
    state: part / sum(PAPER_STATE_RATIO) for state, part in zip(STATES, PAPER_STATE_RATIO, strict=True)
}

# (label, lower bound in seconds); a bin runs to the next one's lower bound.
LENGTH_BINS: tuple[tuple[str, float], ...] = (
    ("0-30s", 0.0), ("30-60s", 30.0), ("60-120s", 60.0), ("120-240s", 120.0), (">240s", 240.0),
)
PAPER_LENGTH_COUNTS: dict[str, int] = {
    "0-30s": 68_273, "30-60s": 19_153, "60-120s": 21_834, "120-240s": 20_529, ">240s": 6_086,
}


def length_bin(duration_s: float) -> str:
    """The paper's bin of a video length (see the module's rule for the bounds)."""
    label = LENGTH_BINS[0][0]
    for name, lower in LENGTH_BINS:
        if duration_s >= lower:
            label = name
    return label


def length_histogram(durations: Iterable[float]) -> dict[str, int]:
    """Videos per bin, every bin present (zero where empty)."""
    counts = dict.fromkeys(PAPER_LENGTH_COUNTS, 0)
    for duration in durations:
        if math.isfinite(duration):
            counts[length_bin(duration)] += 1
    return counts


def shares(counts: Mapping[str, int | float]) -> dict[str, float]:
    total = sum(counts.values())
    return {key: (value / total if total else 0.0) for key, value in counts.items()}


def compare_shares(counts: Mapping[str, int | float], paper: Mapping[str, float]) -> dict[str, dict[str, Any]]:
    """Per key (the paper's in its order, then ours it lacks): our count and share, the paper's share, and
    the difference in percentage points (None where the paper has no such key)."""
    ours = shares(counts)
    rows: dict[str, dict[str, Any]] = {}
    for key in [*paper, *(k for k in counts if k not in paper)]:
        share = ours.get(key, 0.0)
        expected = paper.get(key)
        rows[key] = {
            "count": counts.get(key, 0), "share": round(share, 4),
            "paper": None if expected is None else round(expected, 4),
            "diff_pp": None if expected is None else round(100 * (share - expected), 2),
        }
    return rows


def ratio_text(state_shares: Mapping[str, float]) -> str:
    """Silence:Standby:Response scaled to the paper's total of 17, e.g. ``13.2:3.6:0.2``."""
    total = sum(state_shares.get(s, 0.0) for s in STATES)
    if not total:
        return "n/a"
    scale = sum(PAPER_STATE_RATIO) / total
    return ":".join(f"{state_shares.get(s, 0.0) * scale:.1f}" for s in STATES)


def fidelity(group_counts: Mapping[str, int], state_counts: Mapping[str, int], video_lengths: Mapping[str, int],
             responses: int, samples: int, *, by: str = "task") -> dict[str, Any]:
    """Our figures beside the paper's. ``by`` is "task" (our six tasks) or "folder" (the release layout)."""
    paper_groups = PAPER_TASK_SHARES if by == "task" else PAPER_FOLDER_SHARES
    state_shares = shares({s: state_counts.get(s, 0) for s in STATES})
    per_sample = responses / samples if samples else 0.0
    lengths = compare_shares({key: video_lengths.get(key, 0) for key in PAPER_LENGTH_COUNTS},
                             shares(PAPER_LENGTH_COUNTS))
    return {
        "by": by,
        "shares": compare_shares(group_counts, paper_groups),
        "state_share": compare_shares({s: state_counts.get(s, 0) for s in STATES}, PAPER_STATE_SHARES),
        "state_ratio": {"ours": ratio_text(state_shares), "paper": ":".join(map(str, PAPER_STATE_RATIO))},
        "video_length": {key: row | {"paper_count": PAPER_LENGTH_COUNTS[key]} for key, row in lengths.items()},
        "responses_per_sample": {"ours": round(per_sample, 3), "paper": None, "diff": None},
        "paper": {"samples": PAPER_SAMPLES, "videos": PAPER_VIDEOS},
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _pp(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f} pp"


def fidelity_rows(report: Mapping[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(figure, key, ours, paper, difference) lines of a fidelity report, for a table or a card."""
    rows: list[tuple[str, str, str, str, str]] = []
    label = "task share" if report["by"] == "task" else "folder share"
    for key, row in report["shares"].items():
        rows.append((label, key, f"{_pct(row['share'])} ({row['count']})", _pct(row["paper"]), _pp(row["diff_pp"])))
    for key, row in report["state_share"].items():
        rows.append(("state share", key, f"{_pct(row['share'])} ({row['count']})", _pct(row["paper"]),
                     _pp(row["diff_pp"])))
    ratio = report["state_ratio"]
    rows.append(("state ratio", "silence:standby:response", ratio["ours"], ratio["paper"], "scaled to 17"))
    for key, row in report["video_length"].items():
        rows.append(("video length", key, f"{_pct(row['share'])} ({row['count']})",
                     f"{_pct(row['paper'])} ({row['paper_count']})", _pp(row["diff_pp"])))
    per_sample = report["responses_per_sample"]
    rows.append(("responses", "per sample", f"{per_sample['ours']:.2f}", "not reported", "n/a"))
    return rows


def fidelity_markdown(report: Mapping[str, Any]) -> str:
    """The fidelity report as a Markdown table (for the dataset card)."""
    lines = ["| figure | of | ours | paper | difference |", "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in fidelity_rows(report)]
    return "\n".join(lines)
