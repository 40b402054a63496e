"""Score a reconstructed mesh against a reference mesh or point cloud (``sdfrecon evaluate``).

Built on :mod:`sdfrecon.evaluation.metrics` (sampling, nearest neighbours, Chamfer/F-score, topology)
and adds what a benchmark needs: a point-cloud reference (the input scan), the SRB
one-sided scan-to-reconstruction distances, exact point-to-triangle versions of the
metrics for a mesh reference, every length also relative to the reference's bounding-box
diagonal, and a one-line statement of each convention (:data:`CONVENTIONS`).

Why exact versions: two independent 100k samplings of the same bunny already differ by
0.15 % of the diagonal in sample-based Chamfer-L1, about the gap between good methods.
Measuring from samples of one mesh to the *triangles* of the other removes the sampling
floor on the target side (a mesh against itself scores ~1e-8 of the diagonal).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sdfrecon.errors import InputError
from sdfrecon.evaluation.metrics import (
    DEFAULT_TAUS,
    bbox_diagonal,
    compare_points,
    component_distances,
    relative_metrics,
    sample_seeds,
    sample_surface,
    topology,
    used_vertices,
)
from sdfrecon.io import MESH_SUFFIXES, POINT_CLOUD_SUFFIXES, PointCloud, load_mesh, load_point_cloud

if TYPE_CHECKING:
    import trimesh

log = logging.getLogger("sdfrecon")

Metrics = dict[str, "float | int | bool | str"]

CONVENTIONS: dict[str, str] = {
    "distance": "d(x, Y) = Euclidean, unsquared distance from x to the nearest sample of Y; "
                "lengths in the reference's units, *_rel = length / diag",
    "diag": "bounding-box diagonal of the reference (mesh: vertices used by faces; cloud: all points)",
    "sampling": "each mesh: `samples` area-weighted points with their face normals, seeded; "
                "a point-cloud reference is used whole, never resampled",
    "chamfer_l1": "(mean d(rec->ref) + mean d(ref->rec)) / 2, unsquared",
    "chamfer_l2": "(mean d(rec->ref)^2 + mean d(ref->rec)^2) / 2, squared units; *_rel = / diag^2",
    "hausdorff": "max(max d(rec->ref), max d(ref->rec)) over the samples "
                 "(a lower bound of the surfaces' Hausdorff distance)",
    "fscore": "at tau = fraction x diag: precision = share of rec samples with d(rec->ref) < tau, "
              "recall = share of ref samples/points with d(ref->rec) < tau, F = 2PR / (P + R)",
    "normal_consistency": "mean of the two directional means of |cos| between a sample's normal "
                          "and its nearest neighbour's in the other set (sign ignored)",
    "exact": "exact_* (mesh reference): the same formulas with d = distance from each sample to the "
             "other mesh's triangles (Open3D RaycastingScene, float32 about the reference's bbox "
             "centre): no sampling floor, ~0 for a mesh against itself",
    "scan_to_rec": "SRB convention (cloud reference, e.g. the input scan): one-sided distances from "
                   "every reference point to the reconstruction's triangles, mean and max; "
                   "far_components@2%: components of the reconstruction farther than 2% of the "
                   "diagonal from every reference point (ghost surfaces)",
    "topology": "of the reconstruction after merging identical vertices: connected components, "
                "genus = (2C - Euler - boundary loops) / 2, watertight = every edge in exactly 2 faces",
    "unsupported": "with --input CLOUD: unsupported@f = share of the reconstruction's area (its "
                   "`samples` area-weighted points) farther than f x the input cloud's bbox diagonal "
                   "from every input point; support_mean_rel = their mean distance / that diagonal; "
                   "unsupported_area = area of the faces whose farthest vertex or centroid lies "
                   "farther than trim_distance (--trim, auto: 5 median point spacings) from every "
                   "input point, the faces `reconstruct --trim` removes; _share = of the mesh's area",
}

# Short per-row text for the printed table (the full lines are CONVENTIONS).
_ROW_CONVENTIONS = {
    "chamfer_l1": "(mean d(rec->ref) + mean d(ref->rec)) / 2",
    "chamfer_l2": "(mean d^2 + mean d^2) / 2; rel = / diag^2",
    "hausdorff": "max of the two maxima of d",
    "tau": "threshold tau = fraction x diag",
    "precision": "share of rec samples with d(rec->ref) < tau",
    "recall": "share of ref samples/points with d(ref->rec) < tau",
    "fscore": "2PR / (P + R)",
    "normal_consistency": "mean |cos| to nearest neighbour, both ways / 2",
    "scan_to_rec_mean": "SRB: mean distance, ref points -> rec triangles",
    "scan_to_rec_max": "SRB: max distance, ref points -> rec triangles",
    "components": "connected components of rec",
    "genus": "(2C - Euler - boundary loops) / 2 of rec",
    "watertight": "every edge of rec in exactly 2 faces",
    "diag": "reference bounding-box diagonal",
    "unsupported": "share of rec's area farther than fraction x input-cloud diag from every input point",
    "support_mean": "mean distance of rec samples to the nearest input point; rel = / input-cloud diag",
    "trim_distance": "--trim: faces farther than this from every input point are unsupported",
    "unsupported_area": "area of rec's faces farther than trim_distance from every input point",
    "unsupported_area_share": "the same, as a share of rec's area",
}


def require_surface(mesh: trimesh.Trimesh, path: str | Path | None, what: str) -> None:
    """InputError unless the mesh has faces with a positive, finite total area."""
    tri = np.asarray(mesh.vertices, dtype=np.float64)[np.asarray(mesh.faces, dtype=np.int64)]
    if len(tri) == 0:
        raise InputError(path, f"{what} has no faces")
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum()
    if not np.isfinite(area) or area <= 0.0:
        raise InputError(path, f"{what} has no surface area (all faces degenerate, or NaN vertices)")


def load_reference(path: str | Path) -> trimesh.Trimesh | PointCloud:
    """A reference for :func:`evaluate_mesh`: a mesh if the file has faces, else a point cloud.

    .stl and .glb are read as meshes; .ply, .obj and .off as meshes when they hold faces and
    otherwise (or when trimesh cannot read them, e.g. raw range scans) as point clouds; the
    other point-cloud suffixes as clouds. Raises ``InputError`` for a missing, unreadable or
    unusable file (a mesh with no area, a cloud that ``load_point_cloud`` rejects).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.exists():
        raise InputError(path, "no such file")
    if path.is_dir():
        raise InputError(path, "is a directory, not a file")
    known = sorted(set(MESH_SUFFIXES) | set(POINT_CLOUD_SUFFIXES))
    if suffix not in known:
        raise InputError(path, f"unknown reference format '{path.suffix}' "
                               f"(supported: {', '.join(known)})")
    if suffix in MESH_SUFFIXES:
        try:
            mesh = load_mesh(path)
        except InputError as error:
            if suffix not in POINT_CLOUD_SUFFIXES:
                raise
            # Unreadable as a mesh: read it as a cloud; if that fails too, its error (one
            # line, the more precise one) is raised; if it works, say what happened.
            cloud = load_point_cloud(path)
            if "has no faces" not in error.problem:
                log.warning("%s: %s; reading its vertices as a point cloud", path, error.problem)
            return cloud
        else:
            require_surface(mesh, path, "the mesh")
            return mesh
    return load_point_cloud(path)


