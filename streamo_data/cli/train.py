"""`streamo train` and `streamo evaluate`: the baseline fine-tuning loop."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from streamo_data.cli.common import client_settings, console, err
from streamo_data.core.errors import UserError

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
    model: Annotated[str, typer.Option(help="baseline (the CPU baseline), or a Qwen2.5-VL / Qwen2-VL model folder"
                                       " to fine-tune in the reference's conversation layout.")] = "baseline",
    grad_accum: Annotated[int, typer.Option(help="With --model DIR: batches per optimiser step.")] = 1,
    frame_side: Annotated[int, typer.Option(help="With --model DIR: frames resized to this side, in pixels.")] = 448,
    max_frames: Annotated[int, typer.Option(help="With --model DIR: a sample's first frames kept.")] = 64,
    bf16: Annotated[bool, typer.Option(help="With --model DIR: bfloat16 autocast (hardware that has it).")] = False,
    lora_rank: Annotated[int, typer.Option(help="With --model DIR: 0 trains every weight; else LoRA of this rank.")]
    = 0,
) -> None:
    """Train the baseline (or fine-tune a VLM) with the focal state loss; rerun the same command to resume."""
    from streamo_data.train.loop import TrainConfig
    from streamo_data.train.loop import train as run_training

    if model != "baseline":
        from streamo_data.train.vlm.loop import VLMConfig, train_vlm

        base = VLMConfig()
        vlm = VLMConfig(epochs=epochs or base.epochs, batch_size=batch_size or base.batch_size, lr=lr or base.lr,
                        gamma=base.gamma if gamma is None else gamma, alpha=alpha or base.alpha,
                        seed=base.seed if seed is None else seed, grad_accum=grad_accum, frame_side=frame_side,
                        max_frames=max_frames, bf16=bf16, lora_rank=lora_rank)
        result = train_vlm(release_dir, out, video_root, Path(model), vlm, features_dir)
        for reason, count in result["skipped_samples"].items():
            err.print(f"[yellow]skipped[/yellow] {count} samples: {reason}", soft_wrap=True)
        console.print(f"epoch {result['epoch']}: train loss {result['train_loss']:.4f} over {result['samples']}"
                      f" samples, step {result['step']}; run in {out}")
        return

    options = TrainConfig.load(config, epochs=epochs, batch_size=batch_size, lr=lr, loss=loss, alpha=alpha,
                               gamma=gamma, seed=seed)
    final = run_training(release_dir, out, video_root, options, features_dir)
    for reason, count in final.get("skipped_samples", {}).items():
        err.print(f"[yellow]skipped[/yellow] {count} samples: {reason}", soft_wrap=True)
    states = final["validation"]["states"]
    console.print(f"epoch {final['epoch']}: train loss {final['train_loss']:.4f}, validation response F1"
                  f" {states['response']['f1']:.3f}, recall {states['response']['recall']:.3f}; run in {out}")


@app.command()
def evaluate(
    run_dir: Annotated[str, typer.Argument(metavar="RUN", help="A run of `streamo train` (baseline or --model),"
                                           " or with --base-url the model name the endpoint knows.")],
    release_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
    split: str = "validation",
    video_root: Annotated[Path | None, typer.Option(help="Default: the one the run was trained with.")] = None,
    base_url: Annotated[str | None, typer.Option(help="Score an OpenAI-compatible endpoint instead of a run.")]
    = None,
    api_key_env: Annotated[str, typer.Option(help="With --base-url: the variable holding the API key ('' for"
                                             " none).")] = "OPENAI_API_KEY",
    out: Annotated[Path | None, typer.Option(help="With --base-url: where predictions, scores, the reply cache"
                                             " and frames go.")] = None,
    max_frames: Annotated[int, typer.Option(help="With --base-url: a sample's first frames streamed.")] = 64,
    concurrency: Annotated[int, typer.Option(help="With --base-url: requests in flight.")] = 16,
) -> None:
    """Per-state precision/recall/F1, response-timing error and answer-text scores of a trained run (a
    fine-tuned VLM's, or an endpoint's, by free-running streaming inference)."""
    from streamo_data.train.evaluate import evaluate_run

    answers = None
    if base_url is not None:
        report = _evaluate_endpoint(run_dir, release_dir, split, video_root, base_url, api_key_env, out, max_frames,
                                    concurrency)
        answers = report["answers"]
    elif not Path(run_dir).is_dir():
        raise UserError(f"{run_dir}: not a run folder (for an endpoint pass --base-url)")
    elif (Path(run_dir) / "model" / "config.json").exists():  # a run of `streamo train --model DIR`
        from streamo_data.train.vlm.evaluate import evaluate_vlm

        report = evaluate_vlm(Path(run_dir), release_dir, split, video_root)
        answers = report["answers"]
    else:
        report = evaluate_run(Path(run_dir), release_dir, split, video_root)
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
    if answers is not None:
        console.print(f"answers: ROUGE-L {answers['rouge_l']:.3f}, exact {answers['exact']:.1%} over"
                      f" {answers['responses']} true responses ({answers['matched']} answered);"
                      f" time spans: exact {answers['span_exact']:.1%}, mean tIoU {answers['span_iou']:.3f}"
                      f" over {answers['span_answers']}")


def _evaluate_endpoint(model: str, release_dir: Path, split: str, video_root: Path | None, base_url: str,
                       api_key_env: str, out: Path | None, max_frames: int, concurrency: int) -> dict[str, Any]:
    import asyncio

    from streamo_data.benchmarks.ovo.models import EndpointModel
    from streamo_data.benchmarks.release_eval import evaluate_endpoint

    if out is None or video_root is None:
        raise UserError("--base-url needs --out (where the evaluation goes) and --video-root")
    settings = client_settings(model=model, base_url=base_url, api_key_env=api_key_env, concurrency=concurrency)

    async def go() -> tuple[dict[str, Any], dict[str, int]]:
        return await evaluate_endpoint(EndpointModel.connect(settings, out), release_dir, split, video_root, out,
                                       max_frames)

    report, skipped = asyncio.run(go())
    for reason, count in skipped.items():
        err.print(f"[yellow]skipped[/yellow] {count} samples: {reason}", soft_wrap=True)
    return report


@app.command()
def predict(
    run: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="A run of `streamo train --model`, or a"
                                        " model folder.")],
    video: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="The video to stream.")],
    question: Annotated[str | None, typer.Option(help="Asked on the first frame.")] = None,
    fps: float = 1.0,
    frame_side: Annotated[int, typer.Option(help="Frames resized to this side, as in training.")] = 448,
) -> None:
    """Stream a video through a fine-tuned VLM: one state per frame, and the answer where it responds."""
    from streamo_data.cli.common import positive
    from streamo_data.train.vlm.predict import predict_video

    positive("--fps", fps)
    for reply in predict_video(run, video, fps, frame_side, question):
        console.print(f"frame {reply.frame}: {reply.state}" + (f" {reply.text}" if reply.text else ""), highlight=False)
