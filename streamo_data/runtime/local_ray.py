"""The local Ray a command starts for itself: quiet, private to the run, and gone when the run is.

Ray started by ``ray.init()`` writes a session folder under ``/tmp/ray`` that nothing removes, prints
its own log lines (token authentication, progress-bar notices, "execution finished") over our output,
and, when the command is SIGKILLed, leaves agents behind (the raylet and GCS die with the driver,
their agents do not). So a run gets its own temporary folder for Ray, and a small watchdog process
that waits for the driver to end, however it ends (its stdin is a pipe from the driver: end of file
means the driver is gone), kills every Ray process of that folder and removes it. A clean exit goes
through the same path, after ``ray.shutdown()``, and waits for it.

This module imports only the standard library at the top: the watchdog runs it as ``python -m``.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

PREFIX = "streamo-ray-"
DRIVER_PID_FILE = "driver.pid"
# Ray puts Unix sockets in <temp dir>/session_<date>_<pid>/sockets/ and a socket path must fit in
# 107 bytes, so a long $TMPDIR (pytest's, macOS's) falls back to /tmp.
MAX_ROOT_LENGTH = 24
REAP_WAIT_S = 15.0
LOG_LEVEL_ENV = "STREAMO_RAY_LOG_LEVEL"


def quiet_ray() -> None:
    """Ray's own messages stay in its session logs unless they are errors (or the level set by
    ``STREAMO_RAY_LOG_LEVEL``, e.g. INFO, when debugging Ray itself): the CLI draws its own progress
    and reports outcomes itself. Call after importing ``ray`` and ``ray.data``, which configure
    their loggers on import."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    level = getattr(logging, os.environ.get(LOG_LEVEL_ENV, "ERROR").upper(), logging.ERROR)
    for name in ("ray", "ray.data", "ray.train", "ray.tune"):
        logging.getLogger(name).setLevel(level)
    if level > logging.WARNING:
        for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category, module=r"ray(\.|$)")


def temp_root() -> str:
    root = tempfile.gettempdir()
    return root if len(root) <= MAX_ROOT_LENGTH or not os.path.isdir("/tmp") else "/tmp"


def start_local_ray(num_cpus: int, options: dict[str, Any]) -> Path:
    """``ray.init`` on this machine with a private temp folder that the watchdog removes at the end of
    this process; returns that folder. Left-overs of runs whose watchdog was killed too are swept first."""
    import ray

    sweep_stale(temp_root())
    folder = Path(tempfile.mkdtemp(prefix=PREFIX, dir=temp_root()))
    (folder / DRIVER_PID_FILE).write_text(f"{socket.gethostname()} {os.getpid()}")
    watchdog = subprocess.Popen(
        [sys.executable, "-m", "streamo_data.runtime.local_ray", str(folder)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C on the terminal must not stop it before it has cleaned up
    )
    atexit.register(_end_of_run, watchdog)
    ray.init(num_cpus=num_cpus, _temp_dir=str(folder), **options)
    return folder


def _end_of_run(watchdog: subprocess.Popen[bytes]) -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
    if watchdog.stdin is not None:
        watchdog.stdin.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        watchdog.wait(timeout=REAP_WAIT_S + 5)


# ---- the watchdog (stdlib only) -------------------------------------------------------------------------

def _is_ray_process(argv: list[str]) -> bool:
    """Ray's own processes: workers and agents retitle themselves ``ray::...``; the others are
    Ray's binaries or Python scripts inside the ray package. (Not, say, a ``tail -f`` of a log.)"""
    if not argv:
        return False
    return (argv[0].startswith("ray::") or os.path.basename(argv[0]) in ("raylet", "gcs_server")
            or any("/ray/" in arg for arg in argv[:3]))


def session_processes(folder: str) -> list[int]:
    """Ray processes that belong to ``folder``: it is in their command line (raylet, GCS) or they hold
    a file in it open (every Ray process logs into the session folder). Linux /proc only."""
    found: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = [a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
            if not _is_ray_process(argv):
                continue
            if any(folder in arg for arg in argv) or any(
                    os.readlink(fd).startswith(folder + os.sep) for fd in (entry / "fd").iterdir()):
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to look at
            continue
    return found


def _alive(pid: int) -> bool:
    if not Path("/proc").is_dir():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie is dead; only its parent's wait() is missing


def reap(folder: str) -> None:
    """Kill what is left of the session in ``folder``, wait until it is gone, remove the folder."""
    deadline = time.monotonic() + REAP_WAIT_S
    while time.monotonic() < deadline:
        pids = [pid for pid in session_processes(folder) if _alive(pid)]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    shutil.rmtree(folder, ignore_errors=True)


def sweep_stale(root: str) -> None:
    """Folders of earlier runs whose driver is gone and whose watchdog never cleaned up (it was
    killed too, e.g. by the OOM killer or a container stop). Only this host's and this user's: a
    /tmp shared with another container holds runs whose pids mean nothing here."""
    for folder in Path(root).glob(PREFIX + "*"):
        try:
            host, pid = (folder / DRIVER_PID_FILE).read_text().split()
            if folder.stat().st_uid != os.getuid() or host != socket.gethostname():
                continue
        except (OSError, ValueError):
            continue
        if not _alive(int(pid)):
            reap(str(folder))


def _watch(folder: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stdin.buffer.read()  # returns at end of file: the driver closed the pipe or died
    reap(folder)


if __name__ == "__main__":
    _watch(sys.argv[1])