def _centre(points: np.ndarray) -> np.ndarray:
    """Centre of the bounding box of (N, 3) points."""
    return (points.min(axis=0) + points.max(axis=0)) / 2.0


class TriangleSurface:
    """The triangles of a mesh in an Open3D ``RaycastingScene``, for exact point-to-surface
    distances.

    Open3D works in float32, so the mesh and every query are shifted by ``centre`` (use the
    reference's bounding-box centre for every surface of one comparison) before the cast:
    coordinates then carry about 7 digits of the shape's size rather than of its offset.
    """

    def __init__(self, mesh: trimesh.Trimesh, centre: np.ndarray | None = None):
        import open3d as o3d

        vertices = np.asarray(mesh.vertices, dtype=np.float64)
        faces = np.asarray(mesh.faces, dtype=np.int64)
        if len(faces) == 0:
            raise ValueError("mesh has no faces")
        self.centre = _centre(used_vertices(mesh)) if centre is None else np.asarray(centre, dtype=np.float64)
        self._scene = o3d.t.geometry.RaycastingScene()
        self._scene.add_triangles(o3d.core.Tensor((vertices - self.centre).astype(np.float32)),
                                  o3d.core.Tensor(faces.astype(np.uint32)))
        self._o3d = o3d

    def distance(self, points: np.ndarray, chunk: int = 1_000_000) -> np.ndarray:
        """Unsigned distance (N,) float64 from each point (N, 3) to the nearest triangle."""
        points = np.asarray(points, dtype=np.float64)
        out = np.empty(len(points), dtype=np.float64)
        for start in range(0, len(points), chunk):
            block = (points[start:start + chunk] - self.centre).astype(np.float32)
            out[start:start + chunk] = self._scene.compute_distance(self._o3d.core.Tensor(block)).numpy()
        return out


def surface_distance(points: np.ndarray, mesh: trimesh.Trimesh,
                     centre: np.ndarray | None = None) -> np.ndarray:
    """Exact unsigned distances (N,) from points (N, 3) to the triangles of ``mesh``; see
    :class:`TriangleSurface` (``centre`` defaults to the mesh's bounding-box centre)."""
    return TriangleSurface(mesh, centre).distance(points)


