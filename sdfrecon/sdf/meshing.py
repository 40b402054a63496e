"""Marching cubes and the mesh it gives: no vertex on a grid point (so no face of zero area
and no self-intersecting fan), seams of chunks welded, debris and unsupported components
removed."""

from __future__ import annotations

import numpy as np

NUDGE = 1e-2
"""Grid values within NUDGE voxels (times h, in the field's units) of 0 are moved off it
before marching cubes (:func:`nudged`)."""


def marching_cubes(volume: np.ndarray, level: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Zero level set of a grid over [-1, 1]^3: vertices (V, 3) float64 in [-1, 1]^3 and
    faces (F, 3) int64, wound so that normals point to increasing f (outward for an SDF
    that is negative inside). Empty arrays when the grid has no sign change."""
    h = 2.0 / (volume.shape[0] - 1)
    vertices, faces = marching_cubes_cells(volume, level, nudge=NUDGE * h)
    return vertices * h - 1.0, faces


def nudged(volume: np.ndarray, level: float, nudge: float) -> np.ndarray:
    """volume with every value within ``nudge`` of level moved to level +- nudge (level
    itself to level + nudge): a copy, or volume itself when nothing is that close.

    A grid point on (or within float32 rounding of) the level set makes marching cubes put
    the vertices of all its edges on that point: distinct vertices at one position, faces of
    zero area, fans that Open3D calls self-intersecting and a pinch where two sheets touch.
    Nudged, every vertex lies strictly inside its edge (at least ~nudge / |grad f| from its
    ends), so no two coincide and no face has zero area; no vertex moves farther than
    nudge / |grad f| (NUDGE = a hundredth of a voxel for an SDF). Measured on the sample
    ellipsoid's mesh at the defaults (318k faces): 2 zero-area faces and 38 triangle pairs
    that Open3D calls self-intersecting before, none after (a thousandth of a voxel still
    left 8 pairs of slivers).
    """
    close = np.abs(volume - level) < nudge
    if not close.any():
        return volume
    out = volume.copy()
    out[close] = np.where(volume[close] < level, level - nudge, level + nudge)
    return out


def marching_cubes_cells(volume: np.ndarray, level: float = 0.0, mask: np.ndarray | None = None,
                         nudge: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """As :func:`marching_cubes` with vertices (V, 3) float64 in index units (0 .. n - 1).
    mask (same shape, bool): visit only the cells whose last corner (i+1, j+1, k+1) is True
    (skimage 0.2x); marking every cell with a sign change gives the same mesh, faster.
    nudge: values this close to level are moved off it first (:func:`nudged`)."""
    from skimage import measure

    volume = nudged(volume, level, nudge) if nudge > 0 else volume
    finite = volume[np.isfinite(volume)]
    if finite.size == 0 or finite.min() >= level or finite.max() <= level:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    # skimage's "descent" winding is the one whose normals point to increasing values
    # (checked by the signed volume of a sphere's SDF in tests/test_extract.py).
    try:
        verts, faces, _, _ = measure.marching_cubes(
            volume, level=level, gradient_direction="descent", allow_degenerate=False, mask=mask
        )
    except RuntimeError:  # "No surface found": the level is touched but never crossed
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    return verts.astype(np.float64), faces.astype(np.int64)


def weld(vertices: np.ndarray, faces: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge coincident vertices (V, 3) (index units, float32 values as the dense grid's
    marching cubes gives them) and remap faces (F, 3); returns (vertices, faces).

    Two kinds coincide: a vertex on a face shared by chunks of ``width`` cells, which both
    chunks computed bit-identically (one coordinate a multiple of width), and vertices of
    different edges that meet at a grid point where f is 0 to float32 precision. skimage
    merges the latter within one grid and drops the faces that become degenerate; so does
    this, for both kinds, and then drops the vertices no face uses.
    """
    candidate = (np.mod(vertices, width) == 0).any(axis=1) | (np.mod(vertices, 1) == 0).all(axis=1)
    unique, inverse = np.unique(vertices[candidate], axis=0, return_inverse=True)
    rest = ~candidate
    index = np.empty(len(vertices), dtype=np.int64)
    index[rest] = np.arange(rest.sum())
    index[candidate] = rest.sum() + inverse.reshape(-1)
    vertices, faces = np.concatenate([vertices[rest], unique]), index[faces]
    degenerate = (faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2]) | (faces[:, 0] == faces[:, 2])
    if degenerate.any():
        faces = faces[~degenerate]
        used = np.zeros(len(vertices), dtype=bool)
        used[faces.ravel()] = True
        vertices, faces = vertices[used], (np.cumsum(used) - 1)[faces]
    return vertices, faces


