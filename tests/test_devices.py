"""Checkpoints that move between devices, and the runs that need a GPU (``-m cuda``).

A CUDA generator's state is 16 bytes (Philox seed and offset) and a CPU generator refuses
it, so a checkpoint written on a GPU used to be called damaged on a CPU. These tests carry
such a state on the CPU; the ``cuda`` tests skip (with the reason) without a CUDA device.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from sdfrecon.cli import main
from sdfrecon.sdf.checkpoint import load_checkpoint, save_checkpoint

CUDA_STATE_BYTES = 16  # a CUDA (Philox) generator's state: seed and offset
REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample_ellipsoid.xyz"
TINY = ["--hidden-features", "32", "--hidden-layers", "1", "--surface-points", "256",
        "--off-surface-points", "256", "--resolution", "24", "--no-progress",
        "--checkpoint-every", "10", "--lr-schedule", "constant"]  # a resume may change --steps


def _cuda_state(seed: int = 7, offset: int = 48) -> torch.Tensor:
    """A CUDA-shaped generator state: seed and offset as two little-endian int64, (16,) uint8."""
    return torch.from_numpy(np.array([seed, offset], dtype="<i8").view(np.uint8).copy())


def test_a_cpu_generator_refuses_a_cuda_state():
    """The premise: the two states do not load into each other's generator."""
    assert _cuda_state().numel() == CUDA_STATE_BYTES
    with pytest.raises(RuntimeError):
        torch.Generator().set_state(_cuda_state())


def test_restore_generator_continues_exactly_or_reseeds_from_the_step():
    from sdfrecon.sdf.checkpoint import restore_generator

    g = torch.Generator().manual_seed(1)
    torch.rand(5, generator=g)
    state, expected = g.get_state(), torch.rand(3, generator=g)
    h = torch.Generator()
    assert restore_generator(h, state, seed=0, step=40)
    assert torch.equal(torch.rand(3, generator=h), expected)
    a, b = torch.Generator(), torch.Generator()
    assert not restore_generator(a, _cuda_state(), seed=0, step=40)
    assert not restore_generator(b, _cuda_state(1, 2), seed=0, step=40)
    assert torch.equal(torch.rand(3, generator=a), torch.rand(3, generator=b))  # from (seed, step)
    assert not restore_generator(b, _cuda_state(), seed=0, step=41)
    assert not torch.equal(torch.rand(3, generator=a), torch.rand(3, generator=b))


def test_a_checkpoint_written_on_cuda_resumes_on_the_cpu_and_says_so(tmp_path, capsys):
    out = tmp_path / "e.obj"
    args = ["reconstruct", str(SAMPLE), "-o", str(out), *TINY]
    assert main([*args, "--steps", "20"]) == 0
    ckpt_path = tmp_path / "e.run" / "checkpoint.pt"
    ckpt = load_checkpoint(ckpt_path, "sdf")
    assert ckpt.generator.numel() != CUDA_STATE_BYTES
    # what the same run on a GPU writes: a 16-byte generator state
    save_checkpoint(ckpt_path, dataclasses.replace(
        ckpt, generator=_cuda_state(), extra={**ckpt.extra, "device": "cuda:0"}))
    capsys.readouterr()
    assert main([*args, "--steps", "30", "--resume", "--overwrite"]) == 0
    err = capsys.readouterr().err
    assert f"resuming from {ckpt_path} at step 20" in err
    assert ("the checkpoint was written on cuda and resumes on cpu: the weights and the "
            "optimiser continue, the sampling generator restarts from a seed (step 20)") in err
    resumed = load_checkpoint(ckpt_path, "sdf")
    assert resumed.step == 30 and resumed.extra["device"] == "cpu"
    assert resumed.generator.numel() != CUDA_STATE_BYTES and out.is_file()


def test_an_old_checkpoint_is_told_apart_by_its_state_size():
    """Checkpoints written before the device was recorded."""
    from sdfrecon.sdf.checkpoint import Checkpoint, generator_device

    ckpt = Checkpoint("sdf", {}, {}, {}, 0, 0.0, _cuda_state(), {})
    assert generator_device(ckpt) == "cuda"
    assert generator_device(dataclasses.replace(ckpt, generator=torch.Generator().get_state())) == "cpu"


