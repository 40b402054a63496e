"""The ``render`` subcommand (registered in :func:`sdfrecon.cli.commands`): meshes side by
side from one camera, headless and on the CPU (see :mod:`sdfrecon.viz.render`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import tyro

from sdfrecon.cli.common import Common, Output
from sdfrecon.errors import InputError


def render_command(meshes: list[Path], output: Path, views: int, panel: int, overwrite: bool) -> float:
    """Render the meshes side by side (one column each, ``views`` rows) into the PNG output;
    returns the seconds it took. Every input and the output are checked first."""
    from sdfrecon.evaluation.scoring import require_surface
    from sdfrecon.io import load_mesh
    from sdfrecon.io.atomic import check_writable
    from sdfrecon.viz.figures import compare_figure, save_figure
    from sdfrecon.viz.render import VIEWS

    started = time.perf_counter()
    if output.suffix.lower() != ".png":
        raise InputError(output, f"unknown image format '{output.suffix}' (render writes .png)")
    if not 1 <= views <= len(VIEWS):
        raise InputError("--views", f"must be 1 to {len(VIEWS)}, got {views}")
    if not 64 <= panel <= 2000:
        raise InputError("--panel", f"must be 64 to 2000 pixels, got {panel}")
    check_writable(output, overwrite)
    loaded = []
    for path in meshes:
        mesh = load_mesh(path)
        require_surface(mesh, path, "the mesh")
        loaded.append((path.name, mesh.vertices, mesh.faces))
    save_figure(compare_figure(loaded, VIEWS[:views], panel), output, overwrite)
    return time.perf_counter() - started


@dataclass(kw_only=True)
class Render(Common):
    """Render meshes side by side from one camera (the joint bounds, so sizes compare), each
    titled by its file name: a reconstruction, Poisson and the reference, say. Headless, CPU
    only (Open3D's ray caster, so meshes of millions of faces draw in seconds)."""

    meshes: tyro.conf.Positional[tuple[Path, ...]]
    """Mesh files: .obj .ply .stl .glb .off."""
    output: Output
    """PNG to write."""
    views: int = 1
    """Views per mesh (rows): 1 to 3 three-quarter views around the vertical (y) axis."""
    panel: int = 400
    """Pixels per panel (each panel is square)."""
    overwrite: bool = False
    """Replace an existing PNG."""

    def run(self) -> None:
        if not self.meshes:
            raise InputError("render", "give at least one mesh file")
        seconds = render_command(list(self.meshes), self.output, self.views, self.panel, self.overwrite)
        print(f"wrote {self.output} ({len(self.meshes)} mesh(es), {self.views} view(s) each) "
              f"in {seconds:.1f} s")
