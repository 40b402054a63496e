"""The Python API (sdfrecon.reconstruct / fit / load / evaluate): in memory, in the input's
coordinates, against the exact sphere; and the README's example, run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sdfrecon

REPO = Path(__file__).resolve().parents[1]
CENTRE, RADIUS = np.array([1.0, -2.0, 0.5]), 0.8  # off the origin, not unit size
SMALL = {"steps": 150, "hidden_features": 32, "hidden_layers": 2, "surface_points": 512,
         "off_surface_points": 512, "progress": False, "device": "cpu"}


def sphere_cloud(n: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """A Fibonacci sphere: points (n, 3) on the sphere of CENTRE and RADIUS, outward normals."""
    i = np.arange(n) + 0.5
    polar, azimuth = np.arccos(1 - 2 * i / n), np.pi * (1 + 5**0.5) * i
    normals = np.column_stack([np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar),
                               np.cos(polar)])
    return CENTRE + RADIUS * normals, normals


@pytest.fixture(scope="module")
def fitted() -> sdfrecon.FittedSdf:
    points, normals = sphere_cloud()
    return sdfrecon.fit(points, normals, **SMALL)


def test_import_is_light() -> None:
    probe = "import sys, sdfrecon; print(sorted({'torch', 'open3d', 'trimesh'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_mesh_is_the_sphere_in_input_coordinates(fitted, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may be written, here or anywhere relative
    mesh = fitted.mesh(resolution=40)
    assert mesh.is_watertight and len(mesh.faces) > 1000
    radial = np.abs(np.linalg.norm(mesh.vertices - CENTRE, axis=1) - RADIUS)
    assert radial.mean() < 0.005 * RADIUS and radial.max() < 0.02 * RADIUS
    points, _ = sphere_cloud()
    metrics = sdfrecon.evaluate(mesh, points, samples=5000)
    assert metrics["reference_kind"] == "cloud" and metrics["chamfer_l1_rel"] < 0.01
    assert list(tmp_path.iterdir()) == []


def test_sdf_and_gradient_in_input_units(fitted) -> None:
    points, normals = sphere_cloud()
    assert np.abs(fitted.sdf(points)).max() < 0.01 * RADIUS  # input units
    # one point, inside, half way to the centre (the centre itself is the sphere's medial
    # point, a cone tip of the distance that a smooth network rounds off)
    inside = CENTRE + 0.5 * RADIUS * normals[0]
    assert fitted.sdf(inside) == pytest.approx(-0.5 * RADIUS, abs=0.02 * RADIUS)
    outside = CENTRE + 1.5 * RADIUS * normals[:50]
    assert fitted.sdf(outside) == pytest.approx(np.full(50, 0.5 * RADIUS), abs=0.05 * RADIUS)
    gradient = fitted.gradient(points)
    assert gradient.shape == (len(points), 3)
    assert np.mean(np.sum(gradient * normals, axis=1)) > 0.98


def test_save_load_and_options(fitted, tmp_path) -> None:
    path = tmp_path / "model.pt"
    fitted.save(path)
    with pytest.raises(sdfrecon.InputError, match="already exists"):
        fitted.save(path)
    loaded = sdfrecon.load(path)
    x = sphere_cloud(50)[0] * 1.1
    np.testing.assert_allclose(loaded.sdf(x), fitted.sdf(x), atol=1e-6)
    assert loaded.config == fitted.config and loaded.config.train.steps == 150
    with pytest.raises(TypeError, match="unknown option 'stepz'"):
        sdfrecon.reconstruct(sphere_cloud()[0], stepz=10)
    with pytest.raises(TypeError, match="option 'steps' must be"):
        sdfrecon.fit(sphere_cloud()[0], steps=2.5)
    with pytest.raises(sdfrecon.InputError, match="all points lie on a plane"):
        sdfrecon.fit(np.column_stack([np.random.default_rng(0).random((100, 2)), np.zeros(100)]))


def test_readme_example_runs() -> None:
    """The README's Python example, between its markers, run as written (on a small sphere)."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- api-example -->\s*```python\n(.*?)```\s*<!-- /api-example -->", text, re.S)
    assert block, "README.md lost its <!-- api-example --> block"
    code = block.group(1)
    assert len(code.strip().splitlines()) <= 8
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    mesh = namespace["mesh"]
    assert mesh.is_watertight
    radius = np.linalg.norm(mesh.vertices - mesh.vertices.mean(axis=0), axis=1)
    assert np.abs(radius - 1.0).mean() < 0.02
