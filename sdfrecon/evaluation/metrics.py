"""Surface comparison and topology metrics for reconstructed meshes (numpy/scipy only).

Conventions used throughout:

* Distances are Euclidean, unsquared, in the units of the input coordinates, unless a
  key says otherwise (``chamfer_l2`` is a mean of squared distances).
* Point-set metrics compare two finite samples, so even two samplings of the same
  surface give a non-zero Chamfer distance (the "sampling floor", which shrinks
  roughly like 1/sqrt(n)).
* Meshes are only read through ``.vertices`` (V, 3) and ``.faces`` (F, 3), so any
  ``trimesh.Trimesh`` works, whether it was loaded with ``process=False`` or not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

if TYPE_CHECKING:
    import trimesh

DEFAULT_TAUS: tuple[float, ...] = (0.005, 0.01, 0.02)


def _triangles(mesh: trimesh.Trimesh) -> np.ndarray:
    """Corner coordinates of every face, (F, 3, 3) float64."""
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    return vertices[faces]


def sample_surface(mesh: trimesh.Trimesh, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` points uniformly by area on the surface of ``mesh``.

    Faces are chosen with probability proportional to their area, then a point is
    drawn uniformly inside the face with the square-root barycentric trick. All random
    numbers come from ``np.random.default_rng(seed)``, so the result depends only on
    the mesh and the seed (not on trimesh's or numpy's global RNG).

    Returns ``(points, normals)``: (n, 3) float64 positions in mesh units, and (n, 3)
    float64 unit face normals of the face each point lies on (oriented by the winding).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    tri = _triangles(mesh)
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    double_area = np.linalg.norm(cross, axis=1)
    total = double_area.sum()
    if not np.isfinite(total) or total <= 0.0:
        raise ValueError("mesh has no surface area to sample")
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(double_area) / total
    face = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right")
    face = np.minimum(face, len(cdf) - 1)  # guard against round-off at the top end
    r1, r2 = rng.random((2, n))
    s = np.sqrt(r1)
    a, b, c = tri[face, 0], tri[face, 1], tri[face, 2]
    points = (1.0 - s)[:, None] * a + (s * (1.0 - r2))[:, None] * b + (s * r2)[:, None] * c
    normals = cross[face] / double_area[face][:, None]
    return points, normals


def nearest(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each point of ``a`` (n, 3), its nearest point in ``b`` (m, 3).

    Returns ``(dist, index)``: (n,) float64 unsquared Euclidean distances and (n,)
    integer indices into ``b``. Uses a k-d tree on ``b`` with all CPU cores.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if len(b) == 0:
        raise ValueError("nearest: the reference set b is empty")
    dist, index = cKDTree(b).query(a, k=1, workers=-1)
    return np.asarray(dist, dtype=np.float64), np.asarray(index, dtype=np.int64)


def _unit(v: np.ndarray) -> np.ndarray:
    """Rows of ``v`` scaled to unit length (zero rows stay zero)."""
    v = np.asarray(v, dtype=np.float64)
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    return np.divide(v, norm, out=np.zeros_like(v), where=norm > 0)


def _fscore(precision: float, recall: float) -> float:
    """Harmonic mean of precision and recall; 0 when both are 0."""
    if precision + recall == 0.0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def chamfer_fscore(
    rec_pts: np.ndarray,
    ref_pts: np.ndarray,
    rec_normals: np.ndarray | None = None,
    ref_normals: np.ndarray | None = None,
    taus: Sequence[float] = DEFAULT_TAUS,
) -> dict[str, float]:
    """Chamfer, Hausdorff, F-score and normal consistency between two point sets.

    ``rec_pts`` (n, 3) is the reconstruction, ``ref_pts`` (m, 3) the reference. With
    ``d_rr`` the nearest distances rec->ref (n,) and ``d_fr`` ref->rec (m,):

    * ``chamfer_l1`` = (mean d_rr + mean d_fr) / 2, unsquared, input units.
    * ``chamfer_l2`` = (mean d_rr**2 + mean d_fr**2) / 2, squared input units.
    * ``hausdorff`` = max(max d_rr, max d_fr), input units.
    * for each absolute threshold tau (input units), keyed ``f"...@{tau:g}"``:
      ``precision@tau`` = fraction of rec points with d_rr < tau, ``recall@tau`` =
      fraction of ref points with d_fr < tau, ``fscore@tau`` = 2PR/(P+R) (0 if P=R=0).
    * ``normal_consistency`` (only when both normal arrays are given) = mean of the two
      directional means of |cos| between a point's normal and the normal of its nearest
      neighbour in the other set; normals are normalised first, sign is ignored.
    """
    d_rr, i_rr = nearest(rec_pts, ref_pts)
    d_fr, i_fr = nearest(ref_pts, rec_pts)
    out: dict[str, float] = {
        "chamfer_l1": float((d_rr.mean() + d_fr.mean()) / 2.0),
        "chamfer_l2": float((np.mean(d_rr**2) + np.mean(d_fr**2)) / 2.0),
        "hausdorff": float(max(d_rr.max(), d_fr.max())),
    }
    for tau in taus:
        precision = float(np.mean(d_rr < tau))
        recall = float(np.mean(d_fr < tau))
        out[f"precision@{tau:g}"] = precision
        out[f"recall@{tau:g}"] = recall
        out[f"fscore@{tau:g}"] = _fscore(precision, recall)
    if rec_normals is not None and ref_normals is not None:
        n_rec, n_ref = _unit(rec_normals), _unit(ref_normals)
        cos_rr = np.abs(np.sum(n_rec * n_ref[i_rr], axis=1))
        cos_fr = np.abs(np.sum(n_ref * n_rec[i_fr], axis=1))
        out["normal_consistency"] = float((cos_rr.mean() + cos_fr.mean()) / 2.0)
    return out


def _percent_label(fraction: float) -> str:
    """0.01 -> '1%', 0.005 -> '0.5%'."""
    return f"{round(100.0 * fraction, 9):g}%"


def bbox_diagonal(mesh: trimesh.Trimesh) -> float:
    """Length of the bounding-box diagonal of the vertices that faces use (mesh units)."""
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    used = vertices[np.unique(np.asarray(mesh.faces, dtype=np.int64))]
    if len(used) == 0:
        raise ValueError("mesh has no faces")
    return float(np.linalg.norm(used.max(axis=0) - used.min(axis=0)))


def compare_meshes(
    rec: trimesh.Trimesh,
    ref: trimesh.Trimesh,
    n: int = 100_000,
    seed: int = 0,
    tau_fractions: Sequence[float] = DEFAULT_TAUS,
) -> dict[str, float]:
    """Sample ``n`` points on each mesh and compare them with :func:`chamfer_fscore`.

    The two meshes get different seeds (both derived from ``seed`` by
    ``np.random.SeedSequence``), so comparing a mesh with itself measures the sampling
    floor rather than returning 0. Thresholds are fractions of ``diag``, the bounding-box
    diagonal of the REFERENCE mesh (over vertices that faces use), so scores are
    comparable across shapes of any scale.

    Keys: ``diag``; ``chamfer_l1``, ``chamfer_l2``, ``hausdorff``, ``normal_consistency``
    (absolute, as in :func:`chamfer_fscore`); ``chamfer_l1_rel`` and ``hausdorff_rel``
    (divided by diag) and ``chamfer_l2_rel`` (divided by diag**2, since it is squared);
    for each fraction, e.g. 0.01: ``tau@1%`` (absolute threshold), ``precision@1%``,
    ``recall@1%``, ``fscore@1%`` (0.005 gives ``...@0.5%``).
    """
    rec_seed, ref_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
    rec_pts, rec_nrm = sample_surface(rec, n, rec_seed)
    ref_pts, ref_nrm = sample_surface(ref, n, ref_seed)
    diag = bbox_diagonal(ref)
    taus = [f * diag for f in tau_fractions]
    raw = chamfer_fscore(rec_pts, ref_pts, rec_nrm, ref_nrm, taus=taus)
    out: dict[str, float] = {"diag": diag}
    for key in ("chamfer_l1", "chamfer_l2", "hausdorff", "normal_consistency"):
        out[key] = raw[key]
    out["chamfer_l1_rel"] = raw["chamfer_l1"] / diag
    out["chamfer_l2_rel"] = raw["chamfer_l2"] / diag**2
    out["hausdorff_rel"] = raw["hausdorff"] / diag
    for fraction, tau in zip(tau_fractions, taus, strict=True):
        label = _percent_label(fraction)
        out[f"tau@{label}"] = tau
        for name in ("precision", "recall", "fscore"):
            out[f"{name}@{label}"] = raw[f"{name}@{tau:g}"]
    return out


def _merged_faces(mesh: trimesh.Trimesh) -> tuple[np.ndarray, int]:
    """Faces re-indexed after merging vertices with identical coordinates.

    Returns ``(faces, n_vertices)`` where faces (F, 3) index 0..n_vertices-1 and every
    one of those vertices is used by a face (unreferenced vertices are dropped).
    """
    vertices = np.asarray(mesh.vertices, dtype=np.float64) + 0.0  # -0.0 -> +0.0
    faces = np.asarray(mesh.faces, dtype=np.int64)
    _, first = np.unique(vertices, axis=0, return_inverse=True)
    faces = first.reshape(-1)[faces]
    used, faces = np.unique(faces, return_inverse=True)
    return faces.reshape(-1, 3), len(used)


def _edges(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique undirected edges (E, 2) with i < j, and how many faces use each (E,)."""
    pairs = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    return np.unique(pairs, axis=0, return_counts=True)


