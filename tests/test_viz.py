"""Pictures: the ray-cast renderer against geometry whose picture is known (a sphere's disc, a cube's
square, which of two quads is in front), the figures' sizes and contents (the zero contour of
an exact sphere SDF where the sphere is), `sdfrecon render`, progress bars and --quiet."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from sdfrecon.cli import main
from sdfrecon.viz import figures
from sdfrecon.viz.render import Camera, PreparedMesh, render_mesh, rotation


def png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int32)


def mesh_pixels(image: np.ndarray) -> np.ndarray:
    """Pixels of the shaded mesh: its steel blue (blue well above red), not white or grey."""
    return (image[..., 2] - image[..., 0] > 12) & (image.sum(axis=-1) < 3 * 245)


def test_sphere_is_a_disc_of_the_framed_size():
    sphere = trimesh.creation.icosphere(4, radius=2.0)
    sphere.apply_translation([5.0, -1.0, 3.0])
    camera = Camera.framing([sphere.vertices])
    image, mask = render_mesh(sphere.vertices, sphere.faces, camera, 200)
    # the ball of the camera's radius spans 1/1.04 of the frame: a disc of pi/4/1.04^2
    assert mask.mean() == pytest.approx(np.pi / 4 / 1.04**2, abs=0.01)
    assert mask[100, 100] == 1 and mask[2, 2] == 0
    inside = image[mask == 1]
    assert inside.std(axis=0).mean() > 0.03  # shaded, not flat
    assert image[mask == 0].min() == 1.0  # background untouched


def test_cube_faces_are_flat_and_square():
    cube = trimesh.creation.box(extents=(2, 2, 2))
    camera = Camera((0.0, 0.0, 0.0), np.sqrt(3.0), azimuth=0.0, elevation=0.0)
    image, mask = render_mesh(cube.vertices, cube.faces, camera, 208, outline=False)
    side = 208 * 2 / (2 * 1.04 * np.sqrt(3.0))  # pixels across the front face
    assert mask.sum() == pytest.approx(side**2, rel=0.03)
    front = image[mask == 1]
    assert front.std(axis=0).max() < 0.02  # the crease keeps each face flat-shaded


def test_nearer_quad_hides_the_farther_one():
    """A quad facing the camera at z = 1 in front of a tilted one at z = -1: where they
    overlap the picture must show the front quad's (brighter, head-on) shade."""
    front = np.array([[-0.5, -0.5, 1.0], [0.5, -0.5, 1.0], [0.5, 0.5, 1.0], [-0.5, 0.5, 1.0]])
    back = np.array([[-1.0, -1.0, -1.5], [1.0, -1.0, -0.5], [1.0, 1.0, -0.5], [-1.0, 1.0, -1.5]])
    quad = np.array([[0, 1, 2], [0, 2, 3]])
    vertices, faces = np.concatenate([front, back]), np.concatenate([quad, quad + 4])
    camera = Camera((0.0, 0.0, 0.0), 1.5, azimuth=0.0, elevation=0.0)
    both = render_mesh(vertices, faces, camera, 120, supersample=1, outline=False)[0]
    alone = render_mesh(front, quad, camera, 120, supersample=1, outline=False)[0]
    behind = render_mesh(back, quad, camera, 120, supersample=1, outline=False)[0]
    assert not np.allclose(alone[60, 60], behind[60, 60], atol=0.02)
    np.testing.assert_allclose(both[60, 60], alone[60, 60], atol=1e-9)
    np.testing.assert_allclose(both[60, 10], behind[60, 10], atol=1e-9)  # outside the front quad


def test_rays_land_where_project_puts_their_origin():
    """Camera.rays and Camera.project agree: each ray starts at its pixel's centre."""
    camera = Camera((1.0, -2.0, 0.5), 3.0, azimuth=30.0, elevation=40.0)
    rays = camera.rays(16)
    uv, _ = camera.project(rays[:, :3], 16)
    rows, cols = np.divmod(np.arange(16 * 16), 16)
    np.testing.assert_allclose(uv, np.stack([cols + 0.5, rows + 0.5], axis=1), atol=1e-4)
    np.testing.assert_allclose(rays[:, 3:] @ rotation(30.0, 40.0)[2], -1.0, atol=1e-6)


def test_inward_winding_draws_the_same_picture():
    """Two-sided light: a closed mesh wound inward looks as it does wound outward."""
    torus = trimesh.creation.torus(1.0, 0.4)
    camera = Camera.framing([torus.vertices], azimuth=30.0, elevation=40.0)
    outward = render_mesh(torus.vertices, torus.faces, camera, 120)[0]
    inward = render_mesh(torus.vertices, torus.faces[:, [0, 2, 1]], camera, 120)[0]
    np.testing.assert_allclose(inward, outward, atol=1e-6)


