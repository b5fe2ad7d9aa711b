"""`streamo audit`: a corpus in the released layout, checked against the reference converter; and the
fidelity table that it shares with `streamo stats`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from streamo_data.cli.common import FpsOpt, ReplaceOpt, console, err, positive
from streamo_data.store.outputs import check_output_file

app = typer.Typer()

LOSS_COLUMNS = (("answer_overwritten", "answer lost"), ("past_end", "past end"),
                ("same_frame_question", "same frame"), ("untimed", "untimed"))


def fidelity_table(report: dict[str, Any], title: str) -> Table:
    """Our figures beside the paper's (rows from :func:`streamo_data.corpus.fidelity.fidelity_rows`)."""
    from streamo_data.corpus.fidelity import fidelity_rows

    table = Table(title=title)
    for column in ("figure", "of", "ours", "paper", "difference"):
        table.add_column(column, justify="left" if column in ("figure", "of") else "right")
    for row in fidelity_rows(report):
        table.add_row(*row)
    return table


def _audit_row(label: str, entry: dict[str, Any], other: bool) -> list[str]:
    losses = [str(entry["losses"].get(kind, 0)) for kind, _ in LOSS_COLUMNS]
    if other:
        losses.append(str(entry["losses"].get("other", 0)))
    return [label, str(entry["records"]), str(entry["lossy_records"]), *losses, str(entry["malformed"]),
            str(entry["dropped"]), entry["state_ratio"], f"{entry['responses_per_record']:.2f}"]


def audit_table(result: dict[str, Any]) -> Table:
    """Per folder and source; the state ratio is silence:standby:response scaled to 17, like the paper's 12:3:2."""
    other = bool(result["total"]["losses"].get("other"))
    table = Table(title=f"{escape(result['root'])}: {result['total']['records']} records in {result['files']} files",
                  box=box.SIMPLE_HEAVY, pad_edge=False, collapse_padding=True)
    columns = ["folder / source", "records", "lossy", *(name for _, name in LOSS_COLUMNS)]
    columns += [*(["other loss"] if other else []), "malformed", "no video", "state ratio", "resp/rec"]
    for column in columns:
        table.add_column(column, justify="left" if column == "folder / source" else "right",
                         no_wrap=column in ("folder / source", "state ratio"))
    for folder, entry in result["folders"].items():
        table.add_row(*_audit_row(f"[bold]{folder}/[/bold]", entry, other))
        for group in (g for g in result["groups"] if g["folder"] == folder):
            table.add_row(*_audit_row(f"  {escape(group['source'])}", group, other))
    table.add_row(*_audit_row("[bold]all[/bold]", result["total"], other))
    return table


def overlap_tables(report: dict[str, Any]) -> list[Table]:
    """Per benchmark task, and per corpus source and split, the overlapping videos with their first ids."""
    from streamo_data.release.overlap import EXAMPLE_IDS

    def ids(names: list[str]) -> str:
        return escape(", ".join(names[:EXAMPLE_IDS]) + (f", … (+{len(names) - EXAMPLE_IDS})"
                                                        if len(names) > EXAMPLE_IDS else ""))

    title = (f"{escape(report['benchmark'])} ({escape(Path(report['file']).name)}, {report['benchmark_videos']}"
             f" videos): {report['train_samples_overlapping']} train samples of {report['corpus_samples']} overlap")
    tasks = Table(title=title, box=box.SIMPLE_HEAVY)
    for column in ("benchmark task", "its videos in the corpus", "ids"):
        tasks.add_column(column, justify="right" if column.startswith("its") else "left")
    for task, entry in report["by_benchmark_task"].items():
        tasks.add_row(escape(task), str(entry["videos"]), ids(entry["ids"]))
    sources = Table(box=box.SIMPLE_HEAVY)
    for column in ("corpus source", "split", "videos", "samples", "ids"):
        sources.add_column(column, justify="right" if column in ("videos", "samples") else "left")
    for entry in report["by_corpus_source"]:
        sources.add_row(escape(entry["source"]), entry["split"], str(entry["videos"]), str(entry["samples"]),
                        ids(entry["ids"]))
    return [tasks, sources]


