"""The CLI as a user meets it: the stages are listed and every stage has help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from streamo_data.cli import app

ROOT = Path(__file__).resolve().parents[2]

STAGES = ("ingest", "annotate", "build", "release", "validate", "stats", "convert", "export", "demo")


def test_help_lists_the_stages() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for stage in STAGES:
        assert stage in result.output


def test_every_command_has_help() -> None:
    for args in (["ingest"], ["annotate", "offline"], ["build"], ["release"], ["validate"], ["stats"],
                 ["convert", "raw-to-samples"], ["convert", "raw-to-stream"], ["export", "stream-format"],
                 ["demo"], ["sample"], ["schemas"]):
        result = CliRunner().invoke(app, [*args, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, args


def test_console_script_is_installed() -> None:
    done = subprocess.run([sys.executable, "-m", "streamo_data.cli", "--help"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0 and "ingest" in done.stdout


def test_unknown_task_is_a_clear_error(tmp_path) -> None:
    result = CliRunner().invoke(app, ["build", str(tmp_path), "--tasks", "juggling", "--executor", "local"])
    assert result.exit_code != 0 and "juggling" in result.output


def test_bad_input_in_a_sub_command_group_is_one_line_too(tmp_path) -> None:
    """The one place that turns a UserError into a message covers the annotate/convert/export groups too."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "videos.parquet").write_bytes(b"PAR1 cut short")
    result = CliRunner().invoke(app, ["annotate", "offline", str(work), "--executor", "local"])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "videos.parquet" in result.output, result.output


def test_recipe_help_names_every_registered_recipe() -> None:
    from streamo_data.cli.stages import RECIPE_NAMES
    from streamo_data.sources.recipes import RECIPES

    assert sorted(RECIPE_NAMES) == sorted(RECIPES)
    result = CliRunner().invoke(app, ["recipe", "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    for name in RECIPES:
        assert name in result.output, name


def test_every_user_facing_error_is_a_user_error() -> None:
    """One error path: what a command refuses is a UserError, turned into one line in one place."""
    from streamo_data.core.errors import UserError
    from streamo_data.formats.raw_records import RawInputError
    from streamo_data.sources.annotators.client import MissingApiKey
    from streamo_data.sources.annotators.prompts import PromptError

    for error in (PromptError, RawInputError, MissingApiKey):
        assert issubclass(error, UserError), error
    import ast

    for path in (ROOT / "streamo_data" / "cli").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and any(
                    isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == "command"
                    for d in node.decorator_list):
                assert not any(isinstance(inner, ast.Try) for inner in ast.walk(node)), f"{path.name}: {node.name}"
