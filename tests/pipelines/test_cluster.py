"""Beyond one machine: a real two-node Ray cluster and a real S3-compatible server, both on loopback.

The build runs with ``--address`` and an ``s3://`` work dir and release; both nodes must have built
parts, the release must hold the same bytes as a local in-process build, and a build whose worker
node is SIGKILLed mid-run must resume to those bytes too. Credentials come from the environment only
and must appear in no output and no file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from datasets import load_dataset

from streamo_data.pipelines.mixture import MixtureConfig, run_mixture
from streamo_data.runtime.runner import Executor
from streamo_data.sources.sample_sources import write_mixture
from streamo_data.store.manifest import read_manifest
from tests.cluster_parts import RayCluster, cluster_env, s3_server

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "streamo-test"


@pytest.fixture(scope="module")
def s3_env() -> Iterator[dict[str, str]]:
    with s3_server(buckets=(BUCKET,)) as env, pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        yield env


@pytest.fixture(scope="module")
def mixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mixture(tmp_path_factory.mktemp("sources"), 0.002, ROOT / "pipelines" / "public_annotations.yaml",
                         videos_per_batch=6, rows_per_shard=300)


@pytest.fixture(scope="module")
def local_release(mixture: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("local")
    run_mixture(MixtureConfig.load(mixture), folder / "work", folder / "release", Executor(kind="local"))
    return folder / "release"


def remote_files(url: str) -> dict[str, bytes]:
    """Every object under ``url``, by its path below it."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(url)
    fs.invalidate_cache()
    return {path.removeprefix(root.rstrip("/") + "/"): fs.cat_file(path) for path in fs.find(root)}


