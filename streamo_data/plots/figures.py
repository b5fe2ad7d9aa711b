"""Matplotlib for every plot of the package: the file backend (no screen here or on a cluster) and one
way to save, with no timestamp or version in the PNG, so the same data draws the same bytes."""

from __future__ import annotations

from typing import Any

from streamo_data.store.io import write_atomic
from streamo_data.store.storage import AnyPath


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(figure: Any, path: AnyPath) -> None:
    """Write ``figure`` as a PNG at 100 dpi, atomically, and free it."""
    write_atomic(path, lambda temporary: figure.savefig(temporary, format="png", dpi=100,
                                                        metadata={"Software": None}))
    pyplot().close(figure)
