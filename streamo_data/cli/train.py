"""`streamo train` and `streamo evaluate`: the baseline fine-tuning loop."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from streamo_data.cli.common import console, err

app = typer.Typer()


@app.command()
def train(
    release_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="A release (streamo release).")],
    out: Annotated[Path, typer.Option("--out", help="Run directory: config, metrics, checkpoints, plot.")],
    video_root: Annotated[Path, typer.Option(exists=True, file_okay=False, help="Where the release's videos are.")],
    config: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="YAML of training options.")]
    = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    loss: Annotated[str | None, typer.Option(help="focal (default) or ce.")] = None,
    alpha: Annotated[str | None, typer.Option(help="batch (reference), split or none.")] = None,
    gamma: float | None = None,
    seed: int | None = None,
    features_dir: Annotated[Path | None, typer.Option(help="Cache of per-frame features (default: RUN/features).")]
    = None,
) -> None:
    """Train the baseline with the focal state loss; rerun the same command to resume."""
    from streamo_data.train.loop import TrainConfig
    from streamo_data.train.loop import train as run_training

    options = TrainConfig.load(config, epochs=epochs, batch_size=batch_size, lr=lr, loss=loss, alpha=alpha,
                               gamma=gamma, seed=seed)
    final = run_training(release_dir, out, video_root, options, features_dir)
    for reason, count in final.get("skipped_samples", {}).items():
        err.print(f"[yellow]skipped[/yellow] {count} samples: {reason}")
    states = final["validation"]["states"]
    console.print(f"epoch {final['epoch']}: train loss {final['train_loss']:.4f}, validation response F1"
                  f" {states['response']['f1']:.3f}, recall {states['response']['recall']:.3f}; run in {out}")


@app.command()
def evaluate(
    run_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
    release_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
    split: str = "validation",
    video_root: Annotated[Path | None, typer.Option(help="Default: the one the run was trained with.")] = None,
) -> None:
    """Per-state precision/recall/F1 and response-timing error of a trained run."""
    from streamo_data.train.evaluate import evaluate_run

    report = evaluate_run(run_dir, release_dir, split, video_root)
    table = Table(title=f"{run_dir} on {split} ({report['samples']} samples)")
    for column in ("state", "precision", "recall", "F1", "frames"):
        table.add_column(column, justify="left" if column == "state" else "right")
    for state in ("silence", "standby", "response"):
        entry = report["states"][state]
        table.add_row(state, f"{entry['precision']:.3f}", f"{entry['recall']:.3f}", f"{entry['f1']:.3f}",
                      str(entry["support"]))
    console.print(table)
    timing = report["timing"]
    console.print(f"response timing: mean |error| {timing['mean_abs_frames']:.2f} frames, median"
                  f" {timing['median_abs_frames']:.1f}, within 1 frame {timing['within_1_frame']:.1%} of true responses"
                  f" and {timing['precision_within_1']:.1%} of predicted ones (F1 {timing['f1_within_1']:.3f}),"
                  f" missed {timing['missed']} of {timing['responses']}, false alarms {timing['false_alarms']}")