# --- on a GPU -------------------------------------------------------------------------------

CUDA_RUN = ["--hidden-features", "64", "--hidden-layers", "2", "--surface-points", "1024",
            "--off-surface-points", "1024", "--resolution", "96", "--no-progress"]


@pytest.mark.cuda
def test_reconstruction_on_cuda_end_to_end(tmp_path):
    import json

    import trimesh

    from sdfrecon.evaluation.metrics import chamfer_fscore, sample_surface, topology

    out = tmp_path / "e.obj"
    assert main(["reconstruct", str(SAMPLE), "-o", str(out), "--device", "cuda", "--steps", "400",
                 *CUDA_RUN]) == 0
    assert json.loads((tmp_path / "e.run" / "summary.json").read_text())["device"].startswith("cuda")
    mesh = trimesh.load(out, process=False)
    truth = np.loadtxt(SAMPLE)[:, :3]
    diag = np.linalg.norm(truth.max(0) - truth.min(0))
    m = chamfer_fscore(sample_surface(mesh, 50_000, seed=0)[0], truth, taus=(0.01 * diag,))
    assert m["chamfer_l1"] / diag < 0.004 and m[f"fscore@{0.01 * diag:g}"] > 0.98
    topo = topology(mesh)
    assert topo["components"] == 1 and topo["watertight"]


@pytest.mark.cuda
def test_resume_on_cuda_matches_an_uninterrupted_run(tmp_path, caplog):
    """Stop at step 20 and resume to 40 on the GPU: the same weights as 40 steps at once
    (the CUDA generator's state round-trips); then the GPU checkpoint resumes on the CPU."""
    def run(name: str, steps: int, *extra: str) -> Path:
        out = tmp_path / f"{name}.obj"
        assert main(["reconstruct", str(SAMPLE), "-o", str(out), "--device", "cuda", "--steps",
                     str(steps), *TINY, *extra]) == 0
        return tmp_path / f"{name}.run" / "checkpoint.pt"

    whole = load_checkpoint(run("whole", 40), "sdf")
    run("split", 20)
    half = load_checkpoint(tmp_path / "split.run" / "checkpoint.pt", "sdf")
    assert half.generator.numel() == CUDA_STATE_BYTES and half.extra["device"].startswith("cuda")
    resumed = load_checkpoint(run("split", 40, "--resume", "--overwrite"), "sdf")
    assert resumed.step == 40
    for name, value in whole.model.items():
        torch.testing.assert_close(resumed.model[name], value, rtol=1e-5, atol=1e-6)
    out = tmp_path / "split.obj"
    with caplog.at_level(logging.WARNING):
        assert main(["reconstruct", str(SAMPLE), "-o", str(out), "--device", "cpu", "--steps", "50",
                     *TINY, "--resume", "--overwrite"]) == 0
    assert "the checkpoint was written on cuda and resumes on cpu" in caplog.text


@pytest.mark.cuda
def test_extraction_on_cuda_equals_the_cpu_one(trained_ellipsoid):
    """The same network meshed on both devices: values agree to float32 rounding, so the
    meshes have the same topology and vertices within a thousandth of a voxel."""
    from scipy.spatial import cKDTree

    from sdfrecon.config import ExtractConfig
    from sdfrecon.evaluation.metrics import topology
    from sdfrecon.sdf.extract import extract_mesh

    config = ExtractConfig(resolution=128, chunk_cells=32)
    network = trained_ellipsoid.network
    v_cpu, f_cpu, _ = extract_mesh(network.cpu(), config, torch.device("cpu"))
    v_gpu, f_gpu, _ = extract_mesh(network.cuda(), config, torch.device("cuda"))
    network.cpu()
    import trimesh

    topo_cpu = topology(trimesh.Trimesh(v_cpu, f_cpu, process=False))
    assert topology(trimesh.Trimesh(v_gpu, f_gpu, process=False)) == topo_cpu
    assert abs(len(f_gpu) - len(f_cpu)) <= 0.001 * len(f_cpu)
    voxel = 2.0 / (config.resolution - 1)
    gap = cKDTree(v_cpu).query(v_gpu)[0]
    assert np.quantile(gap, 0.999) < 1e-3 * voxel and gap.max() < 0.5 * voxel