def drop_far_components(
    vertices: np.ndarray, faces: np.ndarray, points: np.ndarray, max_distance: float,
    spacing: float | None = None, distance: np.ndarray | None = None,
    nearest_point: np.ndarray | None = None, tree=None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Remove the connected components that the input points (N, 3) do not support (ghost
    surfaces, and debris no cloud could show). vertices (V, 3), points and the lengths in the
    same units; distance and nearest_point: (V,) each vertex's distance to its nearest point and
    that point's index, and tree: a k-d tree of points, when the caller has them. Returns (vertices, faces, number of components dropped).

    A component goes when none of its vertices comes within ``max_distance`` of a point; with
    the cloud's median ``spacing`` also when fewer than a quarter of its vertices lie within two
    spacings of a point (a closed pocket in the solid: a real part, even a sheet closed by a
    shell behind it, has about half its vertices or more there), or when its area is under
    4 spacing^2 (a piece that would hold about four samples: marching-cubes debris around
    a few points, not a part the cloud shows). The spacing of a component is the local one
    where its points are sparser than the median (:func:`local_spacing`): a LiDAR scene's far
    objects, sampled ten times more sparsely, are real parts too. These two rules spare the
    largest component and any with a tenth of the mesh's area or more: an undertrained
    field's only surface stays.
    """
    from sdfrecon.geometry import nearest, vertex_components

    if len(faces) == 0:
        return vertices, faces, 0
    labels = vertex_components(faces, len(vertices))
    count = labels.max() + 1
    if distance is None or (nearest_point is None and spacing is not None):
        distance, nearest_point = nearest(vertices, points)
    closest = np.full(count, np.inf)
    np.minimum.at(closest, labels, distance)
    keep_label = closest <= max_distance
    if spacing is not None and spacing > 0:
        spacing = np.maximum(spacing, local_spacing(points, nearest_point, labels, count, tree))  # (count,)
        total = np.bincount(labels, minlength=count)
        near = np.bincount(labels, weights=distance <= 2.0 * spacing[labels], minlength=count)
        tri = vertices[faces]
        area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
        component_area = np.bincount(labels[faces[:, 0]], weights=area, minlength=count)
        minor = component_area < 0.1 * component_area.sum()  # never the body of the mesh
        minor[np.argmax(component_area)] = False
        supported = (near >= 0.25 * np.maximum(total, 1)) & (component_area >= 4.0 * spacing**2)
        keep_label &= supported | ~minor
    dropped = int((~keep_label[np.unique(labels[faces.ravel()])]).sum())
    if dropped == 0:
        return vertices, faces, 0
    face_keep = keep_label[labels[faces[:, 0]]]
    faces = faces[face_keep]
    kept = np.unique(faces.ravel())
    remap = np.full(len(vertices), -1, dtype=np.int64)
    remap[kept] = np.arange(len(kept))
    return vertices[kept], remap[faces], dropped


def local_spacing(points: np.ndarray, index: np.ndarray, labels: np.ndarray, count: int,
                  tree=None) -> np.ndarray:
    """The point spacing near each of ``count`` components, (count,): the median, over a
    component's vertices (labels (V,)), of the distance from the vertex's nearest input point
    (index (V,) into points (N, 3)) to that point's own nearest neighbour. The same measure as
    the cloud's median spacing, taken where the component is. tree: a k-d tree of points."""
    from sdfrecon.geometry import exact_tree

    used, where = np.unique(index, return_inverse=True)
    own = (exact_tree(points) if tree is None else tree).query(points[used], k=2, workers=-1)[0][:, 1][where.reshape(-1)]
    order = np.lexsort((own, labels))  # by component, then by spacing
    sizes = np.bincount(labels, minlength=count)
    starts = np.cumsum(sizes) - sizes
    out = np.zeros(count)
    some = sizes > 0
    out[some] = own[order][starts[some] + (sizes[some] - 1) // 2]  # the (lower) median
    return out


def self_intersecting_pairs(vertices: np.ndarray, faces: np.ndarray, blocks: int = 40) -> np.ndarray:
    """(P, 2) the pairs of faces (F, 3) of a mesh (V, 3) that Open3D's
    ``get_self_intersecting_triangles`` calls intersecting (its test compares every pair, so
    it runs block by block: each face goes to every block of a blocks^3 grid that its bounding
    box overlaps, and two faces that intersect meet in some block)."""
    import open3d as o3d

    if len(faces) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    tri = vertices[faces]
    low = vertices.min(axis=0)
    side = max(float((vertices.max(axis=0) - low).max()) / blocks, 1e-12)
    lo = np.floor((tri.min(axis=1) - low) / side).astype(np.int64)
    span = np.floor((tri.max(axis=1) - low) / side).astype(np.int64) - lo + 1
    count = span.prod(axis=1)
    owner = np.repeat(np.arange(len(faces)), count)
    k = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    s0, s1 = span[owner, 0], span[owner, 1]
    cell = lo[owner] + np.stack([k % s0, (k // s0) % s1, k // (s0 * s1)], axis=1)
    key = (cell[:, 0] * (blocks + 2) + cell[:, 1]) * (blocks + 2) + cell[:, 2]
    order = np.argsort(key, kind="stable")
    key, owner = key[order], owner[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    found = set()
    for start, stop in zip(starts, np.r_[starts[1:], len(key)], strict=True):
        if stop - start < 2:
            continue
        group = owner[start:stop]
        used, local = np.unique(faces[group], return_inverse=True)
        mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vertices[used]),
                                         o3d.utility.Vector3iVector(local.reshape(-1, 3)))
        for a, b in np.asarray(mesh.get_self_intersecting_triangles()):
            found.add((min(group[a], group[b]), max(group[a], group[b])))
    return np.array(sorted(found), dtype=np.int64).reshape(-1, 2)


def mesh_integrity(vertices: np.ndarray, faces: np.ndarray) -> dict:
    """What a printer, simulator or boolean library checks of a mesh (V, 3), (F, 3): components,
    faces of zero area, edge- and vertex-manifold, watertight by trimesh's test (every edge in
    two faces) and by Open3D's (edge- and vertex-manifold and no self-intersecting pair, here
    counted block by block: :func:`self_intersecting_pairs`)."""
    import open3d as o3d
    import trimesh

    mesh = trimesh.Trimesh(vertices, faces, process=False)
    o3d_mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(np.asarray(vertices, dtype=np.float64)),
                                         o3d.utility.Vector3iVector(np.asarray(faces)))
    edge, vertex = o3d_mesh.is_edge_manifold(allow_boundary_edges=False), o3d_mesh.is_vertex_manifold()
    crossing = len(self_intersecting_pairs(np.asarray(vertices, dtype=np.float64), np.asarray(faces)))
    parts = mesh.split(only_watertight=False)
    return {
        "faces": len(faces), "components": len(parts),
        "smallest_component_faces": min(len(p.faces) for p in parts) if parts else 0,
        "zero_area_faces": int((mesh.area_faces <= 0).sum()),
        "trimesh_watertight": bool(mesh.is_watertight), "edge_manifold": bool(edge),
        "vertex_manifold": bool(vertex), "self_intersecting_pairs": crossing,
        "open3d_watertight": bool(edge and vertex and crossing == 0),
    }
