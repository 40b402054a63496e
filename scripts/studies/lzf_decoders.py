"""LZF for PCD's ``DATA binary_compressed``: sdfrecon.io.lzf (pure Python) against python-lzf
(C; PyPI ``python-lzf``, sdist only) and Open3D's PCD reader, on three bodies: bunny.xyz
with normals as Open3D writes it, a 300k-point cloud quantised to 1 mm (many short back
references, the pure decoder's worst case) and a smooth organised 600 x 600 grid. Prints
a markdown table (seconds, best of 3; whether the output is byte-identical), then what each
says about a damaged or truncated stream (docs/bad-input.md has the measured one).

    pip install -e ".[studies]"   # python-lzf and plyfile; python-lzf needs a C compiler
    flock /tmp/sdfrecon-heavy.lock .venv/bin/python scripts/studies/lzf_decoders.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
HEADER = ("VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH {n}\nHEIGHT 1\n"
          "VIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA binary_compressed\n")


def _best(fn, repeats: int = 3) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - started)
    return best, out


def _bodies(folder: Path) -> dict[str, tuple[np.ndarray, Path]]:
    """name -> (xyz float32 (N, 3) by column, PCD written with it compressed by Open3D)."""
    import open3d as o3d

    from sdfrecon.io import load_point_cloud

    rng = np.random.default_rng(0)
    grid = np.mgrid[0:600, 0:600].reshape(2, -1).T * 0.001
    clouds = {"bunny.xyz (34,834 points)": load_point_cloud(SHARED / "bunny.xyz").points,
              "1 mm quantised (300,000 points)": np.round(rng.uniform(0, 1, (300_000, 3)), 3),
              "organised 600 x 600 grid": np.c_[grid, np.round(np.sin(grid[:, 0] * 3), 1)]}
    out = {}
    for k, (name, xyz) in enumerate(clouds.items()):
        path = folder / f"{k}.pcd"
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(xyz, np.float64)))
        assert o3d.io.write_point_cloud(str(path), pcd, write_ascii=False, compressed=True)
        out[name] = (np.float32(xyz), path)
    return out


def _stream(path: Path) -> tuple[bytes, int]:
    data = path.read_bytes()
    start = data.index(b"DATA binary_compressed\n") + len(b"DATA binary_compressed\n")
    packed, size = (int(v) for v in np.frombuffer(data, "<u4", 2, start))
    return data[start + 8:start + 8 + packed], size


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    import open3d as o3d

    from sdfrecon.io import lzf as pure

    try:
        import lzf
    except ImportError:
        lzf = None
        print("python-lzf is not installed (pip install python-lzf): its column is empty\n")
    print("| body | MB (raw -> LZF) | sdfrecon.io.lzf s | python-lzf s | Open3D read_point_cloud s | same bytes |")
    print("|---|---|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (_, path) in _bodies(Path(tmp)).items():
            stream, size = _stream(path)
            t_pure, ours = _best(lambda: pure.decompress(stream, size))  # noqa: B023
            t_c, theirs = _best(lambda: lzf.decompress(stream, size)) if lzf else (np.nan, None)  # noqa: B023
            t_o3d, _ = _best(lambda: o3d.io.read_point_cloud(str(path)))  # noqa: B023
            same = "–" if theirs is None else str(ours == theirs)
            print(f"| {name} | {size / 1e6:.2f} -> {len(stream) / 1e6:.2f} | {t_pure:.3f} | "
                  f"{t_c:.4f} | {t_o3d:.4f} | {same} |")
    print("\n| damaged stream | sdfrecon.io.lzf | python-lzf |\n|---|---|---|")
    damaged = {"literal run cut off": (bytes([5]) + b"abc", 6),
               "back reference before the start": (bytes([0]) + b"a" + bytes([32, 4]), 3),
               "too short for its declared size": (bytes([1]) + b"ab", 3),
               "longer than its declared size": (bytes([3]) + b"abcd", 3)}
    for name, (stream, size) in damaged.items():
        try:
            pure.decompress(stream, size)
            ours = "accepted"
        except pure.LzfError as err:
            ours = str(err)
        if lzf is None:
            theirs = "–"
        else:
            try:
                got = lzf.decompress(stream, size)
                theirs = "returns None" if got is None else f"returns {len(got)} bytes"
            except ValueError as err:
                theirs = f"ValueError: {err}"
        print(f"| {name} | {ours} | {theirs} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
