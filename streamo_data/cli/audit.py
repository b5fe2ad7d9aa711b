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


@app.command()
def audit(
    release_dir: Annotated[Path, typer.Argument(help="A corpus in the released Streamo-Instruct layout (task"
                                                " folders qa/, event_grounding/, … of JSON lists of records).")],
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
        check_output_file(json_out, "--json", reads=[release_dir, *([video_root] if video_root else [])],
                          replace=replace)
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
