"""What the bad-input tests of every command share: invoking the CLI and the one-line rule."""

from __future__ import annotations

from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.runtime.runner import Executor

LOCAL = Executor(kind="local")
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "recipes"


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line(result: Result, *words: str, code: int = 2) -> None:
    """The project's rule for bad input: one line, the named item and reason in it, exit code 2."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output and len(lines) == 1, result.output
    for word in words:
        assert word in result.output, (word, result.output)


def truncate(path: Path, keep: int = 40) -> None:
    """A Parquet file that lost its footer (an interrupted copy)."""
    path.write_bytes(path.read_bytes()[:keep])