def test_rotation_turns_about_the_vertical_axis():
    np.testing.assert_allclose(rotation(90.0, 0.0) @ [0, 1, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(rotation(0.0, 90.0) @ [0, 1, 0], [0, 0, 1], atol=1e-12)  # looking down


def test_prepared_mesh_draws_every_view_as_a_fresh_one():
    """render_views builds the scene once; each view is the picture drawn from scratch."""
    sphere = trimesh.creation.icosphere(3)
    camera = Camera.framing([sphere.vertices])
    prepared = PreparedMesh.of(sphere.vertices, sphere.faces)
    for az, el in ((0.0, 0.0), (145.0, 20.0)):
        np.testing.assert_array_equal(render_mesh(prepared, None, camera.turned(az, el), 64)[0],
                                      render_mesh(sphere.vertices, sphere.faces, camera.turned(az, el), 64)[0])


def test_a_mesh_far_from_the_origin_draws_as_at_the_origin():
    """Open3D holds float32 vertices: the scene is stored relative to the mesh's centre, so a
    sphere 1e5 away (where float32 steps are 0.008) draws as the one at the origin."""
    sphere = trimesh.creation.icosphere(3, radius=0.05)
    near = render_mesh(sphere.vertices, sphere.faces, Camera.framing([sphere.vertices]), 64)[0]
    far_vertices = sphere.vertices + [1e5, -2e5, 3e5]
    far = render_mesh(far_vertices, sphere.faces, Camera.framing([far_vertices]), 64)[0]
    np.testing.assert_allclose(far, near, atol=1e-3)


def test_no_faces_draws_the_background():
    image, mask = render_mesh(np.zeros((0, 3)), np.zeros((0, 3), int), Camera((0.0, 0.0, 0.0), 1.0), 32)
    assert mask.max() == 0 and image.min() == 1.0


def test_preview_png(tmp_path):
    sphere = trimesh.creation.icosphere(3, radius=1.0)
    points = trimesh.sample.sample_surface(sphere, 2000, seed=0)[0]
    path = tmp_path / "preview.png"
    figures.save_figure(figures.preview_figure(sphere.vertices, sphere.faces, points), path)
    image = png(path)
    assert image.shape[:2] == figures.PREVIEW_SIZE[::-1]
    assert image.std() > 20
    width = image.shape[1] // 4
    for k in range(3):  # the three views: a disc in each panel
        fraction = mesh_pixels(image[:, k * width:(k + 1) * width]).mean()
        assert 0.2 < fraction < 0.8, k
    points_panel = image[:, 3 * width:]
    magenta = (points_panel[..., 0] > points_panel[..., 1] + 25) & (points_panel[..., 2] > points_panel[..., 1])
    assert magenta.sum() > 200  # the input points drawn over the faded mesh


def sphere_field(centre, radius):
    return lambda p: np.linalg.norm(np.asarray(p) - centre, axis=1) - radius


def test_slices_zero_contour_is_on_the_sphere(tmp_path):
    """The exact SDF of a sphere (centre c, radius r): in each slice, the darkest pixel on
    rays from the centre lies where the axes map the circle of radius r."""
    centre, radius = np.array([1.0, -2.0, 0.5]), 0.6
    fig = figures.slices_figure(sphere_field(centre, radius), np.zeros((0, 3)), centre=centre,
                                half_width=1.0, resolution=200)
    path = tmp_path / "slices.png"
    figures.save_figure(fig, path)
    image = png(path)
    assert image.shape[:2] == figures.SLICES_SIZE[::-1]
    height = image.shape[0]
    dark = image.max(axis=-1)  # the black contour; deep red/blue keep a channel above 90
    for axis_index, ax in enumerate(fig.axes[:3]):
        u, v = [a for a in range(3) if a != axis_index]
        for angle in np.linspace(0, 2 * np.pi, 12, endpoint=False):
            direction = np.array([np.cos(angle), np.sin(angle)])
            radii = np.linspace(0.5 * radius, 1.5 * radius, 120)
            data = np.array([centre[u], centre[v]]) + radii[:, None] * direction
            px = ax.transData.transform(data)
            cols, rows = np.round(px[:, 0]).astype(int), np.round(height - px[:, 1]).astype(int)
            darkest = np.argmin(dark[rows, cols])
            assert dark[rows[darkest], cols[darkest]] < 80, (axis_index, angle)
            expected = ax.transData.transform([centre[u] + radius * direction[0], centre[v] + radius * direction[1]])
            assert np.hypot(*(px[darkest] - expected)) < 2.5, (axis_index, angle)


def test_slices_show_the_points_near_each_plane(tmp_path):
    centre, radius = np.zeros(3), 0.5
    sphere = trimesh.creation.icosphere(4, radius=radius)
    points = trimesh.sample.sample_surface(sphere, 20000, seed=1)[0]
    fig = figures.slices_figure(sphere_field(centre, radius), points)
    path = tmp_path / "slices.png"
    figures.save_figure(fig, path)
    image = png(path)
    green = (image[..., 1] > image[..., 0] + 40) & (image[..., 1] > image[..., 2] + 20)
    assert green.sum() > 300
    for ax in fig.axes[:3]:
        count = int(ax.get_title().split("(")[1].split()[0].replace(",", ""))
        assert 0.01 * len(points) < count < 0.1 * len(points)  # a slab, not everything


def test_training_png(tmp_path):
    log = tmp_path / "losses.csv"
    rows = ["step,seconds,lr,sdf,normal,total"]
    rows += [f"{s},{s / 10},{1e-4 * (1 + s / 100):.3e},{10 / s},{1 / s},{11 / s}" for s in range(10, 210, 10)]
    log.write_text("\n".join(rows) + "\n")
    columns = figures.read_loss_log(log)
    fig = figures.training_figure(columns)
    loss_ax, lr_ax = fig.axes[:2]
    assert loss_ax.get_yscale() == "log"
    assert [line.get_label() for line in loss_ax.get_lines()] == ["sdf", "normal", "total"]
    np.testing.assert_allclose(lr_ax.get_lines()[0].get_ydata(), columns["lr"])
    figures.save_figure(fig, tmp_path / "training.png")
    image = png(tmp_path / "training.png")
    assert image.shape[:2] == figures.TRAINING_SIZE[::-1] and image.std() > 20


@pytest.fixture
def two_meshes(tmp_path):
    trimesh.creation.icosphere(3).export(tmp_path / "sphere.ply")
    trimesh.creation.box(extents=(1.0, 1.0, 1.0)).export(tmp_path / "cube.obj")
    return tmp_path / "sphere.ply", tmp_path / "cube.obj"


def test_render_two_meshes_gives_two_panels(two_meshes, tmp_path, capsys):
    out = tmp_path / "both.png"
    assert main(["render", *map(str, two_meshes), "-o", str(out), "--panel", "200", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    image = png(out)
    assert image.shape[:2] == (240, 400)
    blue = mesh_pixels(image)
    left, right = blue[:, :200].mean(), blue[:, 200:].mean()
    assert 0.2 < left < 0.7 and 0.08 < right < 0.7
    assert not blue[:, 198:202].any()  # two separate panels
    # one camera: the sphere (2 wide) is wider than the unit cube turned by 35° (1.4 wide)
    assert blue[:, :200].any(axis=0).sum() > blue[:, 200:].any(axis=0).sum()


def test_render_bad_input(two_meshes, tmp_path, capsys):
    assert main(["render", str(tmp_path / "nothing.ply"), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nothing.ply" in err
    assert main(["render", str(two_meshes[0]), "-o", str(tmp_path / "x.jpg")]) == 2
    assert "render writes .png" in capsys.readouterr().err
    (tmp_path / "x.png").write_bytes(b"keep")
    assert main(["render", str(two_meshes[0]), "-o", str(tmp_path / "x.png")]) == 2
    assert (tmp_path / "x.png").read_bytes() == b"keep"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("coarse_to_fine", [True, False])
def test_grid_progress_only_on_a_terminal(monkeypatch, coarse_to_fine):
    import dataclasses

    import torch

    from sdfrecon.config import ExtractConfig
    from sdfrecon.sdf.extract import extract_mesh

    config = dataclasses.replace(ExtractConfig(), resolution=33, chunk_cells=16, coarse_to_fine=coarse_to_fine)
    sphere = lambda x: torch.linalg.norm(x, dim=-1) - 0.5  # noqa: E731
    for tty, progress, shown in ((True, True, True), (False, True, False), (True, False, False)):
        stream = _Terminal() if tty else io.StringIO()
        monkeypatch.setattr(sys, "stderr", stream)
        extract_mesh(sphere, config, torch.device("cpu"), progress)
        assert ("grid" in stream.getvalue()) == shown, (tty, progress)


def test_quiet_and_verbose(two_meshes, tmp_path, capsys):
    assert main(["render", str(two_meshes[0]), "-o", str(tmp_path / "a.png"), "--quiet", "--verbose"]) == 2
    assert "--quiet and --verbose" in capsys.readouterr().err
    import logging

    assert main(["render", str(two_meshes[0]), "-o", str(tmp_path / "a.png"), "--panel", "64", "--verbose"]) == 0
    assert logging.getLogger("sdfrecon").getEffectiveLevel() == logging.DEBUG
    assert main(["render", str(two_meshes[0]), "-o", str(tmp_path / "b.png"), "--panel", "64", "--quiet"]) == 0
    assert logging.getLogger("sdfrecon").getEffectiveLevel() == logging.WARNING
