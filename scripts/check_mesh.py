"""Check meshes the way a printer, simulator or boolean library would: components, faces of
zero area, edge- and vertex-manifold, watertight (trimesh and Open3D) and self-intersecting
triangle pairs (Open3D's test).

Open3D's own self-intersection test compares every pair of triangles (minutes for 300k
faces); sdfrecon.sdf.meshing.mesh_integrity runs the same test block by block. Open3D's
is_watertight() is edge-manifold and vertex-manifold and not self-intersecting, so it is
reported from those three.

    python scripts/check_mesh.py out/bunny.obj out/bun000.ply
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from sdfrecon.sdf.meshing import mesh_integrity


def check(path: str) -> dict:
    """The checks for one mesh file, as a JSON-ready dict."""
    import trimesh

    mesh = trimesh.load(path, process=False, force="mesh")
    return {"mesh": path, **mesh_integrity(np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("meshes", nargs="+")
    for path in parser.parse_args().meshes:
        print(json.dumps(check(path)))


if __name__ == "__main__":
    main()
