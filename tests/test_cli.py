"""The sdfrecon command end to end on the committed sample (an off-centre, tilted,
lopsided ellipsoid): the mesh comes back in the input's coordinates; bad input gets exit
code 2 and one line; nothing is overwritten without --overwrite; --resume continues."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sdfrecon.cli import main

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample_ellipsoid.xyz"
FAST = ["--hidden-features", "64", "--hidden-layers", "2", "--surface-points", "1024",
        "--off-surface-points", "1024", "--resolution", "96", "--no-progress", "--no-previews"]


def _ellipsoid_truth(n: int = 50_000):
    from sdfrecon.evaluation import shapes

    return shapes, shapes.ellipsoid_cloud(n, seed=123)[0]


@pytest.fixture(scope="module")
def ellipsoid_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ellipsoid") / "ellipsoid.obj"
    assert main(["reconstruct", str(SAMPLE), "-o", str(out), "--steps", "400", *FAST, "--previews"]) == 0
    return out


def test_run_folder_pictures(ellipsoid_run):
    """preview.png, sdf_slices.png and training.png: their sizes, not blank, the mesh in
    each view, the zero contour in each slice, and what they cost (summary.json)."""
    from PIL import Image

    from sdfrecon.viz import figures

    run = ellipsoid_run.with_name("ellipsoid.run")
    sizes = {"preview.png": figures.PREVIEW_SIZE, "sdf_slices.png": figures.SLICES_SIZE,
             "training.png": figures.TRAINING_SIZE}
    images = {}
    for name, size in sizes.items():
        images[name] = np.asarray(Image.open(run / name).convert("RGB")).astype(int)
        assert images[name].shape[:2] == size[::-1], name
        assert images[name].std() > 20, name
    preview = images["preview.png"]
    width = preview.shape[1] // 4
    for k in range(3):
        panel = preview[:, k * width:(k + 1) * width]
        fraction = ((panel[..., 2] - panel[..., 0] > 12) & (panel.sum(-1) < 735)).mean()
        assert 0.05 < fraction < 0.6, k
    slices = images["sdf_slices.png"]
    for k in range(3):  # each slice plane crosses the ellipsoid: a black contour inside each map
        third = slices[:, k * 450:(k + 1) * 450]
        coloured = np.abs(third[..., 0] - third[..., 2]) > 60  # the RdBu map, not text or frame
        rows, cols = np.flatnonzero(coloured.any(1)), np.flatnonzero(coloured.any(0))
        inside = third[rows.min() + 3:rows.max() - 3, cols.min() + 3:cols.max() - 3]
        assert (inside.max(axis=-1) < 60).sum() > 300, k
    seconds = json.loads((run / "summary.json").read_text())["preview_seconds"]
    assert set(seconds) == set(sizes) and all(0 < v < 120 for v in seconds.values())


def test_ellipsoid_comes_back_in_place(ellipsoid_run):
    import trimesh

    from sdfrecon.evaluation.metrics import chamfer_fscore, sample_surface, topology

    mesh = trimesh.load(ellipsoid_run, process=False)
    shapes, truth = _ellipsoid_truth()
    samples, _ = sample_surface(mesh, 50_000, seed=0)
    diag = np.linalg.norm(truth.max(0) - truth.min(0))
    m = chamfer_fscore(samples, truth, taus=(0.01 * diag,))
    assert m["chamfer_l1"] / diag < 0.004
    assert m[f"fscore@{0.01 * diag:g}"] > 0.98
    topo = topology(mesh)
    assert topo["components"] == 1 and topo["genus"] == 0 and topo["watertight"]
    # Place, size and orientation: the principal axes of the mesh are the ellipsoid's.
    volume = 4 / 3 * np.pi * np.prod(shapes.AXES)
    assert mesh.volume == pytest.approx(volume, rel=0.05)
    np.testing.assert_allclose(mesh.center_mass, shapes.CENTRE, atol=0.01)
    rot = shapes.rotation((0.3, -0.4, 0.8))
    local = (samples - shapes.CENTRE) @ rot
    np.testing.assert_allclose(np.abs(local).max(0), shapes.AXES, rtol=0.03)


def test_run_folder_holds_checkpoint_config_and_log(ellipsoid_run):
    run = ellipsoid_run.with_name("ellipsoid.run")
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt", "config.json", "losses.csv", "preview.png",
                                                     "sdf_slices.png", "summary.json", "training.png"]
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["steps"] == 400 and config["siren"]["hidden_features"] == 64
    rows = list(csv.DictReader((run / "losses.csv").open()))
    assert rows[-1]["step"] == "400"
    assert float(rows[-1]["total"]) < float(rows[0]["total"])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 400 and summary["vertices"] > 1000


def test_extract_remeshes_a_saved_model(ellipsoid_run, tmp_path):
    import trimesh

    from sdfrecon.evaluation.metrics import compare_meshes

    ckpt = ellipsoid_run.with_name("ellipsoid.run") / "checkpoint.pt"
    same, fine = tmp_path / "same.obj", tmp_path / "fine.ply"
    assert main(["extract", str(ckpt), "-o", str(same), "--resolution", "96"]) == 0
    assert main(["extract", str(ckpt), "-o", str(fine), "--resolution", "160"]) == 0
    original = trimesh.load(ellipsoid_run, process=False)
    # The same settings give the same mesh: the checkpoint holds everything that matters.
    again = trimesh.load(same, process=False)
    assert np.array_equal(again.faces, original.faces)
    np.testing.assert_allclose(again.vertices, original.vertices, atol=1e-6)
    finer = trimesh.load(fine, process=False)
    assert len(finer.vertices) > 2 * len(original.vertices)
    assert compare_meshes(finer, original, n=20_000)["chamfer_l1_rel"] < 0.005


def test_cloud_without_normals_gets_estimated_normals(tmp_path):
    import trimesh

    from sdfrecon.io import load_point_cloud

    cloud = tmp_path / "bare.xyz"
    np.savetxt(cloud, load_point_cloud(SAMPLE).points)
    out = tmp_path / "bare.obj"
    assert main(["reconstruct", str(cloud), "-o", str(out), "--steps", "300", *FAST]) == 0
    summary = json.loads((tmp_path / "bare.run" / "summary.json").read_text())
    assert summary["normals"] == "estimated"
    assert "preview_seconds" not in summary and not list((tmp_path / "bare.run").glob("*.png"))  # --no-previews
    shapes, _ = _ellipsoid_truth(10)
    mesh = trimesh.load(out, process=False)
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * np.prod(shapes.AXES), rel=0.1)


def test_existing_output_is_not_overwritten(ellipsoid_run, capsys):
    before = ellipsoid_run.read_bytes()
    assert main(["reconstruct", str(SAMPLE), "-o", str(ellipsoid_run), *FAST]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"sdfrecon: error: {ellipsoid_run}: already exists (pass --overwrite to replace it)"]
    assert ellipsoid_run.read_bytes() == before


def test_resume_continues_from_the_checkpoint(tmp_path, interrupt_at):
    """A run of 120 steps interrupted after its checkpoint at 60 ends with --resume."""
    out = tmp_path / "e.obj"
    args = ["reconstruct", str(SAMPLE), "-o", str(out), "--overwrite", *FAST, "--resolution", "32"]
    interrupt_at(60)
    assert main([*args, "--steps", "120", "--log-every", "10", "--checkpoint-every", "60"]) == 130
    interrupt_at(None)
    assert main([*args, "--steps", "120", "--log-every", "10", "--checkpoint-every", "60", "--resume"]) == 0
    steps = [int(r["step"]) for r in csv.DictReader((tmp_path / "e.run" / "losses.csv").open())]
    assert steps == list(range(10, 130, 10))
    assert json.loads((tmp_path / "e.run" / "summary.json").read_text())["steps"] == 120
    # A different model cannot resume that checkpoint.
    assert main([*args, "--steps", "120", "--resume", "--hidden-features", "32"]) == 2


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("missing.xyz", None, "no such file"),
        ("flat.xyz", "\n".join(f"{i % 7} {i // 7} 0" for i in range(49)), "all points lie on a plane: there is no volume to reconstruct"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, name, content, problem):
    cloud = tmp_path / name
    if content is not None:
        cloud.write_text(content)
    out = tmp_path / "out.obj"
    proc = subprocess.run(
        [sys.executable, "-m", "sdfrecon.cli", "reconstruct", str(cloud), "-o", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"sdfrecon: error: {cloud}: {problem}"]
    assert not out.exists() and not (tmp_path / "out.run").exists()


def test_unknown_output_format_is_refused_before_training(tmp_path, capsys):
    out = tmp_path / "mesh.xyz"
    assert main(["reconstruct", str(SAMPLE), "-o", str(out), *FAST]) == 2
    assert capsys.readouterr().err.strip() == (
        f"sdfrecon: error: {out}: unknown mesh format '.xyz' (supported: .obj, .ply, .stl, .glb, .off)"
    )


def test_help_is_fast_and_lists_subcommands():
    proc = subprocess.run([sys.executable, "-m", "sdfrecon.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "reconstruct" in proc.stdout and "extract" in proc.stdout
    probe = "import sys, sdfrecon.cli; print('torch' in sys.modules, 'open3d' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.split() == ["False", "False"]


def test_poisson_evaluate_and_check_do_not_import_torch(tmp_path):
    """The classical baseline and the metrics need no network: they must not pay torch's
    import (~2 s), which would also bias the Poisson timings of the benchmarks."""
    mesh = tmp_path / "p.ply"
    probe = ("import sys; from sdfrecon.cli import main; "
             f"main(['poisson', {str(SAMPLE)!r}, '-o', {str(mesh)!r}]); "
             f"main(['evaluate', {str(mesh)!r}, '--reference', {str(mesh)!r}]); "
             f"main(['check', {str(mesh)!r}]); "
             "print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "False"


def test_an_empty_level_set_is_a_clear_error(tmp_path, capsys):
    """A field with no zero crossing in the box (sphere prior larger than the box) gives
    exit code 1 and a sentence, not a traceback from the mesh writer."""
    out = tmp_path / "none.obj"
    args = ["reconstruct", str(SAMPLE), "-o", str(out), *FAST, "--steps", "1", "--sphere-prior", "5.0",
            "--resolution", "16"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("sdfrecon: error: the network's zero level set does not cross the grid")
    assert not out.exists()
