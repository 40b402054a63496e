"""Which headless renderer for the mesh pictures: Open3D's ray caster (sdfrecon.viz.render
today) against the numpy scan-line rasteriser it replaced (read from commit 6231acc by
``git show``), matplotlib's 3D axes (plot_trisurf) and Open3D's OffscreenRenderer, on the
Stanford bunny subdivided once (278k faces) and twice (1.1M faces), one 400 x 400 view
each (2x2 supersampled where the renderer does it), in this process. Prints a markdown
table and the largest per-channel difference between the two sdfrecon pictures; writes
each picture under --out (docs/figures.md has the measured table).

    flock /tmp/sdfrecon-heavy.lock .venv/bin/python scripts/studies/renderers.py --out out/renderers
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
RASTERISER_COMMIT = "6231acc"


def _rasteriser() -> types.ModuleType:
    """sdfrecon/viz/render.py as of RASTERISER_COMMIT (the numpy rasteriser), as a module."""
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{RASTERISER_COMMIT}:sdfrecon/viz/render.py"],
                            check=True, capture_output=True, text=True).stdout
    module = types.ModuleType("rasteriser")
    sys.modules["rasteriser"] = module  # dataclasses look their module up there
    exec(compile(source, "rasteriser.py", "exec"), module.__dict__)
    return module


def _sdfrecon(module):
    def draw(vertices, faces, out: Path) -> np.ndarray:
        from sdfrecon.viz.figures import save_png

        image = module.render_mesh(vertices, faces, module.Camera.framing([vertices]), 400)[0]
        save_png(out, image, overwrite=True)
        return image
    return draw


def _matplotlib(vertices, faces, out: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(projection="3d")
    ax.plot_trisurf(vertices[:, 0], vertices[:, 2], vertices[:, 1], triangles=faces,
                    color=(0.62, 0.70, 0.84), linewidth=0, shade=True)
    fig.savefig(out)


def _offscreen(vertices, faces, out: Path) -> None:
    import open3d as o3d

    renderer = o3d.visualization.rendering.OffscreenRenderer(400, 400)
    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vertices), o3d.utility.Vector3iVector(faces))
    mesh.compute_vertex_normals()
    renderer.scene.add_geometry("mesh", mesh, o3d.visualization.rendering.MaterialRecord())
    o3d.io.write_image(str(out), renderer.render_to_image())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mesh", type=Path, default=SHARED / "meshes" / "bun_zipper.ply")
    parser.add_argument("--out", type=Path, default=Path("out/renderers"))
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs each")
    args = parser.parse_args(argv)
    import trimesh

    import sdfrecon.viz.render as raycaster

    args.out.mkdir(parents=True, exist_ok=True)
    once = trimesh.load(args.mesh).subdivide()
    meshes = {"once": once, "twice": once.subdivide()}
    renderers = {"Open3D RaycastingScene (sdfrecon.viz.render)": ("raycast", _sdfrecon(raycaster)),
                 f"numpy rasteriser ({RASTERISER_COMMIT})": ("numpy", _sdfrecon(_rasteriser())),
                 "matplotlib plot_trisurf": ("matplotlib", _matplotlib),
                 "Open3D OffscreenRenderer": ("offscreen", _offscreen)}
    sizes = " | ".join(f"{len(m.faces):,} faces: seconds" for m in meshes.values())
    print(f"| renderer (400 x 400) | {sizes} | result |\n|---|" + "---:|" * len(meshes) + "---|")
    pictures = {}
    for label, (key, draw) in renderers.items():
        cells, result = [], "ok"
        for name, mesh in meshes.items():
            if key == "matplotlib" and name == "twice":
                cells.append("–")  # minutes, and the once row already decides
                continue
            best = np.inf
            try:
                for _ in range(args.repeats):
                    started = time.perf_counter()
                    pictures[key, name] = draw(mesh.vertices, mesh.faces, args.out / f"{key}_{name}.png")
                    best = min(best, time.perf_counter() - started)
                cells.append(f"{best:.2f}")
            except Exception as err:  # a renderer that cannot start here is the finding
                result = f"fails: {type(err).__name__}: {str(err).splitlines()[0][:80]}"
                cells.append("–")
        print(f"| {label} | {' | '.join(cells)} | {result} |", flush=True)
    for name in meshes:
        a, b = pictures.get(("raycast", name)), pictures.get(("numpy", name))
        if a is not None and b is not None:
            print(f"{name}: largest difference between the raycast and numpy pictures "
                  f"{np.abs(a - b).max():.2g} (of 1), pixels differing by over 1/255: "
                  f"{int((np.abs(a - b).max(axis=2) > 1 / 255).sum())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
