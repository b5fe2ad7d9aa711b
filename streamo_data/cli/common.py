"""What every command family shares: consoles, common options, the executor, the summary table."""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from streamo_data.core.errors import UserError
from streamo_data.runtime.runner import Executor

if TYPE_CHECKING:  # the stages pull in datasets and pyarrow: imported by the commands that run them
    from pydantic import ValidationError

    from streamo_data.sources.annotators.client import ClientSettings
    from streamo_data.stages.summary import StageSummary
    from streamo_data.store.storage import AnyPath

# Logs (CI, `make`, redirected output) get a width that fits the tables; a terminal keeps its own.
console = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 120)

ExecutorOpt = Annotated[str, typer.Option("--executor", help="'ray' (default) or 'local' (in-process).")]
AddressOpt = Annotated[str | None, typer.Option("--address", help="Ray cluster address; default: a local Ray.")]
CpusOpt = Annotated[int | None, typer.Option("--num-cpus", help="Cap the local Ray's CPUs.")]
ReleaseArg = Annotated[str, typer.Argument(metavar="RELEASE_DIR", help="A release folder: a local path or a URL"
                                                                  " (s3://bucket/release), read where it is.")]
FpsOpt = Annotated[float, typer.Option("--fps", help="Sampled frames per second.")]
ReplaceOpt = Annotated[bool, typer.Option("--replace", help="Replace an existing output file (refused without).")]


# The option that sets each checked field, so a bad value is reported as the flag the user typed.
OPTION_OF = {"model": "--model", "base_url": "--base-url", "api_key_env": "--api-key-env", "timeout_s": "--timeout",
             "max_attempts": "--max-attempts", "concurrency": "--concurrency", "requests_per_minute": "--rpm",
             "tokens_per_minute": "--tpm", "price_input_per_million": "--price-in",
             "price_output_per_million": "--price-out", "window_s": "--window", "actors": "--actors",
             "prompts": "--prompts", "narration_window_s": "--narration-window",
             "narration_step_s": "--narration-step", "min_span_iou": "--min-span-iou", "text_model": "--text-model",
             "query_sources": "--query-source", "narration_windows_per_request": "--narration-windows-per-request",
             "image_max_side": "--image-max-side", "image_detail": "--image-detail"}


def option_error(error: ValidationError) -> UserError:
    """A checked option's refusal as the flag the user typed, its value shown with any credentials masked."""
    from streamo_data.store.storage import redacted

    detail = error.errors()[0]
    field = str(detail["loc"][-1]) if detail["loc"] else ""
    reason = str(detail["msg"]).removeprefix("Value error, ")
    value = detail.get("input")
    shown = redacted(value) if isinstance(value, str) else value
    return UserError(f"invalid {OPTION_OF.get(field, field)} {shown!r}: {reason}")


def client_settings(**fields: Any) -> ClientSettings:
    """An endpoint's settings from the command's options, a bad one refused as its flag."""
    from pydantic import ValidationError

    from streamo_data.sources.annotators.client import ClientSettings

    try:
        return ClientSettings(**fields)
    except ValidationError as error:
        raise option_error(error) from None


def fail(message: str, code: int = 2) -> NoReturn:
    """One red line on stderr (never wrapped, so a long path stays one line) and the exit code."""
    err.print(f"[red]error[/red]: {escape(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(code)


def _reporting_user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    if getattr(command, "_reports_user_errors", False):
        return command

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except UserError as error:
            fail(str(error))
        except Exception as error:
            from streamo_data.store.storage import storage_failure

            failure = storage_failure(error)
            if failure is not None:
                fail(failure)
            if isinstance(error, OSError) and error.filename is not None:
                # a file of the user's that cannot be read or written (no permission, a folder, a full disk)
                fail(f"{error.filename}: {error.strerror or error}")
            arrow = sys.modules.get("pyarrow")  # not imported here: `streamo --help` stays fast
            if arrow is not None and isinstance(error, arrow.ArrowInvalid):  # damaged Parquet no helper named
                fail(f"unreadable Parquet data: {error}")
            raise

    wrapper._reports_user_errors = True  # type: ignore[attr-defined]  # a marker on the function, read above
    return wrapper


def report_user_errors(app: typer.Typer) -> None:
    """Every command of ``app`` and of its sub-apps turns a UserError into one line and exit code 2: the
    single place where bad input becomes a message, instead of a try/except in each command."""
    for info in app.registered_commands:
        if info.callback is not None:
            info.callback = _reporting_user_errors(info.callback)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            report_user_errors(group.typer_instance)


def storage_path(text: str, what: str, must_exist: bool = False, folder: bool = False) -> AnyPath:
    """A command-line path on any filesystem (``s3://...`` or local), refused with one line when it is not
    usable: typer's own Path type would turn ``s3://b/k`` into ``s3:/b/k``."""
    from streamo_data.store.storage import location, redacted

    try:
        path = location(text)
    except ValueError as error:
        raise UserError(f"{what} {redacted(text)}: {error}") from error
    if must_exist and not path.exists():
        raise UserError(f"{what} {text} does not exist")
    if folder and path.exists() and not path.is_dir():
        raise UserError(f"{what} {text} is a file, not a folder")
    return path


def release_location(text: str) -> AnyPath:
    """A release folder, refused first when it is not one, before any other check names it."""
    from streamo_data.core.errors import MissingInput
    from streamo_data.store.manifest import MANIFEST

    path = storage_path(text, "RELEASE_DIR", must_exist=True, folder=True)
    if not (path / MANIFEST).exists():
        raise MissingInput(f"{text} is not a release: {MANIFEST} is missing")
    return path


def positive(option: str, value: float) -> float:
    """``value`` when it is a finite number above zero; NaN and infinity pass typer's own range checks."""
    if not math.isfinite(value) or value <= 0:
        raise UserError(f"{option} must be a positive number, not {value:g}")
    return value


def check_backend(name: str) -> str:
    """A frame backend name the video layer knows, checked before any worker starts."""
    from streamo_data.video.backends import available_backends

    try:
        available_backends(name)
    except KeyError:
        installed = ", ".join(backend.name for backend in available_backends())
        raise UserError(f"--backend {name!r} is not a frame backend; installed here: {installed}") from None
    return name


def make_executor(kind: str, address: str | None, num_cpus: int | None) -> Executor:
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    logging.getLogger("ray").setLevel(logging.WARNING)
    if num_cpus is not None and num_cpus < 1:
        raise UserError(f"--num-cpus must be at least 1, not {num_cpus}")
    try:
        return Executor(kind=kind, address=address, num_cpus=num_cpus)
    except ValueError as error:
        raise UserError(f"--executor: {error}") from error


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
