"""Bad input to `streamo sample`: one line naming the item and the reason, exit code 2, no traceback, and
nothing written over earlier work."""

from __future__ import annotations

from pathlib import Path

from tests.cli.bad_inputs.parts import invoke


def test_sample_refuses_a_negative_count(tmp_path: Path) -> None:
    assert invoke("sample", tmp_path / "s", "--num-synthetic", "-1").exit_code == 2
    assert not (tmp_path / "s").exists()

