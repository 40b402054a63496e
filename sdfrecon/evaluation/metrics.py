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

from sdfrecon.geometry import nearest, vertex_components

if TYPE_CHECKING:
    import trimesh

DEFAULT_TAUS: tuple[float, ...] = (0.005, 0.01, 0.02)


def _triangles(mesh: trimesh.Trimesh) -> np.ndarray:
    """Corner coordinates of every face, (F, 3, 3) float64."""
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    return vertices[faces]


def sample_surface(mesh: trimesh.Trimesh, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` points uniformly by area on the surface of ``mesh``, with trimesh's sampler
    seeded by ``seed`` (so the result depends only on the mesh and the seed, not on any
    global random state).

    Returns ``(points, normals)``: (n, 3) float64 positions in mesh units, and (n, 3)
    float64 unit face normals of the face each point lies on (oriented by the winding).
    """
    import trimesh

    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    surface = trimesh.Trimesh(np.asarray(mesh.vertices, dtype=np.float64),
                              np.asarray(mesh.faces, dtype=np.int64), process=False)
    total = float(surface.area_faces.sum())
    if not np.isfinite(total) or total <= 0.0:
        raise ValueError("mesh has no surface area to sample")
    points, face = trimesh.sample.sample_surface(surface, n, seed=seed)
    return np.asarray(points, dtype=np.float64), np.asarray(surface.face_normals[face], dtype=np.float64)


def _unit(v: np.ndarray) -> np.ndarray:
    """Rows of ``v`` scaled to unit length (zero rows stay zero)."""
    v = np.asarray(v, dtype=np.float64)
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    return np.divide(v, norm, out=np.zeros_like(v), where=norm > 0)


def _chamfer(d_rr: np.ndarray, d_fr: np.ndarray) -> tuple[float, float, float]:
    """(Chamfer-L1, Chamfer-L2, Hausdorff) from nearest distances rec->ref and ref->rec."""
    return (float((d_rr.mean() + d_fr.mean()) / 2.0),
            float((np.mean(d_rr**2) + np.mean(d_fr**2)) / 2.0),
            float(max(d_rr.max(), d_fr.max())))


def _precision_recall_fscore(d_rr: np.ndarray, d_fr: np.ndarray, tau: float) -> tuple[float, float, float]:
    """Fractions of rec and ref points within tau of the other set, and their harmonic mean
    (0 when both are 0)."""
    precision, recall = float(np.mean(d_rr < tau)), float(np.mean(d_fr < tau))
    fscore = 0.0 if precision + recall == 0.0 else 2.0 * precision * recall / (precision + recall)
    return precision, recall, fscore


def _normal_consistency(rec_normals: np.ndarray, ref_normals: np.ndarray, i_rr: np.ndarray,
                        i_fr: np.ndarray) -> float:
    """Mean of the two directional means of |cos| between a point's normal and that of its
    nearest neighbour in the other set (indices i_rr, i_fr); normals are normalised first."""
    n_rec, n_ref = _unit(rec_normals), _unit(ref_normals)
    cos_rr = np.abs(np.sum(n_rec * n_ref[i_rr], axis=1))
    cos_fr = np.abs(np.sum(n_ref * n_rec[i_fr], axis=1))
    return float((cos_rr.mean() + cos_fr.mean()) / 2.0)


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
    out: dict[str, float] = dict(zip(("chamfer_l1", "chamfer_l2", "hausdorff"), _chamfer(d_rr, d_fr), strict=True))
    for tau in taus:
        for name, value in zip(("precision", "recall", "fscore"), _precision_recall_fscore(d_rr, d_fr, tau),
                               strict=True):
            out[f"{name}@{tau:g}"] = value
    if rec_normals is not None and ref_normals is not None:
        out["normal_consistency"] = _normal_consistency(rec_normals, ref_normals, i_rr, i_fr)
    return out


def percent_label(fraction: float) -> str:
    """0.01 -> '1%', 0.005 -> '0.5%': the key suffix of thresholds relative to a diagonal."""
    return f"{round(100.0 * fraction, 9):g}%"


def relative_metrics(d_rr: np.ndarray, d_fr: np.ndarray, diag: float, tau_fractions: Sequence[float],
                     prefix: str = "", with_tau: bool = True) -> dict[str, float]:
    """Chamfer-L1/L2 and Hausdorff (each also ``*_rel``: / diag, / diag**2 for L2) and, for
    each fraction f of diag (keyed by :func:`percent_label`), ``tau@`` (with ``with_tau``),
    ``precision@``, ``recall@``, ``fscore@``; from nearest distances rec->ref (n,) and
    ref->rec (m,). Every key starts with ``prefix``."""
    out: dict[str, float] = {}
    for key, value in zip(("chamfer_l1", "chamfer_l2", "hausdorff"), _chamfer(d_rr, d_fr), strict=True):
        out[f"{prefix}{key}"] = value
        out[f"{prefix}{key}_rel"] = value / (diag**2 if key == "chamfer_l2" else diag)
    for fraction in tau_fractions:
        tau, label = fraction * diag, percent_label(fraction)
        if with_tau:
            out[f"{prefix}tau@{label}"] = tau
        for name, value in zip(("precision", "recall", "fscore"), _precision_recall_fscore(d_rr, d_fr, tau),
                               strict=True):
            out[f"{prefix}{name}@{label}"] = value
    return out


def compare_points(rec_pts: np.ndarray, rec_normals: np.ndarray | None, ref_pts: np.ndarray,
                   ref_normals: np.ndarray | None, diag: float,
                   tau_fractions: Sequence[float] = DEFAULT_TAUS) -> dict[str, float]:
    """:func:`relative_metrics` of two point sets (n, 3) and (m, 3), and
    ``normal_consistency`` when both have normals."""
    d_rr, i_rr = nearest(rec_pts, ref_pts)
    d_fr, i_fr = nearest(ref_pts, rec_pts)
    out = relative_metrics(d_rr, d_fr, diag, tau_fractions)
    if rec_normals is not None and ref_normals is not None:
        out["normal_consistency"] = _normal_consistency(rec_normals, ref_normals, i_rr, i_fr)
    return out


def used_vertices(mesh: trimesh.Trimesh) -> np.ndarray:
    """The vertices (K, 3) float64 that faces use, each once."""
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    return vertices[np.unique(np.asarray(mesh.faces, dtype=np.int64))]


def bbox_diagonal(mesh: trimesh.Trimesh) -> float:
    """Length of the bounding-box diagonal of the vertices that faces use (mesh units)."""
    used = used_vertices(mesh)
    if len(used) == 0:
        raise ValueError("mesh has no faces")
    return float(np.linalg.norm(used.max(axis=0) - used.min(axis=0)))


def sample_seeds(seed: int) -> tuple[int, int]:
    """The two seeds (reconstruction, reference) of a comparison, from ``SeedSequence(seed)``,
    so that a mesh compared with itself measures the sampling floor rather than 0."""
    rec_seed, ref_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
    return rec_seed, ref_seed


def compare_meshes(
    rec: trimesh.Trimesh,
    ref: trimesh.Trimesh,
    n: int = 100_000,
    seed: int = 0,
    tau_fractions: Sequence[float] = DEFAULT_TAUS,
) -> dict[str, float]:
    """Sample ``n`` points on each mesh (seeds from :func:`sample_seeds`) and compare them
    with :func:`compare_points`. Thresholds are fractions of ``diag``, the bounding-box
    diagonal of the REFERENCE mesh (over vertices that faces use), so scores are comparable
    across shapes of any scale.

    Keys: ``diag``; ``chamfer_l1``, ``chamfer_l2``, ``hausdorff``, ``normal_consistency``
    (absolute, as in :func:`chamfer_fscore`); ``chamfer_l1_rel`` and ``hausdorff_rel``
    (divided by diag) and ``chamfer_l2_rel`` (divided by diag**2, since it is squared);
    for each fraction, e.g. 0.01: ``tau@1%`` (absolute threshold), ``precision@1%``,
    ``recall@1%``, ``fscore@1%`` (0.005 gives ``...@0.5%``).
    """
    rec_seed, ref_seed = sample_seeds(seed)
    rec_pts, rec_nrm = sample_surface(rec, n, rec_seed)
    ref_pts, ref_nrm = sample_surface(ref, n, ref_seed)
    diag = bbox_diagonal(ref)
    return {"diag": diag, **compare_points(rec_pts, rec_nrm, ref_pts, ref_nrm, diag, tau_fractions)}


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


UNSUPPORTED_FRACTIONS = (0.01, 0.02, 0.05)


def unsupported_area(mesh: trimesh.Trimesh, points: np.ndarray,
                     fractions: Sequence[float] = UNSUPPORTED_FRACTIONS,
                     samples: int = 100_000, seed: int = 0) -> dict[str, float]:
    """How much of ``mesh``'s surface no input point supports: surface where no point is.

    ``samples`` area-weighted points are drawn on the mesh (:func:`sample_surface`, seeded),
    and each one's distance to the nearest of ``points`` (N, 3), the input cloud in the mesh's
    units, is taken. Returns ``unsupported@1%`` ... : the share of the mesh's area (0..1)
    farther than that fraction of the cloud's bounding-box diagonal from every input point,
    and ``support_mean`` (mesh units) and ``support_mean_rel`` (over the diagonal), the mean of
    those distances. A ghost blob or a hole closed far from any point shows up here; a
    faithful mesh of a dense cloud scores ~0 at 1%.
    """
    points = np.asarray(points, dtype=np.float64)
    diag = float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))
    if not diag > 0.0:
        raise ValueError("unsupported_area: the points have a zero-size bounding box")
    sampled, _ = sample_surface(mesh, samples, seed)
    dist, _ = nearest(sampled, points)
    out = {f"unsupported@{percent_label(f)}": float((dist > f * diag).mean()) for f in fractions}
    out["support_mean"] = float(dist.mean())
    out["support_mean_rel"] = float(dist.mean()) / diag
    return out
