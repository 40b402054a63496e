"""Load, normalise and train on a big cloud: wall time and peak memory, each step in its own
process, against numpy's and Open3D's readers of the same file.

    .venv/bin/python scripts/bench/speed_io.py                      # 10 M points (and 1 M, for scaling)
    .venv/bin/python scripts/bench/speed_io.py --sizes 1000000 --steps 5

The clouds (points on a noisy ellipsoid with unit normals, ``x y z nx ny nz``) are written
once to --workdir as .xyz (ASCII, %.9g) and .npy and reused. Every measurement runs in a
fresh Python process (``--child``), which reports its wall time for the measured step and
its peak resident memory (``ru_maxrss``), and its resident memory after its imports (the
baseline: torch alone is a few hundred MB). The table's ratios compare sdfrecon's reader with
``np.loadtxt`` and ``open3d.io.read_point_cloud(format='xyzn')`` on the same file.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def _rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_mb() -> float:
    """Resident memory of this process now, in MB (Linux: VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def make_cloud(n: int, workdir: Path) -> tuple[Path, Path]:
    """``cloud_<n>.xyz`` and ``.npy`` in workdir: n points near an ellipsoid, with normals."""
    xyz, npy = workdir / f"cloud_{n}.xyz", workdir / f"cloud_{n}.npy"
    if xyz.exists() and npy.exists():
        return xyz, npy
    workdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    axes = np.array([0.6, 0.35, 0.2])
    table = np.empty((n, 6))
    for start in range(0, n, 1_000_000):  # in blocks: bounded memory while generating
        m = min(1_000_000, n - start)
        d = rng.normal(size=(m, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        normals = d / axes
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        table[start:start + m, :3] = d * axes + [1.5, -0.5, 2.0] + rng.normal(scale=1e-3, size=(m, 3))
        table[start:start + m, 3:] = normals
    np.save(npy, table)
    tmp = xyz.with_suffix(".xyz.tmp")
    with open(tmp, "w") as f:
        for start in range(0, n, 200_000):
            chunk = table[start:start + 200_000]
            f.write(("%.9g %.9g %.9g %.7g %.7g %.7g\n" * len(chunk)) % tuple(chunk.ravel().tolist()))
    tmp.rename(xyz)
    return xyz, npy


# --- what a child process measures ---------------------------------------------------------


def _child(mode: str, path: str, steps: int) -> dict:
    """Run one measurement in this (fresh) process; return its figures."""
    out: dict = {}
    if mode == "open3d":
        import open3d as o3d

        base = _current_mb()
        t = time.perf_counter()
        pcd = o3d.io.read_point_cloud(path, format="xyzn")
        out.update(seconds=time.perf_counter() - t, points=len(pcd.points))
    elif mode == "loadtxt":
        base = _current_mb()
        t = time.perf_counter()
        table = np.loadtxt(path)
        out.update(seconds=time.perf_counter() - t, points=len(table))
    else:
        import torch  # noqa: F401  (imported first, so that the baseline includes it)

        from sdfrecon.io import load_point_cloud

        base = _current_mb()
        t = time.perf_counter()
        cloud = load_point_cloud(path)
        out.update(seconds=time.perf_counter() - t, points=len(cloud))
        if mode in ("normalise", "train"):
            from sdfrecon.cloud.normalize import Normalization
            from sdfrecon.cloud.orientation import orient_normals
            from sdfrecon.config import ReconstructConfig

            config = ReconstructConfig()
            t = time.perf_counter()
            normals = orient_normals(path, cloud.points, cloud.normals)
            normalization = Normalization.fit(cloud.points, config.normalization)
            points = normalization.to_unit(cloud.points)
            del cloud
            out["normalise_seconds"] = time.perf_counter() - t
        if mode == "train":
            import dataclasses

            from sdfrecon.sdf.fit import fit_sdf

            config = dataclasses.replace(config, train=dataclasses.replace(
                config.train, steps=steps, progress=False, device="cpu"))
            t = time.perf_counter()
            _, state = fit_sdf(points, normals, normalization, config, torch.device("cpu"))
            out["train_seconds"] = time.perf_counter() - t
            out["steps"] = state.step
    out.update(peak_mb=_rss_mb(), base_mb=base)
    return out


def measure(mode: str, path: Path, steps: int) -> dict:
    """Run ``_child`` in a fresh interpreter and return its figures plus the process's wall time."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", mode, str(path), "--steps", str(steps)],
                          capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} on {path} failed:\n{proc.stderr}")
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    figures["process_seconds"] = wall
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000", help="cloud sizes, comma-separated")
    parser.add_argument("--steps", type=int, default=10, help="training steps of the 'train' row")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/sdfrecon-bench-io"))
    parser.add_argument("--no-baselines", action="store_true", help="skip np.loadtxt and Open3D")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child[0], args.child[1], args.steps)))
        return

    rows = []
    for n in (int(float(s)) for s in args.sizes.split(",")):
        t = time.perf_counter()
        xyz, npy = make_cloud(n, args.workdir)
        print(f"{n:,} points: {xyz} ({xyz.stat().st_size / 1e6:.0f} MB), {npy} "
              f"({npy.stat().st_size / 1e6:.0f} MB), ready in {time.perf_counter() - t:.0f} s", flush=True)
        plan = [("sdfrecon load .xyz", "load", xyz), ("sdfrecon load .npy", "load", npy)]
        if not args.no_baselines:
            plan += [("np.loadtxt .xyz", "loadtxt", xyz), ("open3d read .xyz (xyzn)", "open3d", xyz)]
        plan += [("load+orient+normalise .xyz", "normalise", xyz),
                 (f"load+normalise+train {args.steps} steps .npy", "train", npy)]
        for label, mode, path in plan:
            figures = measure(mode, path, args.steps)
            rows.append((n, label, figures))
            print(f"  {label:38s} {json.dumps({k: round(v, 2) for k, v in figures.items()})}", flush=True)

    print("\n| points | step | seconds (step) | peak RSS MB | peak - imports MB |")
    print("|---|---|---|---|---|")
    for n, label, f in rows:
        seconds = f["seconds"]
        extra = ""
        if "normalise_seconds" in f:
            extra += f" + orient/normalise {f['normalise_seconds']:.1f}"
        if "train_seconds" in f:
            extra += f" + train {f['train_seconds']:.1f}"
        print(f"| {n:,} | {label} | {seconds:.1f}{extra} | {f['peak_mb']:.0f} | "
              f"{f['peak_mb'] - f['base_mb']:.0f} |")
    by = {(n, label): f for n, label, f in rows}
    for n in sorted({n for n, _, _ in rows}):
        ours = by.get((n, "sdfrecon load .xyz"))
        for other in ("np.loadtxt .xyz", "open3d read .xyz (xyzn)"):
            if ours and (n, other) in by:
                theirs = by[(n, other)]
                print(f"{n:,} points: sdfrecon / {other}: time x{ours['seconds'] / theirs['seconds']:.2f}, "
                      f"memory above imports x{(ours['peak_mb'] - ours['base_mb']) / max(theirs['peak_mb'] - theirs['base_mb'], 1):.2f}")
    sizes = sorted({n for n, _, _ in rows})
    if len(sizes) > 1:
        a, b = sizes[0], sizes[-1]
        for label in ("sdfrecon load .xyz", "sdfrecon load .npy"):
            if (a, label) in by and (b, label) in by:
                ratio = by[(b, label)]["seconds"] / by[(a, label)]["seconds"]
                print(f"{label}: {b // a}x the points took {ratio:.1f}x the time (linear: {b // a}x)")


if __name__ == "__main__":
    main()
