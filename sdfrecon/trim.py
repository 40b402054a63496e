"""An open mesh where the data is (``reconstruct --trim``, ``evaluate --input``): the faces
of a watertight mesh that lie farther than a distance from every input point removed, as
Poisson users trim by density.

A face's distance is that of its farthest point among its three vertices and its centroid
(a k-d tree query each, linear in the mesh's size): a face is kept when all four lie within
the trim distance of some input point, so no kept face reaches farther than the distance
plus about half an edge (the mesh's edges are a voxel, well under a point spacing in the
shapes measured). Pieces left smaller than a disc of the trim distance's radius go too:
on the raw scan bun000 at 6 spacings, five islands of the back's cap a few stray points
held (0.01-0.4 such discs) beside its three real pieces (16-780 discs). ``auto`` is
``TRIM_SPACINGS`` median point spacings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sdfrecon.errors import InputError

TRIM_SPACINGS = 5.0
"""--trim auto, in median nearest-neighbour spacings of the cloud. Measured: the true
surface of the shared closed meshes (bunny, spot, fandisk, rocker arm, fertility, ant;
300,000 samples on each) lies at most 4.9 spacings from a 30,000- or 3,000-point sample of
it (99.9 % within 3.4), at most 2.8 with 0.5 % noise (the spacing grows with the noise),
so a faithful mesh loses nothing; the caps a watertight mesh puts over the raw scan
bun000's unscanned back lie 5 % of its diagonal (24 spacings) and more from it."""


def parse_trim(text: str | None, option: str = "--trim") -> float | str | None:
    """``auto``, a distance > 0 (float), or None (no trim); InputError naming ``option``
    for anything else (negative, zero, not a number, not finite)."""
    if text is None:
        return None
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0.0):
        raise InputError(option, f"must be a distance > 0 in the input's units, or auto; got {text!r}")
    return value


def trim_distance(trim: float | str, spacing: float) -> float:
    """The trim distance in the cloud's units: ``trim`` itself, or ``TRIM_SPACINGS`` x
    ``spacing`` (the cloud's median spacing, same units) for auto."""
    return TRIM_SPACINGS * spacing if trim == "auto" else float(trim)


def face_distances(vertices: np.ndarray, faces: np.ndarray, tree) -> np.ndarray:
    """(F,) distance of each face's farthest point among its vertices and centroid to the
    nearest point of ``tree`` (a k-d tree of the cloud, the mesh's units)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    at_vertices = tree.query(vertices, k=1, workers=-1)[0]
    at_centroids = tree.query(vertices[faces].mean(axis=1), k=1, workers=-1)[0]
    return np.maximum(at_vertices[faces].max(axis=1), at_centroids)


def face_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F,) triangle areas (the mesh's units squared)."""
    tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces, dtype=np.int64)]
    return 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)


@dataclass
class Trimmed:
    """The faces kept by a trim, and what went."""

    vertices: np.ndarray  # (V', 3) the vertices the kept faces use
    faces: np.ndarray  # (F', 3) int64, into vertices
    used: np.ndarray  # (V',) indices of those vertices in the untrimmed mesh
    distance: float
    faces_removed: int
    area_removed: float
    area_share: float  # of the untrimmed mesh's area, 0..1

    def info(self) -> dict:
        """JSON-ready summary (summary.json's ``trim``)."""
        return {"distance": self.distance, "faces": len(self.faces), "vertices": len(self.vertices),
                "faces_removed": self.faces_removed, "area_removed": self.area_removed,
                "area_removed_share": self.area_share}


def trim_mesh(vertices: np.ndarray, faces: np.ndarray, tree, distance: float) -> Trimmed:
    """The mesh without its faces farther than ``distance`` from every point of ``tree``
    (see :func:`face_distances`), and without the pieces that leaves smaller than a disc of
    radius ``distance`` (what a stray point or two supports on a cap: islands); unused
    vertices dropped, the rest renumbered."""
    from sdfrecon.geometry import vertex_components

    faces = np.asarray(faces, dtype=np.int64)
    keep = face_distances(vertices, faces, tree) <= distance
    area = face_areas(vertices, faces)
    if keep.any():
        label = vertex_components(faces[keep], len(vertices))[faces[keep][:, 0]]
        piece_area = np.bincount(label, weights=area[keep])
        keep[np.flatnonzero(keep)[piece_area[label] < math.pi * distance**2]] = False
    used, inverse = np.unique(faces[keep].ravel(), return_inverse=True)
    total = float(area.sum())
    removed = float(area[~keep].sum())
    return Trimmed(np.asarray(vertices, dtype=np.float64)[used], inverse.reshape(-1, 3).astype(np.int64),
                   used, float(distance), int(np.count_nonzero(~keep)), removed,
                   removed / total if total > 0 else 0.0)


def unsupported_faces(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray,
                      trim: float | str = "auto") -> dict[str, float]:
    """``evaluate --input``: the area of the mesh that a trim would remove.

    Returns ``trim_distance`` (the cloud's units; auto: ``TRIM_SPACINGS`` median spacings of
    ``points`` (N, 3)), ``unsupported_area`` (units squared) and ``unsupported_area_share``
    (of the mesh's area, 0..1): the faces farther than that distance from every point.
    """
    from sdfrecon.geometry import exact_tree, median_spacing

    points = np.asarray(points, dtype=np.float64)
    tree = exact_tree(points)
    distance = trim_distance(trim, median_spacing(points, tree))
    trimmed = trim_mesh(vertices, faces, tree, distance)
    return {"trim_distance": distance, "unsupported_area": trimmed.area_removed,
            "unsupported_area_share": trimmed.area_share}


def trimmed_path(output):
    """Where the trimmed mesh goes: beside ``output`` (a Path), out/bunny.obj ->
    out/bunny.trimmed.obj."""
    return output.with_name(output.stem + ".trimmed" + output.suffix)
