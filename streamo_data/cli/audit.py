"""`streamo audit`: a corpus in the released layout, checked against the reference converter; and the
fidelity table that it shares with `streamo stats`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from streamo_data.cli.common import FpsOpt, console, err, positive
from streamo_data.errors import UserError

app = typer.Typer()

LOSS_COLUMNS = (("answer_overwritten", "overwritten"), ("past_end", "past end"),
                ("same_frame_question", "same frame"), ("untimed", "untimed"), ("other", "other loss"))


def fidelity_table(report: dict[str, Any], title: str) -> Table:
    """Our figures beside the paper's (rows from :func:`streamo_data.fidelity.fidelity_rows`)."""
    from streamo_data.fidelity import fidelity_rows

    table = Table(title=title)
    for column in ("figure", "of", "ours", "paper", "difference"):
        table.add_column(column, justify="left" if column in ("figure", "of") else "right")
    for row in fidelity_rows(report):
        table.add_row(*row)
    return table


def _audit_row(label: str, entry: dict[str, Any]) -> list[str]:
    share = entry["state_share"]
    return [label, str(entry["records"]), str(entry["lossy_records"]),
            *(str(entry["losses"].get(kind, 0)) for kind, _ in LOSS_COLUMNS),
            str(entry["malformed"]), str(entry["dropped"]),
            f"{share['silence']:.1%}", f"{share['standby']:.1%}", f"{share['response']:.1%}",
            f"{entry['responses_per_record']:.2f}"]


def audit_table(result: dict[str, Any]) -> Table:
    table = Table(title=f"{result['root']}: {result['total']['records']} records in {result['files']} files;"
                        f" frames from the {result['frames_from']}")
    for column in ("folder / source", "records", "lossy", *(name for _, name in LOSS_COLUMNS), "malformed",
                   "no video", "silence", "standby", "response", "resp/record"):
        table.add_column(column, justify="left" if column == "folder / source" else "right")
    for folder, entry in result["folders"].items():
        table.add_row(*_audit_row(f"[bold]{folder}/[/bold]", entry))
        for group in (g for g in result["groups"] if g["folder"] == folder):
            table.add_row(*_audit_row(f"  {escape(group['source'])}", group))
    table.add_row(*_audit_row("[bold]all[/bold]", result["total"]))
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
) -> None:
    """Per task folder and source: records, records the reference converter would silently lose parts of,
    malformed records with reasons, and the fidelity figures beside the paper's."""
    from streamo_data.audit import audit_release
    from streamo_data.io import write_text_atomic

    positive("--fps", fps)
    if json_out is not None and json_out.is_dir():
        raise UserError(f"--json {json_out} is a folder, not a file")
    result = audit_release(release_dir, video_root, fps).as_dict()
    console.print(audit_table(result))
    console.print(fidelity_table(result["fidelity"], "beside the paper's Streamo-Instruct (shares by folder)"))
    for line in result["skipped"]:
        console.print(f"[yellow]skipped[/yellow] {escape(line)}", soft_wrap=True, highlight=False)
    for line in result["bad_files"]:
        err.print(f"[red]bad file[/red] {escape(line)}", soft_wrap=True, highlight=False)
    for line in result["examples"]:
        console.print(f"  {escape(line)}", soft_wrap=True, highlight=False)
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        console.print(f"report written to {escape(str(json_out))}")
