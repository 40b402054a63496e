"""PLY clouds: sdfrecon.io.ply (numpy, vertices only) against plyfile (PyPI ``plyfile``, every
element) on the shared data's PLYs (the raw Stanford scan bun000.ply, ASCII with a range_grid
list element after the vertices; bun_zipper.ply with confidence and intensity; the binary
ant.ply) and a 1M-point binary cloud; then what each says about the damaged PLYs of
docs/bad-input.md. Prints markdown tables (seconds, best of 3; whether the points are equal).

    pip install -e ".[studies]"   # plyfile and python-lzf
    flock /tmp/sdfrecon-heavy.lock .venv/bin/python scripts/studies/ply_readers.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def _best(fn, repeats: int = 3):
    best, out = np.inf, None
    for _ in range(repeats):
        started = time.perf_counter()
        try:
            out = fn()
        except Exception as err:  # a reader that refuses the file is the finding
            return np.nan, err
        best = min(best, time.perf_counter() - started)
    return best, out


def _plyfile_points(path: Path) -> np.ndarray:
    from plyfile import PlyData

    vertex = PlyData.read(str(path))["vertex"]
    return np.stack([np.asarray(vertex[a], np.float64) for a in "xyz"], axis=1)


def _damaged(folder: Path) -> dict[str, Path]:
    """The PLYs of tests/test_errors.py's table, made the same way."""
    import trimesh

    from sdfrecon.io import save_point_cloud
    from sdfrecon.io.types import PointCloud

    points = np.resize(np.random.default_rng(0).normal(size=(50, 3)), (1000, 3))
    save_point_cloud(folder / "full.ply", PointCloud(points))
    trimesh.creation.icosphere(subdivisions=2).export(folder / "mesh.ply")
    files = {"header_only.ply": (b"ply\nformat binary_little_endian 1.0\nelement vertex 100\n"
                                 b"property float x\nproperty float y\nproperty float z\nend_header\n"),
             "truncated.ply": (folder / "full.ply").read_bytes()[:-188 * 12 - 5],
             "truncated_faces.ply": (folder / "mesh.ply").read_bytes()[:-1000],
             "no_vertices.ply": (b"ply\nformat ascii 1.0\nelement face 0\n"
                                 b"property list uchar int vertex_indices\nend_header\n"),
             "not_ply.ply": b"solid cube\nfacet normal 0 0 1\n",
             "bad_header.ply": b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float\nend_header\n1\n"}
    out = {}
    for name, data in files.items():
        (folder / name).write_bytes(data)
        out[name] = folder / name
    return out


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    from sdfrecon.errors import InputError
    from sdfrecon.io.ply import read_cloud, write_ply

    try:
        import plyfile  # noqa: F401
    except ImportError:
        print("plyfile is not installed (pip install plyfile)")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "million.ply"
        write_ply(big, np.random.default_rng(0).normal(size=(1_000_000, 3)), None)
        files = [SHARED / "raw_scans" / "bun000.ply", SHARED / "meshes" / "bun_zipper.ply",
                 SHARED / "meshes" / "ant.ply", big]
        print("| file | sdfrecon.io.ply s | plyfile s | same points |\n|---|---:|---:|---|")
        for path in files:
            t_ours, ours = _best(lambda: read_cloud(path)[0])  # noqa: B023
            t_theirs, theirs = _best(lambda: _plyfile_points(path))  # noqa: B023
            same = (isinstance(theirs, np.ndarray) and theirs.shape == ours.shape
                    and bool(np.array_equal(np.float32(ours), np.float32(theirs))))
            note = "" if isinstance(theirs, np.ndarray) else f" ({type(theirs).__name__}: {theirs})"
            print(f"| {path.name} | {t_ours:.3f} | {t_theirs:.3f} | {same}{note} |")
        print("\n| damaged file | sdfrecon.io.ply | plyfile |\n|---|---|---|")
        for name, path in _damaged(Path(tmp)).items():
            try:
                read_cloud(path)
                ours = "accepted"
            except InputError as err:
                ours = err.problem
            try:
                theirs = f"accepted, {len(_plyfile_points(path))} points"
            except Exception as err:
                theirs = f"{type(err).__name__}: {' '.join(str(err).split())}"
            print(f"| {name} | {ours} | {theirs} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
