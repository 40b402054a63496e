"""`sdfrecon bench --executor ray` on a REAL Ray cluster of two nodes on this machine: a
head and a worker node started with `ray start`, one CPU each. The jobs run as Ray tasks;
meshes and records come back to the driver, which writes them.

The nodes are started with `--block` in their own process groups, and torn down by
signalling exactly those groups (not with `ray stop`, which stops every Ray process of the
machine, other sessions' clusters included).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="Ray is not installed (pip install 'sdfrecon[ray]')")

from test_bench import TINY, write_shapes  # noqa: E402

RAY = Path(sys.executable).with_name("ray")
if not RAY.exists():
    pytest.skip(f"the ray command is not beside the Python interpreter ({RAY})", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_ports() -> list[str]:
    """Explicit free ports for what would otherwise collide between two nodes on one host."""
    names = ("node-manager-port", "object-manager-port", "dashboard-agent-listen-port",
             "dashboard-agent-grpc-port", "metrics-export-port", "runtime-env-agent-port")
    return [f"--{name}={_free_port()}" for name in names]


def _start(args: list[str], log: Path) -> subprocess.Popen:
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats", "--block"]
    with open(log, "w") as out:
        return subprocess.Popen([str(RAY), "start", *args, *_node_ports(), *common], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM each node's process group (ours, made by start_new_session), then SIGKILL
    whatever is left after a few seconds."""
    for sig, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        alive = [p for p in processes if p.poll() is None]
        for p in alive:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for p in alive:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
    for p in processes:  # a group may outlive its leader: make sure it is gone
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def ray_cluster():
    """address of a two-node local cluster (head + worker, 1 CPU each), torn down after."""
    temp = Path(tempfile.mkdtemp(prefix="sdfray", dir="/tmp"))  # short: Ray's socket paths
    port = _free_port()
    processes: list[subprocess.Popen] = []
    t0 = time.monotonic()
    try:
        head = _start(["--head", f"--port={port}", f"--temp-dir={temp}", "--include-dashboard=false"],
                      temp / "head.log")
        processes.append(head)
        while True:
            if head.poll() is not None:
                pytest.fail(f"ray start --head failed:\n{(temp / 'head.log').read_text()[-3000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() - t0 > 60:
                    pytest.fail("the Ray head did not come up in 60 s")
                time.sleep(0.5)
        worker = _start([f"--address=127.0.0.1:{port}"], temp / "worker.log")
        processes.append(worker)
        _wait_for_nodes(f"127.0.0.1:{port}", 2, worker, temp, t0)
        print(f"Ray cluster of 2 nodes up in {time.monotonic() - t0:.1f} s")
        yield f"127.0.0.1:{port}"
    finally:
        t1 = time.monotonic()
        _stop(processes)
        print(f"Ray cluster stopped in {time.monotonic() - t1:.1f} s")
        shutil.rmtree(temp, ignore_errors=True)


def _wait_for_nodes(address: str, count: int, worker: subprocess.Popen, temp: Path, t0: float) -> None:
    """Wait until the cluster reports ``count`` live nodes (asked in a subprocess, so this
    process is not left connected to Ray)."""
    probe = ("import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False, logging_level='ERROR'); "
             "print(sum(n['Alive'] for n in ray.nodes()))")
    while True:
        if worker.poll() is not None:
            pytest.fail(f"ray start (worker node) failed:\n{(temp / 'worker.log').read_text()[-3000:]}")
        result = subprocess.run([sys.executable, "-c", probe, address], capture_output=True, text=True)
        if result.returncode == 0 and result.stdout.strip().splitlines()[-1:] == [str(count)]:
            return
        if time.monotonic() - t0 > 90:
            pytest.fail(f"the Ray cluster did not reach {count} nodes in 90 s: {result.stderr[-2000:]}")
        time.sleep(1.0)


def test_bench_on_a_ray_cluster(ray_cluster, tmp_path):
    import tyro

    from sdfrecon.bench import run_bench
    from sdfrecon.cli.bench import Bench

    shapes = write_shapes(tmp_path / "shapes")
    out = tmp_path / "out"
    t0 = time.monotonic()
    tyro.cli(Bench, args=["--shapes", str(shapes), "--methods", "siren,poisson", "-o", str(out),
                          "--executor", "ray", "--address", ray_cluster, *TINY]).run()
    print(f"4 jobs on Ray in {time.monotonic() - t0:.1f} s")
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {(r["shape"], r["method"]) for r in records} == {
        (s, m) for s in ("sphere", "torus") for m in ("siren", "poisson")}
    for r in records:
        assert r["status"] == "ok", r.get("error")
        assert (out / r["mesh"]).is_file() and (out / r["mesh"]).stat().st_size > 1000
        assert r["threads"] == 1 and r["cloud_points"] == 3000
        assert r["seconds"] > 0 and r["peak_rss_mb"] > 0
        assert 0 < r["exact_chamfer_l1_rel"] < 0.05 and r["watertight"]
        if r["method"] == "poisson":
            assert r["exact_chamfer_l1_rel"] < 0.002 and r["genus"] == (1 if r["shape"] == "torus" else 0)
    csv_lines = (out / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 5 and csv_lines[0].startswith("shape,method,status")
    md = (out / "results.md").read_text()
    assert "4 jobs: 4 ok, 0 failed" in md and "| poisson | mean | 2 |" in md and "| siren | median | 2 |" in md
    # The jobs ran in Ray worker processes, not here; the meshes arrived as bytes.
    assert all(r["host"] == socket.gethostname() and r["pid"] != os.getpid() for r in records)
    assert len({r["ray_node"] for r in records}) == 2  # both nodes took jobs
    # Nothing left to do: a second run over Ray runs no job.
    summary = run_bench(shapes, "siren,poisson", out, executor="ray", address=ray_cluster)
    assert summary.ran == [] and len(summary.skipped) == 4