def audit_benchmarks(target: Path, benchmarks: list[Path]) -> list[dict[str, Any]]:
    from streamo_data.corpus.benchmarks import read_benchmark
    from streamo_data.release.overlap import find_overlap
    from streamo_data.store.storage import location

    reports = [find_overlap(location(str(target)), read_benchmark(location(str(path)))).as_dict()
               for path in benchmarks]
    for report in reports:
        for table in overlap_tables(report):
            console.print(table)
        for line in report["bad_files"]:
            err.print(f"[red]bad file[/red] {escape(line)}", soft_wrap=True, highlight=False)
    return reports


@app.command()
def audit(
    release_dir: Annotated[Path, typer.Argument(help="A corpus in the released Streamo-Instruct layout (task"
                                                " folders qa/, event_grounding/, … of JSON lists of records);"
                                                " with --benchmark, also a release of ours.")],
    benchmark: Annotated[list[Path] | None, typer.Option(
        "--benchmark", help="A benchmark's annotation file (OVO-Bench, StreamingBench, ET-Bench, or a list of"
                            " video ids; repeatable): report the videos the corpus shares with it, per benchmark"
                            " task and per corpus source and split, and exit 1 when any train sample is on one.")]
    = None,
    video_root: Annotated[Path | None, typer.Option("--video-root", help="Count frames from the videos, as the"
                                                    " reference converter does; without it, from each record's"
                                                    " latest time (nothing can be past the end).")] = None,
    fps: FpsOpt = 1.0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the whole report as JSON here.")] = None,
    replace: ReplaceOpt = False,
) -> None:
    """Per task folder and source: records, records the reference converter would silently lose parts of,
    malformed records with reasons, and the fidelity figures beside the paper's."""
    from streamo_data.reference.audit import audit_release
    from streamo_data.store.io import write_text_atomic

    positive("--fps", fps)
    if json_out is not None:
        check_output_file(json_out, "--json", reads=[release_dir, *([video_root] if video_root else []),
                                                     *(benchmark or [])], replace=replace)
    if benchmark:
        reports = audit_benchmarks(release_dir, benchmark)
        if json_out is not None:
            write_text_atomic(json_out, json.dumps(reports, indent=2, ensure_ascii=False) + "\n")
            console.print(f"report written to {escape(str(json_out))}")
        if any(report["train_samples_overlapping"] for report in reports):
            err.print("[red]contaminated[/red]: train samples are on benchmark videos (listed above)")
            raise typer.Exit(1)
        return
    result = audit_release(release_dir, video_root, fps).as_dict()
    console.print(audit_table(result))
    console.print(f"frames counted from the {result['frames_from']}. answer lost: overwritten by a later answer"
                  " or standby on its frame; past end: a turn after the last frame; same frame: a question replaced"
                  " by a later one on its frame; untimed: a turn without a readable time; no video: the video is"
                  " missing or unreadable, the reference drops the record.", highlight=False)
    console.print(fidelity_table(result["fidelity"], "beside the paper's Streamo-Instruct (shares by folder)"))
    for line in result["skipped"]:
        console.print(f"[yellow]skipped[/yellow] {escape(line)}", soft_wrap=True, highlight=False)
    for line in result["bad_files"]:
        err.print(f"[red]bad file[/red] {escape(line)}", soft_wrap=True, highlight=False)
    for line in result["examples"]:
        console.print(f"  {escape(line)}", soft_wrap=True, highlight=False)
    if result["examples_not_shown"]:
        console.print(f"  … and {result['examples_not_shown']} more (the counts above hold them all)")
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        console.print(f"report written to {escape(str(json_out))}")
