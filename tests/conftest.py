"""Shared fixtures: the public test data beside the checkout, and a small real-shaped cloud."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_collection_modifyitems(config, items) -> None:
    """Skip the tests marked ``cuda`` where PyTorch sees no CUDA device, and say so."""
    marked = [item for item in items if item.get_closest_marker("cuda") is not None]
    if not marked:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is False)")
    for item in marked:
        item.add_marker(skip)


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (see its SOURCES.md); skips the test when it is not checked out."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"../shared/data not found: {SHARED_DATA} (needs the ../shared checkout)")
    return SHARED_DATA


@pytest.fixture
def ellipsoid() -> tuple[np.ndarray, np.ndarray]:
    """500 points on an ellipsoid (semi-axes 0.3, 0.2, 0.1, centre (1, 2, 3)) and unit normals.

    Returns points (500, 3) float64 and outward normals (500, 3) float32.
    """
    rng = np.random.default_rng(7)
    direction = rng.normal(size=(500, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    axes = np.array([0.3, 0.2, 0.1])
    normals = direction / axes  # gradient of sum((x / a)^2) at x = a * direction
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return direction * axes + [1.0, 2.0, 3.0], normals.astype(np.float32)


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def trained_ellipsoid():
    """A small SIREN SDF fitted for a few seconds to data/sample_ellipsoid.xyz (an
    off-centre, tilted ellipsoid): an :class:`sdfrecon.sdf.fit.SdfModel` on the CPU."""
    import dataclasses

    import torch

    from sdfrecon.cloud.normalize import Normalization
    from sdfrecon.config import ReconstructConfig
    from sdfrecon.io import load_point_cloud
    from sdfrecon.sdf.fit import fit_sdf

    cloud = load_point_cloud(REPO / "data" / "sample_ellipsoid.xyz")
    config = ReconstructConfig()
    config = dataclasses.replace(
        config,
        siren=dataclasses.replace(config.siren, hidden_features=64, hidden_layers=2),
        sampling=dataclasses.replace(config.sampling, surface_points=1024, off_surface_points=1024),
        train=dataclasses.replace(config.train, steps=300, progress=False),
    )
    normalization = Normalization.fit(cloud.points, config.normalization)
    model, _ = fit_sdf(normalization.to_unit(cloud.points), cloud.normals, normalization, config,
                       torch.device("cpu"))
    return model


@pytest.fixture
def interrupt_at(monkeypatch):
    """interrupt_at(step): from now on a run raises KeyboardInterrupt (as Ctrl-C would) right
    after writing its checkpoint of that step, which stays on disk; interrupt_at(None): runs
    go on to the end again. An interrupted run for --resume, without a second --steps."""
    import sdfrecon.sdf.fit as fit

    write = fit.save_checkpoint

    def arm(step: int | None) -> None:
        def save(path, ckpt) -> None:
            write(path, ckpt)
            if ckpt.step == step:
                raise KeyboardInterrupt

        monkeypatch.setattr(fit, "save_checkpoint", save)

    return arm
