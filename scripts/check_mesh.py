"""Check meshes the way a printer, simulator or boolean library would: components, faces of
zero area, edge- and vertex-manifold, watertight (trimesh and Open3D) and self-intersecting
triangle pairs (Open3D's test).

Open3D's own self-intersection test compares every pair of triangles (minutes for 300k
faces); this runs the same test block by block: every triangle goes to each block its
bounding box overlaps, so two triangles that intersect meet in some block. Open3D's
is_watertight() is edge-manifold and vertex-manifold and not self-intersecting, so it is
reported from those three.

    python scripts/check_mesh.py out/bunny.obj out/bun000.ply
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def self_intersecting_pairs(vertices: np.ndarray, faces: np.ndarray, blocks: int = 40) -> int:
    """Triangle pairs (F, 3) that Open3D calls intersecting, found block by block."""
    import open3d as o3d

    tri = vertices[faces]
    low = vertices.min(axis=0)
    side = float((vertices.max(axis=0) - low).max()) / blocks
    lo = np.floor((tri.min(axis=1) - low) / side).astype(np.int64)
    hi = np.floor((tri.max(axis=1) - low) / side).astype(np.int64)
    members: dict[tuple[int, int, int], list[int]] = {}
    for t in range(len(faces)):
        for i in range(lo[t, 0], hi[t, 0] + 1):
            for j in range(lo[t, 1], hi[t, 1] + 1):
                for k in range(lo[t, 2], hi[t, 2] + 1):
                    members.setdefault((i, j, k), []).append(t)
    pairs: set[tuple[int, int]] = set()
    points = o3d.utility.Vector3dVector(vertices)
    for group in members.values():
        if len(group) < 2:
            continue
        index = np.array(group)
        mesh = o3d.geometry.TriangleMesh(points, o3d.utility.Vector3iVector(faces[index]))
        for a, b in np.asarray(mesh.get_self_intersecting_triangles()):
            pairs.add((min(index[a], index[b]), max(index[a], index[b])))
    return len(pairs)


def check(path: str) -> dict:
    """The checks for one mesh file, as a JSON-ready dict."""
    import open3d as o3d
    import trimesh

    mesh = trimesh.load(path, process=False, force="mesh")
    vertices, faces = np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces)
    o3d_mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vertices),
                                         o3d.utility.Vector3iVector(faces))
    edge, vertex = o3d_mesh.is_edge_manifold(allow_boundary_edges=False), o3d_mesh.is_vertex_manifold()
    crossing = self_intersecting_pairs(vertices, faces)
    parts = mesh.split(only_watertight=False)
    return {
        "mesh": path, "faces": len(faces), "components": len(parts),
        "smallest_component_faces": min(len(p.faces) for p in parts) if parts else 0,
        "zero_area_faces": int((mesh.area_faces <= 0).sum()),
        "trimesh_watertight": bool(mesh.is_watertight), "edge_manifold": bool(edge),
        "vertex_manifold": bool(vertex), "self_intersecting_pairs": crossing,
        "open3d_watertight": bool(edge and vertex and crossing == 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("meshes", nargs="+")
    for path in parser.parse_args().meshes:
        print(json.dumps(check(path)))


if __name__ == "__main__":
    main()
