"""`sdfrecon bench` on a folder of small meshes with tiny settings: the result files, the
re-run that does no work, failures recorded without stopping the others, TOML specs."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import tyro

from sdfrecon.bench import (
    BenchOptions,
    load_shapes,
    markdown_report,
    parse_methods,
    run_bench,
    siren_config,
)
from sdfrecon.bench.driver import _lock
from sdfrecon.bench.specs import parse_assignments
from sdfrecon.cli.bench import Bench
from sdfrecon.errors import InputError, TrainingError

# A SIREN that trains in a few seconds and still finds the surface of these shapes.
TINY_SIREN = ["--siren-steps", "100", "--resolution", "40", "--siren", "hidden_features=32",
              "hidden_layers=2", "surface_points=512", "off_surface_points=512"]
TINY = ["--points", "3000", "--samples", "5000", "--depth", "6", "--quiet", *TINY_SIREN]
TINY_OPTIONS = BenchOptions(points=3000, samples=5000, poisson_depth=6,
                            siren={"steps": 100, "resolution": 40, "hidden_features": 32, "hidden_layers": 2,
                                   "surface_points": 512, "off_surface_points": 512})


def write_shapes(folder: Path) -> Path:
    """An off-centre icosphere (.ply) and a torus (.obj): genus 0 and genus 1."""
    import trimesh

    folder.mkdir(parents=True, exist_ok=True)
    trimesh.creation.icosphere(3, radius=1.0).apply_translation([2.0, 0.0, 1.0]).export(folder / "sphere.ply")
    trimesh.creation.torus(1.0, 0.35).export(folder / "torus.obj")
    return folder


def read_jsonl(path: Path) -> dict[tuple[str, str], dict]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return {(r["shape"], r["method"]): r for r in records}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """Two good meshes and a broken one, methods siren and poisson, two worker processes."""
    root = tmp_path_factory.mktemp("bench")
    shapes = write_shapes(root / "shapes")
    (shapes / "broken.off").write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n")  # a face line is missing
    (shapes / "notes.txt").write_text("not a mesh: ignored\n")
    out = root / "out"
    with pytest.raises(TrainingError, match=r"2 of 6 job\(s\) failed \(broken__siren, broken__poisson\)"):
        tyro.cli(Bench, args=["--shapes", str(shapes), "--methods", "siren,poisson", "--jobs", "2",
                              "-o", str(out), *TINY]).run()
    return shapes, out


def test_results_files(first_run):
    shapes, out = first_run
    records = read_jsonl(out / "results.jsonl")
    page = (out / "report.html").read_text()  # the table and a thumbnail of every mesh made
    for shape in ("sphere", "torus"):
        for name in ("reference", "siren", "poisson"):
            assert (out / "thumbnails" / f"{shape}__{name}.png").is_file()
            assert f'src="thumbnails/{shape}__{name}.png"' in page
    assert page.count("no mesh") == 3  # broken: its reference is unreadable, both methods failed
    assert set(records) == {(s, m) for s in ("sphere", "torus", "broken") for m in ("siren", "poisson")}
    for shape in ("sphere", "torus"):
        assert (out / "clouds" / f"{shape}.ply").is_file()
        for method in ("siren", "poisson"):
            r = records[(shape, method)]
            assert r["status"] == "ok", r.get("error")
            assert (out / r["mesh"]).is_file() and r["mesh"] == f"meshes/{shape}__{method}.ply"
            assert r["cloud_points"] == 3000 and r["normals"] == "file"
            assert r["threads"] == max(1, (os.cpu_count() or 1) // 2)
            assert r["seconds"] > 0 and r["job_seconds"] >= r["seconds"] + r["eval_seconds"]
            assert r["peak_rss_mb"] >= r["start_rss_mb"] > 0
            for key in ("chamfer_l1_rel", "exact_chamfer_l1_rel", "fscore@1%", "normal_consistency"):
                assert math.isfinite(r[key])
            assert r["samples"] == 5000 and r["reference"] == str(shapes / Path(r["reference"]).name)
            assert r["watertight"]
        # Poisson's topology is right; the 100-step SIREN's on the sphere (the torus needs longer).
        assert (records[(shape, "poisson")]["components"], records[(shape, "poisson")]["genus"]) == (
            1, 1 if shape == "torus" else 0)
        # Poisson on clean samples is close to the truth; the 100-step SIREN at least near it.
        assert records[(shape, "poisson")]["exact_chamfer_l1_rel"] < 0.002
        assert records[(shape, "siren")]["exact_chamfer_l1_rel"] < 0.05
    assert (records[("sphere", "siren")]["components"], records[("sphere", "siren")]["genus"]) == (1, 0)
    assert records[("sphere", "siren")]["settings"]["siren"]["steps"] == 100
    assert records[("sphere", "siren")]["steps"] == 100
    assert records[("sphere", "poisson")]["settings"]["poisson"] == {"depth": 6, "trim": None, "normals_mode": "auto"}
    for method in ("siren", "poisson"):
        broken = records[("broken", method)]
        assert broken["status"] == "failed" and "broken.off" in broken["error"]
        assert "could not be read as a mesh" in broken["error"]
        assert not (out / "meshes" / f"broken__{method}.ply").exists()

    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and {(r["shape"], r["method"]) for r in rows} == set(records)
    assert list(rows[0])[:4] == ["shape", "method", "status", "error"]
    row = next(r for r in rows if r["shape"] == "torus" and r["method"] == "poisson")
    assert float(row["chamfer_l1_rel"]) == pytest.approx(records[("torus", "poisson")]["chamfer_l1_rel"])
    assert json.loads(row["settings"])["poisson"]["depth"] == 6

    md = (out / "results.md").read_text()
    assert "6 jobs: 4 ok, 2 failed" in md
    for shape in ("sphere", "torus"):
        for method in ("siren", "poisson"):
            r = records[(shape, method)]
            assert f"| {shape} | {method} | {100 * r['chamfer_l1_rel']:.3f} | {100 * r['exact_chamfer_l1_rel']:.3f} |" in md
    mean = np.mean([100 * records[(s, "poisson")]["exact_chamfer_l1_rel"] for s in ("sphere", "torus")])
    assert any(line.startswith("| poisson | mean | 2 |") and f"| {mean:.3f} |" in line for line in md.splitlines())
    assert "| siren | median | 2 |" in md
    assert "## Failed" in md and "| broken | siren | " in md


def test_rerun_skips_finished_and_retries_failed(first_run, tmp_path):
    shapes, out = first_run
    before = read_jsonl(out / "results.jsonl")
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "meshes").iterdir()}
    # Same spec again: only the two failed jobs run again (and fail again, in the driver).
    summary = run_bench(shapes, "siren,poisson", out, jobs=2, options=TINY_OPTIONS)
    assert sorted((r["shape"], r["method"]) for r in summary.ran) == [("broken", "poisson"), ("broken", "siren")]
    assert all(r["status"] == "failed" for r in summary.ran) and len(summary.skipped) == 4
    # Without the broken file: nothing to do at all; no earlier record is lost (the broken
    # shape's records stay), and the finished records are unchanged.
    clean = shutil.copytree(shapes, tmp_path / "clean", ignore=shutil.ignore_patterns("broken.off"))
    summary = run_bench(clean, "siren,poisson", out, jobs=2, options=TINY_OPTIONS)
    assert summary.ran == [] and len(summary.skipped) == 4 and len(summary.records) == 6
    after = read_jsonl(out / "results.jsonl")
    assert set(after) == set(before)
    assert all(after[key] == before[key] for key in after if key[0] != "broken")
    assert {p.name: p.stat().st_mtime_ns for p in (out / "meshes").iterdir()} == mtimes
    # A job whose mesh went missing is not finished: exactly that one runs again.
    (out / "meshes" / "torus__poisson.ply").unlink()
    summary = run_bench(clean, "siren,poisson", out, jobs=1, options=TINY_OPTIONS)
    assert [(r["shape"], r["method"], r["status"]) for r in summary.ran] == [("torus", "poisson", "ok")]
    assert (out / "meshes" / "torus__poisson.ply").is_file()
    again = read_jsonl(out / "results.jsonl")[("torus", "poisson")]
    assert again["exact_chamfer_l1_rel"] == pytest.approx(after[("torus", "poisson")]["exact_chamfer_l1_rel"])


def test_toml_spec(tmp_path):
    from sdfrecon.evaluation.clouds import sample_cloud
    from sdfrecon.io import PointCloud, load_mesh, save_point_cloud

    shapes = write_shapes(tmp_path / "meshes")
    cloud = sample_cloud(load_mesh(shapes / "torus.obj"), 2500, seed=4)
    save_point_cloud(tmp_path / "torus_scan.xyz", PointCloud(cloud.points))  # no normals
    spec = tmp_path / "spec.toml"
    spec.write_text(
        '[defaults]\npoints = 2000\npoisson = { depth = 5 }\n\n'
        '[[shape]]\nname = "ball"\nreference = "meshes/sphere.ply"\nnoise = 0.001\n'
        '[shape.poisson]\ntrim = 0.05\n\n'
        '[[shape]]\nname = "ring"\nreference = "meshes/torus.obj"\ncloud = "torus_scan.xyz"\n'
        '[shape.poisson]\ndepth = 6\n'
    )
    out = tmp_path / "out"
    summary = run_bench(spec, "poisson", out, jobs=2, options=BenchOptions(samples=4000, exact=False))
    records = {r["shape"]: r for r in summary.ran}
    assert set(records) == {"ball", "ring"} and all(r["status"] == "ok" for r in records.values())
    ball, ring = records["ball"], records["ring"]
    assert ball["settings"]["poisson"] == {"depth": 5, "trim": 0.05, "normals_mode": "auto"}
    assert ball["settings"]["points"] == 2000 and ball["settings"]["noise"] == 0.001
    assert ball["cloud_points"] == 2000 and (out / "clouds" / "ball.ply").is_file()
    assert not ball["watertight"]  # trimmed
    assert ring["settings"]["poisson"] == {"depth": 6, "trim": None, "normals_mode": "auto"}
    assert ring["cloud"] == str(tmp_path / "torus_scan.xyz") and ring["cloud_points"] == 2500
    assert ring["normals"] == "estimated" and not (out / "clouds" / "ring.ply").exists()
    assert ring["genus"] == 1 and ring["chamfer_l1_rel"] < 0.01
    assert "exact_chamfer_l1_rel" not in ring  # exact=False
    assert set(read_jsonl(out / "results.jsonl")) == {("ball", "poisson"), ("ring", "poisson")}


@pytest.mark.parametrize(("text", "problem"), [
    ('[[shape]]\nname = "a"\nreference = "x.ply"\ncolour = 3\n', "unknown keys ['colour']"),
    ('[[shape]]\nname = "a"\n', "needs a reference mesh or a cloud"),
    ('[[shape]]\nname = "a/b"\nreference = "x.ply"\n', "shape name"),
    ('[[shape]]\nname = "a"\nreference = "x.ply"\n[shape.siren]\nstepz = 3\n', "unknown option 'stepz'"),
    ('[[shape]]\nname = "a"\nreference = "x.ply"\n[shape.siren]\nsteps = "many"\n', "option 'steps' must be"),
    ('[[shape]]\nname = "a"\nreference = "x.ply"\npoints = 0\n', "points must be >= 1"),
    ('[[shape]]\nname = "a"\nreference = "x.ply"\n[[shape]]\nname = "a"\nreference = "y.ply"\n', "used twice"),
    ("[[shape]\n", "is not valid TOML"),
    ("title = 'x'\n", "unknown top-level keys"),
])
def test_toml_spec_errors(tmp_path, text, problem):
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    with pytest.raises(InputError, match="spec.toml") as err:
        load_shapes(spec, BenchOptions())
    assert problem in str(err.value)


def test_missing_reference_is_a_failed_job(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text('[[shape]]\nname = "gone"\nreference = "missing.ply"\n')
    summary = run_bench(spec, "poisson", tmp_path / "out", options=BenchOptions(points=100))
    assert [r["status"] for r in summary.ran] == ["failed"]
    assert "missing.ply: no such file" in summary.ran[0]["error"]


def test_options():
    assert parse_methods("siren, poisson") == ("siren", "poisson")
    assert parse_methods(["poisson"]) == ("poisson",)
    for bad in ("siren,nerf", ""):
        with pytest.raises(InputError, match="--methods"):
            parse_methods(bad)
    config = siren_config({"steps": 7, "resolution": 32, "hidden-features": 16, "sphere_prior": None,
                           "lr": 1, "device": "cpu"})
    assert (config.train.steps, config.extract.resolution, config.siren.hidden_features) == (7, 32, 16)
    assert config.siren.sphere_prior is None and config.train.lr == 1.0 and isinstance(config.train.lr, float)
    assert config.train.progress is False and config.train.device == "cpu"
    with pytest.raises(TypeError, match="steps"):
        siren_config({"steps": 2.5})
    with pytest.raises(TypeError, match="device"):
        siren_config({"device": "tpu"})
    with pytest.raises(ValueError, match="unknown option"):
        siren_config({"colour": 1})
    assert parse_assignments(["steps=10", "sphere_prior=None", "device=cpu", "lr=1e-3", "progress=true"]) == {
        "steps": 10, "sphere_prior": None, "device": "cpu", "lr": 1e-3, "progress": True}
    with pytest.raises(InputError, match="NAME=VALUE"):
        parse_assignments(["steps"])


def test_bad_options_stop_before_work(tmp_path):
    shapes = write_shapes(tmp_path / "shapes")
    out = tmp_path / "out"
    for kwargs, flag in (({"jobs": 0}, "--jobs"), ({"executor": "slurm"}, "--executor"),
                         ({"address": "127.0.0.1:1"}, "--address"),
                         ({"options": BenchOptions(siren={"stepz": 1})}, "--siren"),
                         ({"options": BenchOptions(poisson_trim=1.5)}, "--trim")):
        with pytest.raises(InputError, match=flag):
            run_bench(shapes, "poisson", out, **kwargs)
    with pytest.raises(InputError, match="no such file"):
        run_bench(tmp_path / "nothing", "poisson", out)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no mesh files"):
        run_bench(tmp_path / "empty", "poisson", out)
    assert not out.exists()


def test_ray_missing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(InputError, match=r"pip install 'sdfrecon\[ray\]'"):
        run_bench(write_shapes(tmp_path / "shapes"), "poisson", tmp_path / "out", executor="ray")


def test_corrupt_results_are_never_overwritten(tmp_path):
    shapes = write_shapes(tmp_path / "shapes")
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.jsonl").write_text('{"shape": "a", "method": "poisson"}\nnot json\n')
    with pytest.raises(InputError, match="line 2 is not a benchmark record"):
        run_bench(shapes, "poisson", out, options=BenchOptions(points=500))
    assert (out / "results.jsonl").read_text().endswith("not json\n")


def test_one_run_per_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    held = _lock(out)
    try:
        with pytest.raises(InputError, match="in use by another"):
            run_bench(write_shapes(tmp_path / "shapes"), "poisson", out)
    finally:
        held.close()


def test_markdown_report_statistics():
    records = [
        {"shape": s, "method": "poisson", "status": "ok", "chamfer_l1_rel": c, "seconds": t,
         "components": 1, "genus": 0, "watertight": True}
        for s, c, t in (("a", 0.001, 1.0), ("b", 0.002, 2.0), ("c", 0.006, 6.0))
    ] + [{"shape": "a", "method": "siren", "status": "failed", "error": "Boom | bang"}]
    md = markdown_report(records)
    assert "4 jobs: 3 ok, 1 failed" in md
    assert "| poisson | mean | 3 | 0.300 | – |" in md and "| poisson | median | 3 | 0.200 | – |" in md
    assert "| 3.0 |" in md and "| siren | mean | 0 | – |" in md
    assert "| a | siren | Boom \\| bang |" in md
    assert "| a | poisson | 0.100 | – | – | – | – | – | 1 / 0 | yes | – | 1.0 | – |" in md  # unsupported@5%: –


def _die_or_echo(payload: dict) -> dict:
    """Stand-in for run_job in a pool worker: kills its process for shape 'b'."""
    if payload["shape"] == "b":
        os._exit(3)
    return {"record": {"shape": payload["shape"], "method": "poisson", "status": "ok", "error": None},
            "mesh": None}


def test_a_dying_worker_fails_only_its_job():
    """A worker killed mid-job (out of memory, say) breaks the pool; the jobs in flight then
    run again one by one, and only the one that kills its worker is recorded as failed."""
    from sdfrecon.bench import Shape
    from sdfrecon.bench.executors import _run_local
    from sdfrecon.bench.jobs import _Job

    jobs = [_Job(Shape(name, None, None, 1, 0.0, 0.0, 0, {}, {}), "poisson", {}) for name in "abcd"]
    results: dict[str, list[dict]] = {}
    _run_local(iter([(job, {"shape": job.shape.name}, None) for job in jobs]), 2,
               lambda job, result: results.setdefault(job.shape.name, []).append(result["record"]),
               fn=_die_or_echo)
    assert sorted(results) == ["a", "b", "c", "d"] and all(len(v) == 1 for v in results.values())
    assert results["b"][0]["status"] == "failed" and "worker process died" in results["b"][0]["error"]
    assert all(results[name][0]["status"] == "ok" for name in "acd")


def test_outliers_option_reaches_the_jobs(tmp_path):
    """`bench` takes its options from BenchOptions itself: --outliers (once lost by a copy of
    the fields) is listed in --help and ends in the sampled clouds and the job records."""
    import subprocess

    from sdfrecon.cli import main
    from sdfrecon.io import load_mesh, load_point_cloud

    help_text = subprocess.run([sys.executable, "-m", "sdfrecon.cli", "bench", "--help"],
                               capture_output=True, text=True, timeout=120).stdout
    assert "--outliers FLOAT" in help_text
    shapes = tmp_path / "shapes"
    shapes.mkdir()
    write_shapes(tmp_path / "all")
    (tmp_path / "all" / "sphere.ply").rename(shapes / "sphere.ply")
    out = tmp_path / "out"
    assert main(["bench", "--shapes", str(shapes), "--methods", "poisson", "-o", str(out), "--quiet",
                 "--points", "2000", "--outliers", "0.25", "--samples", "2000", "--no-exact",
                 "--depth", "5"]) == 0
    record = read_jsonl(out / "results.jsonl")[("sphere", "poisson")]
    assert record["status"] == "ok" and record["settings"]["outliers"] == 0.25
    sphere = load_mesh(shapes / "sphere.ply")
    radius = np.linalg.norm(load_point_cloud(out / "clouds" / "sphere.ply").points - sphere.centroid, axis=1)
    off_surface = np.mean(np.abs(radius - 1.0) > 0.05)  # the unit sphere; outliers fill its box
    assert 0.1 < off_surface <= 0.25


def test_siren_options_start_from_a_preset_when_asked():
    from sdfrecon.bench.specs import siren_config
    from sdfrecon.config import PRESETS

    fast = siren_config({"preset": "fast", "steps": 77})
    assert fast.train.steps == 77 and not fast.train.progress
    assert fast.extract == PRESETS["fast"].extract and fast.sampling == PRESETS["fast"].sampling
    assert siren_config({}).extract == PRESETS["default"].extract
    with pytest.raises(ValueError, match="unknown preset 'quick'"):
        siren_config({"preset": "quick"})


def test_noise_levels_make_one_cloud_per_mesh_and_level(tmp_path, capsys):
    from sdfrecon.bench.specs import parse_levels
    from sdfrecon.cli import main
    from sdfrecon.io import load_mesh, load_point_cloud

    shapes = tmp_path / "shapes"
    shapes.mkdir()
    write_shapes(tmp_path / "all")
    (tmp_path / "all" / "sphere.ply").rename(shapes / "sphere.ply")
    names = [s.name for s in load_shapes(shapes, BenchOptions(noise=(0.0, 0.0025, 0.005)))]
    assert names == ["sphere", "sphere-noise0.0025", "sphere-noise0.005"]
    assert parse_levels(["0.0025,0.005"]) == parse_levels(["0.0025", "0.005"]) == (0.0025, 0.005)
    for bad, problem in (("0.01,x", "expected numbers separated by commas, got 'x'"),
                         ("-0.1", "must be numbers >= 0, got -0.1"), ("nan", "must be numbers >= 0")):
        with pytest.raises(InputError, match="--noise") as err:
            parse_levels([bad])
        assert problem in str(err.value)
    out = tmp_path / "out"
    assert main(["bench", "--shapes", str(shapes), "--methods", "poisson", "-o", str(out), "--quiet",
                 "--points", "2000", "--noise", "0.0025,0.01", "--samples", "2000", "--no-exact",
                 "--depth", "5"]) == 0
    records = read_jsonl(out / "results.jsonl")
    assert set(records) == {("sphere-noise0.0025", "poisson"), ("sphere-noise0.01", "poisson")}
    sphere = load_mesh(shapes / "sphere.ply")
    for level in (0.0025, 0.01):
        record = records[(f"sphere-noise{level:g}", "poisson")]
        assert record["settings"]["noise"] == level and record["reference_kind"] == "mesh"
        cloud = load_point_cloud(out / "clouds" / f"sphere-noise{level:g}.ply").points
        spread = np.std(np.linalg.norm(cloud - sphere.centroid, axis=1) - 1.0)
        assert spread == pytest.approx(level * np.linalg.norm(sphere.extents), rel=0.25)
    capsys.readouterr()
    assert main(["bench", "--shapes", str(shapes), "--noise", "0.01,a", "-o", str(tmp_path / "o2")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "sdfrecon: error: --noise: expected numbers separated by commas, got 'a'"]


def test_a_toml_spec_takes_the_noise_levels_where_a_shape_sets_none(tmp_path):
    write_shapes(tmp_path / "meshes")
    spec = tmp_path / "spec.toml"
    spec.write_text('[[shape]]\nname = "ball"\nreference = "meshes/sphere.ply"\n'
                    '[[shape]]\nname = "ring"\nreference = "meshes/torus.obj"\nnoise = 0.001\n')
    shapes = load_shapes(spec, BenchOptions(noise=(0.0, 0.005)))
    assert [(s.name, s.noise) for s in shapes] == [("ball", 0.0), ("ball-noise0.005", 0.005), ("ring", 0.001)]


def test_the_closed_spec_names_the_shared_meshes(shared_data):
    spec = Path(__file__).resolve().parents[1] / "scripts" / "bench" / "closed.toml"
    shapes = load_shapes(spec, BenchOptions(noise=(0.0025, 0.005)))
    assert [s.name for s in shapes][:2] == ["fandisk-noise0.0025", "fandisk-noise0.005"]
    assert all(s.reference.is_file() for s in shapes) and len(shapes) == 8
