"""Faults: kill -9 in the middle of training and --resume; a loss that becomes NaN/Inf;
crafted pickles in checkpoints and .npy files; nothing in the package parses configs with
an unsafe loader.

The kill test runs the real command as a subprocess and kills it with SIGKILL between two
checkpoints (``make test-slow``, or ``pytest -m slow tests/test_faults.py``): the "fast"
variant uses a tiny network (about 30 s), the "full" one the settings of tests/test_cli.py
and scores both meshes against the exact ellipsoid.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from sdfrecon.cli import main
from sdfrecon.sdf.checkpoint import UNSAFE, load_checkpoint

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample_ellipsoid.xyz"

FAST = dict(steps=60, every=10, kill_after=20, args=[
    "--hidden-features", "32", "--hidden-layers", "1", "--surface-points", "256",
    "--off-surface-points", "256", "--resolution", "24", "--no-progress", "--no-previews"])
FULL = dict(steps=400, every=50, kill_after=100, args=[
    "--hidden-features", "64", "--hidden-layers", "2", "--surface-points", "1024",
    "--off-surface-points", "1024", "--resolution", "64", "--no-progress", "--no-previews"])


def _command(out: Path, setting: dict) -> list[str]:
    return ["reconstruct", str(SAMPLE), "-o", str(out), "--steps", str(setting["steps"]),
            "--checkpoint-every", str(setting["every"]), "--log-every", "5", *setting["args"]]


def _saved_step(path: Path) -> int:
    """The step of the checkpoint at ``path`` (-1 if there is none or it is being replaced)."""
    try:
        return load_checkpoint(path, "sdf").step
    except Exception:
        return -1


def _kill_between_checkpoints(out: Path, setting: dict, timeout: float = 600) -> int:
    """Start the command, SIGKILL it once a checkpoint at kill_after or later is on disk and
    a few more steps have run; return the step of the checkpoint left behind."""
    ckpt = out.with_name(out.stem + ".run") / "checkpoint.pt"
    proc = subprocess.Popen([sys.executable, "-m", "sdfrecon.cli", *_command(out, setting)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    start = time.monotonic()
    arrivals: dict[int, float] = {}  # checkpoint step -> when it was first seen
    try:
        while True:
            step = _saved_step(ckpt)
            if step >= 0 and step not in arrivals:
                arrivals[step] = time.monotonic()
            if step >= setting["kill_after"]:
                break
            assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()}"
            assert time.monotonic() - start < timeout, "no checkpoint in time"
            time.sleep(0.02)
        # a few steps past the checkpoint (the log runs ahead of it), well before the next one
        times = sorted(arrivals.values())
        interval = times[-1] - times[-2] if len(times) > 1 else 0.5
        time.sleep(0.3 * interval)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    return _saved_step(ckpt)


def _chamfer_rel(a: Path, b: Path) -> float:
    import trimesh

    from sdfrecon.evaluation.metrics import compare_meshes

    return compare_meshes(trimesh.load(a, process=False), trimesh.load(b, process=False),
                          n=20_000)["chamfer_l1_rel"]


def _ellipsoid_error(mesh_path: Path) -> float:
    """Chamfer-L1 / diagonal from the mesh to the exact ellipsoid of sdfrecon/evaluation/shapes.py."""
    import trimesh

    from sdfrecon.evaluation import shapes
    from sdfrecon.evaluation.metrics import chamfer_fscore, sample_surface

    truth = shapes.ellipsoid_cloud(50_000, seed=123)[0]
    samples, _ = sample_surface(trimesh.load(mesh_path, process=False), 50_000, seed=0)
    diag = np.linalg.norm(truth.max(0) - truth.min(0))
    return chamfer_fscore(samples, truth)["chamfer_l1"] / diag


@pytest.mark.slow  # three processes and two trainings: 30-60 s on the shared 2-core machine
@pytest.mark.parametrize("setting", [pytest.param(FAST, id="fast"), pytest.param(FULL, id="full")])
def test_kill_9_then_resume_matches_an_uninterrupted_run(tmp_path: Path, setting: dict) -> None:
    killed = tmp_path / "killed" / "e.obj"
    step = _kill_between_checkpoints(killed, setting)
    assert setting["kill_after"] <= step < setting["steps"] and step % setting["every"] == 0
    run = killed.with_name("e.run")
    # The checkpoint survived the kill whole (written to a temporary file and renamed).
    ckpt = load_checkpoint(run / "checkpoint.pt", "sdf")
    assert all(torch.isfinite(v).all() for v in ckpt.model.values())

    # The same command without --resume refuses to replace the checkpoint ...
    proc = subprocess.run([sys.executable, "-m", "sdfrecon.cli", *_command(killed, setting)],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 2 and "pass --resume to continue it" in proc.stderr
    # ... and with --resume it continues from the checkpoint to the end.
    proc = subprocess.run([sys.executable, "-m", "sdfrecon.cli", *_command(killed, setting), "--resume"],
                          capture_output=True, text=True, cwd=REPO, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert f"resuming from {run / 'checkpoint.pt'} at step {step}" in proc.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == setting["steps"]
    logged = [int(r["step"]) for r in csv.DictReader((run / "losses.csv").open())]
    assert logged == list(range(5, setting["steps"] + 1, 5))  # no step lost, none twice

    # An uninterrupted run of the same command reaches the same mesh.
    whole = tmp_path / "whole" / "e.obj"
    assert main(_command(whole, setting)) == 0
    assert _chamfer_rel(killed, whole) < 0.005
    if setting is FULL:
        assert _ellipsoid_error(killed) < 0.004 and _ellipsoid_error(whole) < 0.004


def test_nan_loss_stops_with_one_line_and_keeps_the_checkpoint(tmp_path: Path) -> None:
    """A learning rate of 1e5 drives the loss to Inf/NaN after some steps (at step 17 here:
    the warm-up ramps it up), with a checkpoint every 5 steps on the way."""
    out = tmp_path / "nan.obj"
    args = ["reconstruct", str(SAMPLE), "-o", str(out), "--lr", "1e5", "--steps", "200",
            "--checkpoint-every", "5", "--hidden-features", "32", "--hidden-layers", "1",
            "--surface-points", "512", "--off-surface-points", "512", "--resolution", "24",
            "--no-progress", "--quiet"]
    proc = subprocess.run([sys.executable, "-m", "sdfrecon.cli", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    found = re.fullmatch(r"sdfrecon: error: the loss became (nan|inf|-inf) at step (\d+); "
                         r"the last good checkpoint \(step (\d+)\) is kept", lines[0])
    assert found, lines[0]
    bad_step, kept = int(found[2]), int(found[3])
    assert 5 <= kept <= bad_step < 200 and kept % 5 == 0
    ckpt = load_checkpoint(tmp_path / "nan.run" / "checkpoint.pt", "sdf")
    assert ckpt.step == kept
    assert all(torch.isfinite(v).all() for v in ckpt.model.values())
    assert not out.exists()


def test_resume_removes_the_temporary_file_of_a_checkpoint_cut_off_by_a_kill(tmp_path: Path, capsys) -> None:
    """A kill -9 inside torch.save leaves the hidden temporary file of the atomic write (the
    checkpoint itself is whole); the next run in that folder removes it and says so."""
    out = tmp_path / "e.obj"
    # a constant rate: nothing is laid out over the steps, so the resume may run on to 30
    args = ["reconstruct", str(SAMPLE), "-o", str(out), "--checkpoint-every", "10", *FAST["args"],
            "--lr-schedule", "constant"]
    assert main([*args, "--steps", "20"]) == 0
    out.unlink()
    run = tmp_path / "e.run"
    stale = run / ".checkpoint.0badc0de.tmp.pt"
    stale.write_bytes(b"half a checkpoint")
    other = run / ".losses.0badc0de.tmp.csv"  # not the checkpoint's: left alone
    other.write_bytes(b"")
    assert main([*args, "--steps", "30", "--resume"]) == 0
    err = capsys.readouterr().err
    assert f"removing {stale}, left by a run that was killed while writing its checkpoint" in err
    assert f"resuming from {run / 'checkpoint.pt'} at step 20" in err
    assert not stale.exists() and other.exists() and out.exists()
    assert load_checkpoint(run / "checkpoint.pt", "sdf").step == 30


class _Evil:
    """Unpickling this writes a file: the proof that a load ran code."""

    target = ""

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.write_text, (pathlib.Path(_Evil.target), "pwned"))


def test_crafted_checkpoint_pickle_is_refused_by_the_commands(tmp_path: Path, capsys) -> None:
    _Evil.target = str(tmp_path / "pwned.txt")
    run = tmp_path / "e.run"
    run.mkdir()
    evil = run / "checkpoint.pt"
    torch.save({"format": "sdfrecon-checkpoint", "version": 1, "model": _Evil()}, evil)
    assert main(["extract", str(evil), "-o", str(tmp_path / "x.obj")]) == 2
    assert capsys.readouterr().err.splitlines() == [f"sdfrecon: error: {evil}: {UNSAFE}"]
    assert main(["reconstruct", str(SAMPLE), "-o", str(tmp_path / "e.obj"), "--resume",
                 "--steps", "1", "--no-progress"]) == 2
    assert capsys.readouterr().err.splitlines() == [f"sdfrecon: error: {evil}: {UNSAFE}"]
    assert not (tmp_path / "pwned.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.run"]


def test_damaged_checkpoint_is_refused_before_training(tmp_path: Path, capsys) -> None:
    """A checkpoint of the right form whose weights do not fit the network."""
    from sdfrecon.config import ReconstructConfig, to_dict
    from sdfrecon.sdf.checkpoint import Checkpoint, save_checkpoint

    config = to_dict(ReconstructConfig())
    config["train"]["progress"] = False
    run = tmp_path / "e.run"
    save_checkpoint(run / "checkpoint.pt", Checkpoint(
        kind="sdf", config=config, model={"net.0.weight": torch.zeros(2, 2)},
        optimizer={"state": {}, "param_groups": []}, step=10, elapsed=1.0,
        generator=torch.Generator().get_state(), extra={}))
    assert main(["reconstruct", str(SAMPLE), "-o", str(tmp_path / "e.obj"), "--resume",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"sdfrecon: error: {run / 'checkpoint.pt'}: is a damaged checkpoint (")


def test_numpy_pickles_are_refused(tmp_path: Path) -> None:
    from sdfrecon.errors import InputError
    from sdfrecon.io import load_point_cloud

    _Evil.target = str(tmp_path / "pwned.txt")
    path = tmp_path / "evil.npy"
    np.save(path, np.array([_Evil()], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="could not be read as a numpy file"):
        load_point_cloud(path)
    np.savez(tmp_path / "evil.npz", points=np.array([_Evil()], dtype=object))
    with pytest.raises(InputError, match="could not be read as a numpy file"):
        load_point_cloud(tmp_path / "evil.npz")
    assert not (tmp_path / "pwned.txt").exists()


def test_no_unsafe_loaders_in_the_package() -> None:
    """Configs are JSON (json) and TOML (tomllib); numpy loads without pickles; torch loads
    with weights_only. Nothing calls pickle, yaml, eval or exec on file contents."""
    unsafe = re.compile(r"\bpickle\.loads?\(|\byaml\.(?:unsafe_)?load\(|(?<![\w.])eval\(|"
                        r"(?<![\w.])exec\(|marshal\.loads?\(|shelve\.|allow_pickle\s*=\s*True|"
                        r"weights_only\s*=\s*False")
    offenders = []
    for source in sorted((REPO / "sdfrecon").rglob("*.py")):
        for number, line in enumerate(source.read_text().splitlines(), start=1):
            if unsafe.search(line.split("#")[0]):
                offenders.append(f"{source.relative_to(REPO)}:{number}: {line.strip()}")
    assert offenders == []
    for source in sorted((REPO / "sdfrecon").rglob("*.py")):
        for line in source.read_text().splitlines():
            if re.search(r"\btorch\.load\(", line):
                assert "weights_only=True" in line, line
            if re.search(r"\bnp\.load\(", line):
                assert "allow_pickle=False" in line, line
