"""The shared training loop: schedule, budgets, NaN handling, checkpoints; the losses'
masks; and normal estimation for clouds without normals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from sdfrecon.config import LossConfig, NormalsConfig, TrainConfig
from sdfrecon.errors import TrainingError
from sdfrecon.sdf.losses import sdf_losses
from sdfrecon.sdf.sampling import SdfBatch
from sdfrecon.sdf.train import TrainState, lr_factor, train

QUIET = TrainConfig(steps=20, progress=False, log_every=5, checkpoint_every=10, warmup_steps=0)


def _quadratic():
    w = torch.nn.Parameter(torch.tensor([3.0, -2.0]))
    model = torch.nn.Module()
    model.w = w
    return model, torch.optim.Adam([w], lr=0.1)


def test_schedule_warms_up_then_decays_to_the_final_ratio():
    cfg = TrainConfig(warmup_steps=10, lr_final_ratio=0.1)
    assert lr_factor(0, 0.0, cfg) == pytest.approx(0.1)
    assert lr_factor(9, 0.0, cfg) == pytest.approx(1.0)
    assert lr_factor(500, 0.5, cfg) == pytest.approx(0.55)
    assert lr_factor(1000, 1.0, cfg) == pytest.approx(0.1)
    assert lr_factor(500, 0.5, dataclasses.replace(cfg, lr_schedule="constant")) == 1.0


def test_training_decreases_the_loss_and_checkpoints(tmp_path):
    model, opt = _quadratic()
    saved = []
    state = train(model, opt, lambda: {"total": (model.w**2).sum()}, QUIET,
                  log_path=tmp_path / "log.csv", checkpoint_fn=lambda s: saved.append(s.step))
    assert state.step == 20 and saved == [10, 20]
    assert float((model.w**2).sum().detach()) < 13.0
    lines = (tmp_path / "log.csv").read_text().splitlines()
    assert lines[0] == "step,seconds,lr,total" and len(lines) == 5


def test_time_budget_stops_training():
    model, opt = _quadratic()
    cfg = dataclasses.replace(QUIET, steps=10**9, time_budget=0.3)
    state = train(model, opt, lambda: {"total": (model.w**2).sum()}, cfg)
    assert 0.3 <= state.elapsed < 5.0 and state.step < 10**9


def test_nan_loss_stops_and_keeps_the_last_checkpoint():
    model, opt = _quadratic()
    calls = {"n": 0}

    def loss_fn():
        calls["n"] += 1
        bad = calls["n"] > 12
        return {"total": (model.w**2).sum() * (float("nan") if bad else 1.0)}

    saved = []
    with pytest.raises(TrainingError, match=r"the loss became nan at step 12; the last good checkpoint \(step 10\) is kept"):
        train(model, opt, loss_fn, QUIET, state=TrainState(), checkpoint_fn=lambda s: saved.append(s.step))
    assert saved == [10]


@pytest.mark.parametrize(("bad_from", "checkpoint", "kept"), [
    (3, True, "it failed before the first checkpoint, so none was written"),
    (3, False, "no checkpoint is written by this run"),
])
def test_nan_loss_before_any_checkpoint_says_so(bad_from, checkpoint, kept):
    model, opt = _quadratic()
    calls = {"n": 0}

    def loss_fn():
        calls["n"] += 1
        return {"total": (model.w**2).sum() * (float("inf") if calls["n"] > bad_from else 1.0)}

    saved = []
    with pytest.raises(TrainingError) as info:
        train(model, opt, loss_fn, QUIET, checkpoint_fn=(lambda s: saved.append(s.step)) if checkpoint else None)
    assert str(info.value) == f"the loss became inf at step {bad_from}; {kept}"
    assert saved == []


def test_losses_use_their_masks():
    pts = torch.tensor([[0.0, 0, 0], [0.5, 0, 0], [0.9, 0, 0]])
    normals = torch.tensor([[1.0, 0, 0], [0, 0, 0], [0, 0, 0]])
    batch = SdfBatch(pts, normals, torch.tensor([True, False, False]), torch.tensor([False, True, False]))
    sdf = torch.tensor([0.1, 0.0, 5.0])
    grad = torch.tensor([[2.0, 0, 0], [0, 1.0, 0], [0, 0, 3.0]])
    t = sdf_losses(batch, sdf, grad, LossConfig(1.0, 1.0, 1.0, 1.0, 100.0))
    assert float(t["sdf"]) == pytest.approx(0.1)  # on-surface point only
    assert float(t["normal"]) == pytest.approx(0.0)  # grad parallel to n
    assert float(t["eikonal"]) == pytest.approx((1 + 0 + 2) / 3)  # all points
    assert float(t["off"]) == pytest.approx(1.0)  # exp(-100 * 0) at the off-surface point
    assert float(t["total"]) == pytest.approx(0.1 + 1.0 + 1.0)


def test_estimated_normals_of_a_sphere_point_outward():
    from sdfrecon.cloud.normals import estimate_normals

    rng = np.random.default_rng(0)
    d = rng.normal(size=(3000, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    points = d * [2.0, 1.0, 1.5] + [10.0, -3.0, 4.0]
    normals = estimate_normals(points, NormalsConfig())
    outward = np.einsum("ij,ij->i", normals, points - [10.0, -3.0, 4.0])
    assert (outward > 0).all()
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)


def test_resume_cuts_the_log_back_to_the_checkpoint(tmp_path):
    """A killed run may have logged steps after its last checkpoint: on resume they go."""
    log = tmp_path / "log.csv"
    log.write_text("step,seconds,lr,total\n" + "".join(f"{s},0,0.1,1\n" for s in (5, 10, 15, 20)))
    model, opt = _quadratic()
    train(model, opt, lambda: {"total": (model.w**2).sum()}, QUIET, state=TrainState(step=10),
          log_path=log)
    steps = [int(line.split(",")[0]) for line in log.read_text().splitlines()[1:]]
    assert steps == [5, 10, 15, 20]  # 15 and 20 of the killed run replaced by the resumed ones
    assert log.read_text().count("\n15,") == 1


def _fit_small(**train_options):
    from sdfrecon.cloud.normalize import Normalization
    from sdfrecon.config import ReconstructConfig, SamplingConfig, SirenConfig
    from sdfrecon.sdf.fit import fit_sdf

    rng = np.random.default_rng(0)
    normals = rng.normal(size=(2000, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    points = 0.6 * normals
    config = ReconstructConfig(
        siren=SirenConfig(hidden_features=32, hidden_layers=2),
        sampling=SamplingConfig(surface_points=256, off_surface_points=256),
        train=TrainConfig(steps=30, progress=False, **train_options),
    )
    norm = Normalization.fit(points, config.normalization)
    return fit_sdf(norm.to_unit(points), normals, norm, config, torch.device("cpu"))


def test_both_gradient_paths_train_alike():
    """The hand-written step and autograd's double backward take the same steps (float32
    rounding apart): 30 Adam steps from one seed end within 1e-3 of each other."""
    analytic, s1 = _fit_small(gradient="analytic")
    autograd, s2 = _fit_small(gradient="autograd")
    for (name, a), b in zip(analytic.network.named_parameters(), autograd.network.parameters(), strict=True):
        assert ((a - b).norm() / b.norm()).item() < 1e-3, name
    assert s1.history[-1]["total"] == pytest.approx(s2.history[-1]["total"], rel=1e-3)


def test_compile_option_uses_the_compiled_kernels(monkeypatch):
    """--compile swaps in compiled kernels (here stand-ins, so that no compile runs)."""
    import sdfrecon.sdf.siren as siren

    calls = []

    def fake_compiled():
        calls.append(1)
        return siren.SirenKernels()

    monkeypatch.setattr(siren, "compiled_kernels", fake_compiled)
    model, _ = _fit_small(compile=True)
    assert calls == [1] and model.network.kernels is not None
    model, _ = _fit_small(compile=False)
    assert calls == [1] and model.network.kernels is None


def test_our_adam_is_torch_adam_bit_for_bit_and_shares_its_state_dict():
    from sdfrecon.sdf.optim import Adam

    torch.manual_seed(0)
    ours, theirs = (torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
                    for _ in range(2))
    theirs.load_state_dict(ours.state_dict())
    opt_ours, opt_theirs = Adam(ours.parameters(), lr=1e-2), torch.optim.Adam(theirs.parameters(), lr=1e-2)
    x = torch.randn(64, 3)
    for i in range(30):
        for opt, model in ((opt_ours, ours), (opt_theirs, theirs)):
            opt.param_groups[0]["lr"] = 1e-2 * (1 - i / 40)  # as the schedule sets it
            opt.zero_grad(set_to_none=True)
            (model(x) ** 2).mean().backward()
            opt.step()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b)
    # a checkpoint of either loads into the other and continues identically
    again = Adam(theirs.parameters(), lr=1e-2)
    again.load_state_dict(opt_theirs.state_dict())
    torch.optim.Adam(ours.parameters()).load_state_dict(opt_ours.state_dict())
    assert again.state_dict()["state"][0]["step"] == 30
    with pytest.raises(ValueError):
        Adam(list(ours.parameters())[:2]).load_state_dict(opt_theirs.state_dict())
