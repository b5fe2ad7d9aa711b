"""The plots a release's dataset card shows (PNG under ``assets/``): what it holds and how it compares
with the paper's corpus, drawn from the same stats as ``streamo stats``, plus one example timeline per task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streamo_data.core.schema import StreamingSample
from streamo_data.plots.colors import STATE_HEX
from streamo_data.plots.figures import pyplot, save
from streamo_data.plots.timeline import render_png
from streamo_data.store.storage import AnyPath

ASSETS = "assets"
OURS, PAPER = "#3b6ea5", "#b9c4d0"


def _save(figure: Any, path: AnyPath) -> None:
    figure.tight_layout()
    save(figure, path)


def beside_paper(comparison: Mapping[str, Mapping[str, Any]], title: str, path: AnyPath,
                 colours: Mapping[str, str] | None = None) -> None:
    """Our share of each group next to the paper's (a fidelity report's ``shares``, ``state_share`` or
    ``video_length``), in percent."""
    plt = pyplot()
    groups = list(comparison)
    figure, axes = plt.subplots(figsize=(max(5.0, 1.1 * len(groups) + 1.5), 3.2))
    positions = range(len(groups))
    ours = [100 * comparison[g]["share"] for g in groups]
    paper = [100 * (comparison[g]["paper"] or 0) for g in groups]
    axes.bar([p - 0.2 for p in positions], ours, 0.4, label="this release",
             color=[colours[g] for g in groups] if colours else OURS)
    axes.bar([p + 0.2 for p in positions], paper, 0.4, label="paper (Streamo-Instruct)", color=PAPER,
             edgecolor="#6b7785", hatch="//" if colours else None)
    axes.set_xticks(list(positions), groups, rotation=20 if len(groups) > 4 else 0, ha="right" if len(groups) > 4
                    else "center")
    axes.set_ylabel("share (%)")
    axes.set_title(title)
    axes.legend(frameon=False, fontsize=8)
    _save(figure, path)


def samples_by_source(tasks: Mapping[str, Mapping[str, Any]], path: AnyPath, top: int = 8) -> None:
    """Samples per task, stacked by source (the ``top`` largest sources by name, the rest as 'other')."""
    plt = pyplot()
    totals: dict[str, int] = {}
    for entry in tasks.values():
        for source, count in entry["sources"].items():
            totals[source] = totals.get(source, 0) + count
    named = sorted(totals, key=lambda s: (-totals[s], s))[:top]
    names = [t for t in tasks if tasks[t]["samples"]]
    figure, axes = plt.subplots(figsize=(7, 0.45 * len(names) + 1.6))
    left = [0] * len(names)
    colours = plt.get_cmap("tab20").colors
    for k, source in enumerate([*named, "other"]):
        counts = [sum(c for s, c in tasks[t]["sources"].items() if (s == source) or (source == "other" and
                      s not in named)) for t in names]
        if any(counts):
            axes.barh(names, counts, left=left, label=source, color=colours[k % len(colours)])
            left = [a + b for a, b in zip(left, counts, strict=True)]
    axes.set_xlabel("samples")
    axes.set_title("Samples per task and source")
    axes.legend(frameon=False, fontsize=7, loc="lower right")
    _save(figure, path)


def responses_per_sample(tasks: Mapping[str, Mapping[str, Any]], path: AnyPath) -> None:
    plt = pyplot()
    names = [t for t in tasks if tasks[t]["samples"]]
    figure, axes = plt.subplots(figsize=(6, 3))
    axes.bar(names, [tasks[t]["responses_per_sample"] for t in names], color=STATE_HEX[list(STATE_HEX)[2]])
    axes.set_ylabel("responses per sample")
    axes.set_title("Responses per sample (mean; the paper gives none)")
    axes.tick_params(axis="x", rotation=20)
    _save(figure, path)


def write_card_plots(release_dir: AnyPath, stats: Mapping[str, Any],
                     examples: Mapping[str, StreamingSample]) -> list[tuple[str, str]]:
    """Every plot of the card under ``release_dir/assets``; returns (caption, relative path) in card order."""
    from streamo_data.core.align import State

    folder = release_dir / ASSETS
    fidelity = stats["fidelity"]
    written: list[tuple[str, str]] = []

    def target(name: str, caption: str) -> AnyPath:
        written.append((caption, f"{ASSETS}/{name}"))
        return folder / name

    samples_by_source(stats["tasks"], target("samples_by_task_and_source.png", "Samples per task and source"))
    beside_paper(fidelity["shares"], "Task shares", target("task_shares.png", "Task shares beside the paper's"))
    beside_paper(fidelity["state_share"], f"State shares ({fidelity['state_ratio']['ours']} here, paper 12:3:2)",
                 target("state_shares.png", "Silence / Standby / Response beside the paper's 12 : 3 : 2"),
                 colours={s.value: STATE_HEX[s] for s in State})
    beside_paper(fidelity["video_length"], "Video lengths (distinct videos)",
                 target("video_lengths.png", "Video lengths beside the paper's"))
    responses_per_sample(stats["tasks"], target("responses_per_sample.png", "Responses per sample"))
    for task, sample in sorted(examples.items()):
        render_png(sample, target(f"example_{task}.png", f"An example of {task} (frames coloured by state)"))
    return written