def _count_components(edges: np.ndarray, n_nodes: int) -> int:
    """Connected components of the graph with ``n_nodes`` nodes and (E, 2) edges."""
    graph = coo_matrix(
        (np.ones(len(edges), dtype=np.int8), (edges[:, 0], edges[:, 1])),
        shape=(n_nodes, n_nodes),
    )
    return int(connected_components(graph, directed=False)[0])


def _boundary_loops(edges: np.ndarray, counts: np.ndarray) -> int:
    """Independent cycles of the boundary-edge graph (edges used by exactly one face).

    Equals the number of boundary loops; a vertex pinching two loops together still
    counts as two loops (cycle rank E - V + C of the boundary graph).
    """
    boundary = edges[counts == 1]
    if len(boundary) == 0:
        return 0
    nodes, compact = np.unique(boundary, return_inverse=True)
    compact = compact.reshape(-1, 2)
    n_comp = _count_components(compact, len(nodes))
    return int(len(boundary) - len(nodes) + n_comp)


def vertex_components(faces: np.ndarray, n_vertices: int) -> np.ndarray:
    """Connected-component label (V,) of every vertex, through the faces (F, 3) it is on.

    Vertices no face uses get labels of their own.
    """
    edges = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    graph = coo_matrix((np.ones(len(edges), dtype=np.int8), (edges[:, 0], edges[:, 1])),
                       shape=(n_vertices, n_vertices))
    return connected_components(graph, directed=False)[1]


