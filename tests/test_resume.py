"""--resume continues a run as it was laid out: another --steps (which would change the
cosine schedule or the divergence decay mid-run) is refused with one line, a checkpoint from
before the smoothed sphere prior resumes with its own prior, and the free-space pool is the
same on every device."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sdfrecon.cli import main
from sdfrecon.sdf.checkpoint import load_checkpoint, save_checkpoint

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample_ellipsoid.xyz"
TINY = ["--hidden-features", "32", "--hidden-layers", "1", "--surface-points", "256",
        "--off-surface-points", "256", "--free-space-pool", "4096", "--resolution", "24",
        "--no-progress", "--no-previews", "--checkpoint-every", "10"]


def _run(tmp_path: Path, name: str, *extra: str) -> int:
    return main(["reconstruct", str(SAMPLE), "-o", str(tmp_path / f"{name}.obj"), *TINY, *extra])


def _same_weights(a: Path, b: Path) -> None:
    left, right = load_checkpoint(a, "sdf"), load_checkpoint(b, "sdf")
    assert left.step == right.step
    for name, value in left.model.items():
        torch.testing.assert_close(right.model[name], value, rtol=1e-5, atol=1e-6)


def test_resume_with_another_step_count_is_refused(tmp_path, interrupt_at, capsys):
    """Interrupted at 10 of 20 steps: --steps 30 would stretch the cosine schedule mid-run
    (exit 2, one line); --steps 20 ends where the uninterrupted run ends."""
    assert _run(tmp_path, "whole", "--steps", "20") == 0
    interrupt_at(10)
    assert _run(tmp_path, "split", "--steps", "20") == 130
    interrupt_at(None)
    ckpt = tmp_path / "split.run" / "checkpoint.pt"
    capsys.readouterr()
    assert _run(tmp_path, "split", "--steps", "30", "--resume") == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"sdfrecon: error: {ckpt}: was trained for --steps 20: resume with --steps 20 (another "
        "count would change the cosine learning-rate schedule mid-run) or drop --resume"]
    assert load_checkpoint(ckpt, "sdf").step == 10  # left as it was
    assert _run(tmp_path, "split", "--steps", "20", "--resume") == 0
    _same_weights(tmp_path / "whole.run" / "checkpoint.pt", ckpt)


def test_normal_free_resume_names_the_divergence_decay_and_constant_schedule_may_extend(
        tmp_path, interrupt_at, capsys):
    interrupt_at(10)
    assert _run(tmp_path, "free", "--steps", "20", "--normals-mode", "free", "--lr-schedule", "constant") == 130
    interrupt_at(None)
    capsys.readouterr()
    assert _run(tmp_path, "free", "--steps", "30", "--normals-mode", "free", "--lr-schedule", "constant",
                "--resume") == 2
    assert "(another count would change the divergence decay mid-run)" in capsys.readouterr().err
    # with a constant rate and the file's normals nothing is laid out over the steps
    assert _run(tmp_path, "flat", "--steps", "10", "--lr-schedule", "constant") == 0
    assert _run(tmp_path, "flat", "--steps", "20", "--lr-schedule", "constant", "--resume", "--overwrite") == 0
    assert load_checkpoint(tmp_path / "flat.run" / "checkpoint.pt", "sdf").step == 20


def test_a_checkpoint_from_before_the_smoothed_prior_resumes_with_its_own(tmp_path, interrupt_at, capsys):
    """Its config has no sphere_prior_smoothing (it trained with the cone): the resumed run
    goes on with the cone, as the same run with --sphere-prior-smoothing 0 does at once."""
    assert _run(tmp_path, "cone", "--steps", "20", "--sphere-prior-smoothing", "0") == 0
    interrupt_at(10)
    assert _run(tmp_path, "old", "--steps", "20", "--sphere-prior-smoothing", "0") == 130
    interrupt_at(None)
    path = tmp_path / "old.run" / "checkpoint.pt"
    old = load_checkpoint(path, "sdf")
    del old.config["siren"]["sphere_prior_smoothing"]  # as checkpoints before the options
    del old.config["normals"]["normals_orientation"]
    save_checkpoint(path, old)
    capsys.readouterr()
    assert _run(tmp_path, "old", "--steps", "20", "--resume") == 0
    assert (f"{path} predates the smoothed sphere prior: resuming with its own prior "
            "(sphere_prior_smoothing 0)") in capsys.readouterr().err
    assert json.loads((tmp_path / "old.run" / "config.json").read_text())["siren"]["sphere_prior_smoothing"] == 0.0
    _same_weights(tmp_path / "cone.run" / "checkpoint.pt", path)


def _pool(device: str):
    from sdfrecon.config import SamplingConfig
    from sdfrecon.sdf.sampling import SdfSampler

    rng = np.random.default_rng(0)
    points = rng.normal(size=(2000, 3))
    points = 0.5 * points / np.linalg.norm(points, axis=1, keepdims=True)
    p = torch.as_tensor(points, dtype=torch.float32, device=device)
    sampler = SdfSampler(p, p / p.norm(dim=1, keepdim=True), SamplingConfig(free_space_pool=8192),
                         torch.Generator(device=device), pool_seed=3)
    return [t.cpu() for t in (sampler.pool, sampler.pool_distance, sampler.pool_side)]


def test_the_free_space_pool_comes_from_a_seeded_cpu_generator():
    """The pool's points are the CPU generator's draws for the seed, on any device."""
    pool = _pool("cpu")[0]
    expected = torch.rand((8192, 3), generator=torch.Generator().manual_seed(3)) * 2.0 - 1.0
    assert torch.equal(pool, expected)


@pytest.mark.cuda
def test_the_free_space_pool_is_the_same_on_cuda():
    """The same pool, distances and sides on the GPU as on the CPU (a CUDA generator draws
    other numbers, so a resume on another device used to train on another pool)."""
    for cpu, cuda in zip(_pool("cpu"), _pool("cuda"), strict=True):
        torch.testing.assert_close(cuda, cpu)