def evaluate_mesh(rec: trimesh.Trimesh, reference: trimesh.Trimesh | PointCloud,
                  samples: int = 100_000, seed: int = 0,
                  tau_fractions: Sequence[float] = DEFAULT_TAUS, exact: bool = True) -> Metrics:
    """Compare a reconstructed mesh with a reference mesh or point cloud.

    ``samples`` area-weighted points are drawn on each mesh with the seeds that
    :func:`sdfrecon.evaluation.metrics.compare_meshes` uses (two seeds from ``SeedSequence(seed)``), so
    for a mesh reference the sample-based keys equal ``compare_meshes``'s. A point-cloud
    reference is used whole. Returns a flat, JSON-ready dict (conventions: :data:`CONVENTIONS`):

    * ``reference_kind`` ('mesh' or 'cloud'), ``reference_points`` (the reference's sample or
      point count), ``samples``, ``seed``, ``diag``;
    * ``chamfer_l1``, ``chamfer_l2``, ``hausdorff`` and their ``*_rel``; for each fraction f
      (0.01 -> '1%'): ``tau@1%``, ``precision@1%``, ``recall@1%``, ``fscore@1%``;
      ``normal_consistency`` when the reference has normals (a mesh always does);
    * mesh reference and ``exact``: ``exact_chamfer_l1``, ``exact_chamfer_l2``,
      ``exact_hausdorff`` (each with ``*_rel``), ``exact_precision@1%``, ``exact_recall@1%``,
      ``exact_fscore@1%``, ...;
    * cloud reference: ``scan_to_rec_mean``, ``scan_to_rec_max`` and their ``*_rel`` (always
      exact: the reconstruction is a mesh);
    * ``vertices``, ``faces``, ``components``, ``genus``, ``watertight`` of ``rec``;
      ``reference_components`` of a mesh reference.

    Raises ``InputError`` (path None) when ``rec`` or a mesh ``reference`` has no surface area.
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if not tau_fractions:
        raise ValueError("tau_fractions is empty")
    require_surface(rec, None, "the reconstructed mesh")
    cloud = isinstance(reference, PointCloud)
    rec_seed, ref_seed = sample_seeds(seed)
    rec_pts, rec_nrm = sample_surface(rec, samples, rec_seed)
    if cloud:
        ref_pts, ref_nrm = reference.points, reference.normals
        diag = float(np.linalg.norm(ref_pts.max(axis=0) - ref_pts.min(axis=0)))
        centre = _centre(ref_pts)
    else:
        require_surface(reference, None, "the reference mesh")
        ref_pts, ref_nrm = sample_surface(reference, samples, ref_seed)
        diag = bbox_diagonal(reference)
        centre = _centre(used_vertices(reference))
    if not diag > 0.0:
        raise InputError(None, "the reference has a zero-size bounding box")

    out: Metrics = {"reference_kind": "cloud" if cloud else "mesh", "reference_points": len(ref_pts),
                    "samples": int(samples), "seed": int(seed), "diag": diag}
    out.update(compare_points(rec_pts, rec_nrm, ref_pts, ref_nrm, diag, tau_fractions))
    if cloud:
        d_scan = TriangleSurface(rec, centre).distance(ref_pts)
        for name, value in (("mean", float(d_scan.mean())), ("max", float(d_scan.max()))):
            out[f"scan_to_rec_{name}"] = value
            out[f"scan_to_rec_{name}_rel"] = value / diag
        far = component_distances(np.asarray(rec.vertices), np.asarray(rec.faces), ref_pts)
        out["far_components@2%"] = int((far > 0.02 * diag).sum())
    elif exact:
        d_rr = TriangleSurface(reference, centre).distance(rec_pts)
        d_fr = TriangleSurface(rec, centre).distance(ref_pts)
        out.update(relative_metrics(d_rr, d_fr, diag, tau_fractions, prefix="exact_", with_tau=False))
    topo = topology(rec)
    for key in ("vertices", "faces", "components", "genus", "watertight"):
        out[key] = topo[key]
    if not cloud:
        out["reference_components"] = topology(reference)["components"]
    return out


# --- the printed table -----------------------------------------------------------------------

_META = ("reference_kind", "reference_points", "samples", "seed", "vertices", "faces",
         "reference_components")


def _row_convention(key: str) -> str:
    exact = key.startswith("exact_")
    base = key.removeprefix("exact_").split("@")[0]
    text = _ROW_CONVENTIONS.get(base, "")
    if exact and text:
        text = text.replace("samples/points", "samples") + "; d to triangles"
    return text


def _number(value: float | int | bool | str) -> str:
    if isinstance(value, bool) or isinstance(value, (int, str)):
        return str(value)
    return f"{value:.6g}"


def format_table(metrics: Metrics) -> str:
    """The metrics as a text table: name, value (reference units), value / diag, convention.

    Dimensionless metrics have '-' under / diag; ``chamfer_l2``'s ratio is / diag^2;
    ``tau@..``'s is its fraction. The full :data:`CONVENTIONS` lines follow the table.
    """
    rows = [("metric", "value", "/ diag", "convention")]
    for key, value in metrics.items():
        if key in _META or key.endswith("_rel"):
            continue
        if f"{key}_rel" in metrics:
            rel = f"{100.0 * float(metrics[f'{key}_rel']):.4g}%"
        elif key.startswith("tau@"):
            rel = key.split("@")[1]
        elif key == "diag":
            rel = "1"
        else:
            rel = "-"
        rows.append((key, _number(value), rel, _row_convention(key)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c:>{widths[2]}}  {d}".rstrip()
             for a, b, c, d in rows]
    lines.append("")
    lines.append("conventions:")
    lines.extend(f"  {name}: {text}" for name, text in CONVENTIONS.items())
    return "\n".join(lines)
