"""Where a command may write a single-file output: never over what it reads, never inside a corpus it reads
(an ``--out REL/manifest.json`` would destroy the release being exported), and never over an earlier file
unless the user says so. Checked before any work, so a refused command has touched nothing."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from streamo_data.core.errors import UserError
from streamo_data.store.storage import AnyPath, is_remote


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_not_inside(out: AnyPath, option: str, reads: Iterable[AnyPath]) -> None:
    """Refuse ``out`` when it is one of ``reads`` (files and folders the command reads) or inside one."""
    if is_remote(out):
        return
    target = Path(os.path.realpath(out))
    for source in reads:
        if is_remote(source):
            continue
        read = Path(os.path.realpath(source))
        if _inside(target, read):
            what = "is" if target == read else "is inside"
            raise UserError(f"{option} {out} {what} {source}, which this command reads: write it elsewhere")


def check_output_file(out: AnyPath, option: str, reads: Iterable[AnyPath] = (), replace: bool = False) -> None:
    """Refuse ``out`` (named by ``option``) when it is a folder, what the command reads (see
    :func:`check_not_inside`), or an existing file while ``replace`` is off."""
    if is_remote(out):
        return
    if Path(out).is_dir():
        raise UserError(f"{option} {out} is a folder, not a file")
    check_not_inside(out, option, reads)
    if Path(out).exists() and not replace:
        raise UserError(f"{option} {out} already exists: give --replace to replace it, or another path")
