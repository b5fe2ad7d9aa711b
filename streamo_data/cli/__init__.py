"""`streamo`: one sub-command per stage, one module per command family. Wiring only; the work is elsewhere."""

from __future__ import annotations

import typer

from streamo_data.cli import audit, frames, show, stages, train, videos  # noqa: F401  (frames adds `export frames`)
from streamo_data.cli.annotate import annotate_app
from streamo_data.cli.benchmark import benchmark_app
from streamo_data.cli.common import report_user_errors
from streamo_data.cli.convert import convert_app, export_app

app = typer.Typer(
    help="Build a Streamo-Instruct-style streaming-video instruction corpus.\n\n"
    "Stages: ingest -> annotate -> build -> release -> validate / stats; convert and export speak the"
    " reference implementation's raw and stream formats.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
for family in (stages.app, train.app, audit.app, show.app, videos.app):
    for command in family.registered_commands:
        app.registered_commands.append(command)
app.add_typer(annotate_app, name="annotate")
app.add_typer(convert_app, name="convert")
app.add_typer(export_app, name="export")
app.add_typer(benchmark_app, name="benchmark")
report_user_errors(app)  # bad input anywhere: one line and exit code 2, never a traceback

__all__ = ["app"]