def component_distances(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """For each connected component of the mesh, the distance from its nearest vertex to
    the nearest of points (N, 3): (C,) float64, in the units of the inputs. A component
    whose value is large is a surface that no input point supports (a ghost)."""
    labels = vertex_components(faces, len(vertices))
    used = np.unique(labels[faces.ravel()])
    dist, _ = nearest(np.asarray(vertices, dtype=np.float64), np.asarray(points, dtype=np.float64))
    closest = np.full(labels.max() + 1, np.inf)
    np.minimum.at(closest, labels, dist)
    return closest[used]


def topology(mesh: trimesh.Trimesh) -> dict[str, int | float | bool]:
    """Topological summary of a triangle mesh, after merging duplicate vertices.

    Vertices with bit-identical coordinates are merged (this undoes UV/normal seams in
    OBJ files) and unreferenced vertices dropped. Keys:

    * ``vertices``, ``edges``, ``faces``: V, E (unique undirected), F after merging.
    * ``components``: connected components of the surface (faces sharing a vertex).
    * ``euler``: V - E + F.
    * ``boundary_loops``: loops of edges that only one face uses.
    * ``genus``: (2*components - euler - boundary_loops) / 2, an int when integral
      (a half-integer flags a non-orientable or non-manifold mesh).
    * ``watertight``: every edge is used by exactly two faces.
    """
    faces, n_vertices = _merged_faces(mesh)
    edges, counts = _edges(faces)
    components = _count_components(edges, n_vertices) if n_vertices else 0
    euler = n_vertices - len(edges) + len(faces)
    loops = _boundary_loops(edges, counts)
    genus2 = 2 * components - euler - loops
    genus: int | float = int(genus2 // 2) if genus2 % 2 == 0 else genus2 / 2
    return {
        "vertices": n_vertices,
        "edges": len(edges),
        "faces": len(faces),
        "components": components,
        "euler": int(euler),
        "boundary_loops": loops,
        "genus": genus,
        "watertight": bool(len(faces) > 0 and np.all(counts == 2)),
    }
