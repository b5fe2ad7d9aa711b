"""The real parts of a distributed run, started on this machine: an S3-compatible server on loopback
(moto in server mode) and a Ray cluster of several nodes (``ray start --head`` plus ``ray start
--address=...``, each node with its own CPUs, ports and resources). Used by the cluster tests and by
``bench/cluster_storage.py``; each is started and stopped by its user."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent
OBJECT_STORE_BYTES = 150 * 1024 * 1024  # per node: plenty for a build, small enough for 24 GiB and /dev/shm


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def s3_server(buckets: tuple[str, ...] = ()) -> Iterator[dict[str, str]]:
    """A moto S3 server on a free loopback port, with ``buckets`` made (streamo never creates one); yields the
    environment that points clients at it (the credentials are the server's dummies, read from the
    environment as real ones would be)."""
    import s3fs

    # fsspec keeps one client per set of arguments, and the endpoint is not one of them (it comes from the
    # environment): a client made for an earlier server of this process would be handed out again.
    s3fs.S3FileSystem.clear_instance_cache()
    port = free_port()
    process = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing-key-id",
               "AWS_SECRET_ACCESS_KEY": "testing-secret-never-logged", "AWS_DEFAULT_REGION": "us-east-1"}
        if buckets:
            import boto3

            client = boto3.client("s3", endpoint_url=endpoint, region_name=env["AWS_DEFAULT_REGION"],
                                  aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                                  aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
            for bucket in buckets:
                client.create_bucket(Bucket=bucket)
        yield env
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process.poll() is None:
            process.kill()


@dataclass
class RayNode:
    name: str
    node_manager_port: int
    head: bool

    def raylet(self) -> psutil.Process | None:
        for process in psutil.process_iter(["cmdline"]):
            argv = process.info["cmdline"] or []
            if argv and os.path.basename(argv[0]) == "raylet" and \
                    f"--node_manager_port={self.node_manager_port}" in argv:
                return process
        return None

    def processes(self) -> list[psutil.Process]:
        """The node's raylet and everything it started (its workers and agents)."""
        raylet = self.raylet()
        if raylet is None:
            return []
        with contextlib.suppress(psutil.NoSuchProcess):
            return [raylet, *raylet.children(recursive=True)]
        return []


def cluster_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` for the cluster's nodes and its drivers: no RAY_* setting that a local Ray run left in this
    process ("not a cluster", token authentication for its own session), and one authentication mode
    for every node, set here rather than left to what each process finds on disk."""
    clean = {k: v for k, v in env.items() if not k.startswith("RAY_") and k != "PYTHONBREAKPOINT"}
    return {**clean, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


@dataclass
class RayCluster:
    """Nodes on this machine, each capped to ``cpus`` CPUs, in a temp folder of their own."""

    env: dict[str, str]
    cpus: int = 1
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="streamo-cl-", dir="/tmp")))
    nodes: list[RayNode] = field(default_factory=list)
    port: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __post_init__(self) -> None:
        self.env = cluster_env(self.env)

    def _start(self, name: str, head: bool) -> RayNode:
        node = RayNode(name, free_port(), head)
        ports = {"--node-manager-port": node.node_manager_port, "--object-manager-port": free_port(),
                 "--metrics-export-port": free_port(), "--dashboard-agent-listen-port": free_port(),
                 "--dashboard-agent-grpc-port": free_port(), "--runtime-env-agent-port": free_port()}
        command = [str(BIN / "ray"), "start", "--node-ip-address=127.0.0.1", f"--num-cpus={self.cpus}",
                   f"--resources={json.dumps({name: 1})}", f"--object-store-memory={OBJECT_STORE_BYTES}",
                   "--disable-usage-stats", *(f"{k}={v}" for k, v in ports.items())]
        if head:
            self.port = free_port()
            command += ["--head", f"--port={self.port}", "--include-dashboard=false",
                        f"--temp-dir={self.folder}"]
        else:
            command += [f"--address={self.address}"]
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"ray start of {name} failed: {done.stdout}\n{done.stderr[-2000:]}")
        self.nodes.append(node)
        return node

    def start(self, workers: int = 1) -> RayCluster:
        """The head and ``workers`` worker nodes; whatever started is stopped again if one does not."""
        try:
            self._start("head_node", head=True)
            for k in range(workers):
                self._start(f"worker_node_{k}", head=False)
            self.wait_for(len(self.nodes))
        except BaseException:
            self.stop()
            raise
        return self

    def add_worker(self) -> RayNode:
        node = self._start(f"worker_node_{len(self.nodes) - 1}", head=False)
        self.wait_for(sum(1 for n in self.nodes if n.raylet() is not None))
        return node

    def wait_for(self, count: int, timeout: float = 60) -> None:
        """Until the cluster reports ``count`` live nodes."""
        script = ("import ray,sys; ray.init(address=sys.argv[1], log_to_driver=False);"
                  "print(sum(n['Alive'] for n in ray.nodes()))")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = subprocess.run([sys.executable, "-c", script, self.address], env=self.env,
                                  capture_output=True, text=True, timeout=60)
            if done.returncode == 0 and int(done.stdout.split()[-1]) >= count:
                return
            time.sleep(1)
        raise RuntimeError(f"the cluster did not reach {count} nodes")

    def kill(self, node: RayNode) -> None:
        """SIGKILL a node's raylet and everything it started: the machine it stands for is gone."""
        for process in node.processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            self.kill(node)
        from streamo_data.runtime.local_ray import reap

        reap(str(self.folder))  # the head's GCS and anything else that logs into the cluster's folder

    def __enter__(self) -> RayCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
