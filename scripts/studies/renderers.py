"""Which headless renderer for the mesh pictures: the numpy rasteriser of sdfrecon.viz.render
against matplotlib's 3D axes (plot_trisurf) and Open3D's offscreen renderer, on the Stanford
bunny subdivided once (278k faces), one 400 x 400 view each, in this process. Prints a
markdown table (docs/figures.md has the measured one).

    flock /tmp/sdfrecon-heavy.lock .venv/bin/python scripts/studies/renderers.py --out out/bench_render
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"


def _numpy(vertices, faces, out: Path) -> None:
    from PIL import Image

    from sdfrecon.viz.render import Camera, render_mesh

    image = render_mesh(vertices, faces, Camera.framing([vertices]), 400)[0]
    Image.fromarray((image * 255).round().astype("uint8")).save(out / "numpy.png")


def _matplotlib(vertices, faces, out: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(projection="3d")
    ax.plot_trisurf(vertices[:, 0], vertices[:, 2], vertices[:, 1], triangles=faces,
                    color=(0.62, 0.70, 0.84), linewidth=0, shade=True)
    fig.savefig(out / "matplotlib.png")


def _open3d(vertices, faces, out: Path) -> None:
    import open3d as o3d

    renderer = o3d.visualization.rendering.OffscreenRenderer(400, 400)
    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vertices), o3d.utility.Vector3iVector(faces))
    mesh.compute_vertex_normals()
    renderer.scene.add_geometry("mesh", mesh, o3d.visualization.rendering.MaterialRecord())
    o3d.io.write_image(str(out / "open3d.png"), renderer.render_to_image())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mesh", type=Path, default=SHARED / "meshes" / "bun_zipper.ply")
    parser.add_argument("--out", type=Path, default=Path("out/bench_render"))
    args = parser.parse_args(argv)
    import trimesh

    args.out.mkdir(parents=True, exist_ok=True)
    mesh = trimesh.load(args.mesh).subdivide()
    print(f"| renderer ({len(mesh.faces):,} faces, 400 x 400) | seconds | result |\n|---|---:|---|")
    for name, fn in (("sdfrecon.viz.render (numpy)", _numpy), ("matplotlib plot_trisurf", _matplotlib),
                     ("Open3D OffscreenRenderer", _open3d)):
        started = time.perf_counter()
        try:
            fn(mesh.vertices, mesh.faces, args.out)
            result = "ok"
        except Exception as err:  # a renderer that cannot start here is the finding
            result = f"fails: {type(err).__name__}: {str(err).splitlines()[0][:80]}"
        print(f"| {name} | {time.perf_counter() - started:.1f} | {result} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