def remote_names(url: str) -> list[str]:
    """The paths of the objects under ``url``, listed only: a running build replaces and removes objects
    (temporaries), so one listed may be gone by the time it would be read."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(url)
    fs.invalidate_cache()
    return [path.removeprefix(root.rstrip("/") + "/") for path in fs.find(root)]


def local_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def streamo(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamo_data.cli", *args], env={**env, "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=timeout)


def nodes_in_report(work_url: str) -> dict[str, dict[str, int]]:
    import json

    return json.loads(remote_files(work_url)["build_report.json"])["nodes"]


def test_two_node_build_on_s3_is_byte_identical_and_survives_a_killed_worker(
        s3_env: dict[str, str], mixture: Path, local_release: Path, tmp_path: Path) -> None:
    env = cluster_env({**os.environ, **s3_env})
    expected = local_files(local_release)
    assert any(name.startswith("data/") for name in expected) and "manifest.json" in expected
    with RayCluster(env).start(workers=1) as cluster:
        build = ["build", f"s3://{BUCKET}/work", "--config", str(mixture), "--out", f"s3://{BUCKET}/release",
                 "--address", cluster.address]
        done = streamo(*build, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        nodes = nodes_in_report(f"s3://{BUCKET}/work")
        assert len(nodes["build"]) == 2 and len(nodes["plan"]) == 2, nodes  # both nodes built parts
        assert remote_files(f"s3://{BUCKET}/release") == expected

        checked = streamo("validate", f"s3://{BUCKET}/release", env=env)
        assert checked.returncode == 0 and "valid" in checked.stdout, checked.stdout + checked.stderr

        # the worker node dies mid-build; the build (or its rerun) ends with the same bytes
        build = ["build", f"s3://{BUCKET}/work-killed", "--config", str(mixture), "--out",
                 f"s3://{BUCKET}/release-killed", "--address", cluster.address]
        process = subprocess.Popen([sys.executable, "-m", "streamo_data.cli", *build], env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        worker = cluster.nodes[1]
        deadline, parts = time.monotonic() + 300, 0
        while time.monotonic() < deadline and process.poll() is None:
            parts = sum(name.startswith("parts/") and name.endswith(".parquet")
                        for name in remote_names(f"s3://{BUCKET}/work-killed"))
            if parts >= 4:
                break
            time.sleep(0.3)
        assert process.poll() is None and parts >= 4, "the kill should land while parts are being built"
        cluster.kill(worker)
        first_output, _ = process.communicate(timeout=600)
        assert worker.raylet() is None
        done = streamo(*build, env=env)
        assert done.returncode == 0, first_output + done.stdout + done.stderr
        assert remote_files(f"s3://{BUCKET}/release-killed") == expected
        if process.returncode != 0:  # the first run gave up: the rerun reused what it had written
            assert "resumed:" in done.stdout, done.stdout
        for text in (first_output, done.stdout, done.stderr, checked.stdout):
            assert s3_env["AWS_SECRET_ACCESS_KEY"] not in text
    for url in (f"s3://{BUCKET}/work", f"s3://{BUCKET}/release-killed"):
        assert not any(s3_env["AWS_SECRET_ACCESS_KEY"].encode() in data for data in remote_files(url).values())


def test_sources_on_s3_and_the_release_loads_once_downloaded(s3_env: dict[str, str], mixture: Path,
                                                             local_release: Path, tmp_path: Path) -> None:
    """Annotation files read from the object store, in-process: the same samples as the local build
    (the manifest's fingerprint names where the sources were read from, so only it may differ)."""
    import fsspec
    import yaml

    fs = fsspec.filesystem("s3")
    fs.mkdir(f"{BUCKET}-sources")
    fs.put(str(mixture.parent / "annotations"), f"{BUCKET}-sources/annotations", recursive=True)
    raw = yaml.safe_load(mixture.read_text())
    for source in raw["sources"]:
        for key in ("annotations", "videos"):
            if key in source:
                source[key] = f"s3://{BUCKET}-sources/{source[key]}"
    remote_config = tmp_path / "remote.yaml"
    remote_config.write_text(yaml.safe_dump(raw))
    env = {**os.environ, **s3_env}
    done = streamo("build", f"s3://{BUCKET}-sources/work", "--config", str(remote_config), "--out",
                   f"s3://{BUCKET}-sources/release", "--executor", "local", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    built = remote_files(f"s3://{BUCKET}-sources/release")
    expected = local_files(local_release)
    assert {k: v for k, v in built.items() if k.startswith("data/")} == \
        {k: v for k, v in expected.items() if k.startswith("data/")}

    fs.get(f"{BUCKET}-sources/release", str(tmp_path / "downloaded"), recursive=True)
    everything = load_dataset(str(tmp_path / "downloaded"), cache_dir=str(tmp_path / "hf"))
    assert sum(split.num_rows for split in everything.values()) == read_manifest(local_release).num_samples

    # commands that read a release read it where it is: the same output as from the downloaded copy
    for name, release in (("remote", f"s3://{BUCKET}-sources/release"), ("local", str(tmp_path / "downloaded"))):
        exported = streamo("export", "stream-format", release, "--out", str(tmp_path / f"{name}.jsonl"), env=env)
        assert exported.returncode == 0, exported.stderr
        stats = streamo("stats", release, "--json", env=env)
        assert stats.returncode == 0, stats.stderr
        (tmp_path / f"{name}.stats.json").write_text(stats.stdout)
    assert (tmp_path / "remote.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    assert (tmp_path / "remote.stats.json").read_text() == (tmp_path / "local.stats.json").read_text()

    again = streamo("build", f"s3://{BUCKET}-sources/work", "--config", str(remote_config), "--out",
                    f"s3://{BUCKET}-sources/release", "--executor", "local", env=env)
    assert again.returncode == 0 and "resumed:" in again.stdout, again.stdout + again.stderr
    assert remote_files(f"s3://{BUCKET}-sources/release") == built


def test_storage_problems_are_one_line(s3_env: dict[str, str], local_release: Path) -> None:
    env = {**os.environ, **s3_env}
    missing = streamo("validate", f"s3://{BUCKET}/no-such-release", env=env)
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    bad_bucket = streamo("validate", "s3://x/release", env=env)
    assert bad_bucket.returncode == 2 and "Traceback" not in bad_bucket.stderr, bad_bucket.stderr
    assert len(bad_bucket.stderr.strip().splitlines()) == 1
    inline = streamo("validate", "s3://key:secret@bucket/release", env=env)
    assert inline.returncode == 2 and "credentials do not belong in a path" in inline.stderr
    assert "key:secret" not in inline.stderr and "***@bucket" in inline.stderr


def test_source_snapshots_of_dead_processes_are_swept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ray worker killed at the end of a job leaves its snapshot folder; the next one on the node removes it."""
    import tempfile

    from streamo_data.store import storage

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = tmp_path / f"{storage.SNAPSHOT_PREFIX}{int(dead.stdout)}-abc"
    alive = tmp_path / f"{storage.SNAPSHOT_PREFIX}{os.getpid()}-def"
    for folder in (gone, alive):
        folder.mkdir()
        (folder / "events.parquet").write_bytes(b"x")
    storage._sweep_snapshots()
    assert not gone.exists() and alive.exists()
