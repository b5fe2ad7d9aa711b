"""Running a stage's per-item function over many items: as Ray tasks, or in-process.

Stage logic stays in plain functions ``item -> list of output rows`` (tested without Ray); this
module only decides where they run. Rows cross the Ray boundary as JSON strings, so every stage keeps
its own pydantic types and Ray never has to infer an Arrow schema from a first block of nulls.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from streamo_data.runtime.local_ray import quiet_ray, start_local_ray

log = logging.getLogger(__name__)

ItemFn = Callable[[dict[str, Any]], list[dict[str, Any]]]


@dataclass(frozen=True)
class Executor:
    """Where stages run: ``ray`` (a local Ray on this machine's cores, or a cluster by ``address``)
    or ``local`` (this process, one item at a time; for debugging and for tests of the logic)."""

    kind: str = "ray"
    address: str | None = None
    num_cpus: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("ray", "local"):
            raise ValueError(f"executor must be 'ray' or 'local', not {self.kind!r}")


def progress_bar(transient: bool = False) -> Progress:
    """A progress bar on a console of its own: rich nests a bar inside any live display still registered
    on a shared console and takes that display's lock to draw, so one display left behind (by a run in
    another thread, or a test) would stall every later bar of the process. Its own console never waits
    on another bar's lock."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), transient=transient, console=Console(),
    )


def worker_node() -> str:
    """The Ray node this code runs on (its node id), or ``local`` outside Ray: stages record it so a
    cluster run shows which nodes did the work."""
    try:
        import ray

        if ray.is_initialized():
            return ray.get_runtime_context().get_node_id()
    except ImportError:  # pragma: no cover - ray is a dependency
        pass
    return "local"


def ensure_ray(executor: Executor) -> None:
    """Connect to the cluster at ``executor.address``, or start a local Ray private to this run (see
    :mod:`streamo_data.runtime.local_ray`); either way Ray's own console output stays quiet."""
    import ray

    if ray.is_initialized():
        return
    quiet_ray()
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if executor.address:
        ray.init(address=executor.address, **options)
    else:
        # A local Ray listens on loopback only, so nothing of a single-machine run is reachable from the
        # network. Ray's own switch for that is its "not a cluster" mode: the environment variable for
        # the processes it starts, the constant for this one (it was read when ray was imported).
        import ray._private.ray_constants as ray_constants

        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        ray_constants.ENABLE_RAY_CLUSTER = False
        start_local_ray(executor.num_cpus or os.cpu_count() or 1, options)
    import ray.data

    quiet_ray()  # again: ray.data sets up its own logger when first imported
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # we draw one bar per stage ourselves
    context.print_on_execution_start = False


def run_stage(
    fn: ItemFn, items: Sequence[dict[str, Any]], executor: Executor, description: str
) -> Iterator[dict[str, Any]]:
    """Yield every output row of ``fn`` over ``items``, with a progress bar over the items."""
    if not items:
        return
    with progress_bar() as progress:
        bar = progress.add_task(description, total=len(items))
        if executor.kind == "local":
            for item in items:
                yield from fn(item)
                progress.advance(bar)
            return
        import ray

        ensure_ray(executor)
        global _run_item
        if _run_item is None:
            _run_item = ray.remote(_remote_item)
        # Plain Ray tasks, a bounded window of them in flight, each result taken as it finishes: a stage
        # of a few dozen heavy items (a batch of 2,000 videos) pays no dataset planning or block
        # bookkeeping per item, and a slow item never holds back the others. SPREAD puts work on every
        # node of a cluster; a task whose worker dies is run again by Ray (its max_retries).
        remote = _run_item.options(scheduling_strategy="SPREAD")
        window = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
        pending: list[Any] = []
        queue = iter(items)
        done = 0
        while True:
            for item in queue:
                pending.append(remote.remote(fn, json.dumps(item)))
                if len(pending) >= window:
                    break
            if not pending:
                break
            finished, pending = ray.wait(pending, num_returns=1)
            for out in ray.get(finished[0]):
                yield json.loads(out)
            done += 1
            progress.update(bar, completed=done)


def _remote_item(fn: ItemFn, item: str) -> list[str]:
    """One item in a Ray worker; rows go back as JSON (see the module docstring)."""
    return [json.dumps(out) for out in fn(json.loads(item))]


_run_item: Any = None  # the Ray task of _remote_item, made on first use (importing ray costs seconds)
