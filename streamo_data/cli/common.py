"""What every command family shares: consoles, common options, the executor, the summary table."""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from streamo_data.pipelines.runner import Executor
from streamo_data.pipelines.stages import StageSummary

# Logs (CI, `make`, redirected output) get a width that fits the tables; a terminal keeps its own.
console = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 120)

ExecutorOpt = Annotated[str, typer.Option("--executor", help="'ray' (default) or 'local' (in-process).")]
AddressOpt = Annotated[str | None, typer.Option("--address", help="Ray cluster address; default: a local Ray.")]
CpusOpt = Annotated[int | None, typer.Option("--num-cpus", help="Cap the local Ray's CPUs.")]
FpsOpt = Annotated[float, typer.Option("--fps", help="Sampled frames per second.")]


def make_executor(kind: str, address: str | None, num_cpus: int | None) -> Executor:
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    logging.getLogger("ray").setLevel(logging.WARNING)
    try:
        return Executor(kind=kind, address=address, num_cpus=num_cpus)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error


def print_summary(title: str, summary: StageSummary) -> None:
    table = Table(title=title, show_header=True)
    table.add_column("outcome")
    table.add_column("count", justify="right")
    table.add_row("processed", str(summary.done))
    if summary.reused:
        table.add_row("reused from a previous run", str(summary.reused))
    for key, count in sorted(summary.produced.items()):
        table.add_row(f"produced: {key}", str(count))
    for reason, count in sorted(summary.failed.items()):
        table.add_row(f"[red]failed[/red]: {reason}", str(count))
    for reason, count in sorted(summary.not_built.items()):
        table.add_row(f"[yellow]not built[/yellow]: {reason}", str(count))
    console.print(table)
