"""A headless mesh renderer: a numpy software rasteriser (scan lines, z-buffer) with
Lambert light from beside the camera, interpolated from corner normals, and 2x2
supersampling.

Why not a library (measured on this project's CPU machine, docs/figures.md): matplotlib's
3D axes sort whole faces by depth (no z-buffer: back faces show through in places) and took
4x as long as this for the 278k-face subdivided bunny; Open3D's offscreen renderer needs a
GPU API (here: "Failed to load vulkan library"). This needs numpy only; its cost grows
with the pixels covered (one step per covered pixel, front and back) and a mesh with more
faces than the picture has pixels is first thinned by vertex clustering below a pixel.
Orthographic projection, so meshes drawn from one :class:`Camera` compare in size.

Coordinates: the camera looks along its -z axis; image rows grow downwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Three-quarter views around the vertical (y) axis: front-left, back-right and the left side.
VIEWS: tuple[tuple[float, float], ...] = ((-35.0, 20.0), (145.0, 20.0), (60.0, 20.0))
MESH_COLOUR = (0.62, 0.70, 0.84)  # light steel blue, far from the background's white
BACKGROUND = (1.0, 1.0, 1.0)


def rotation(azimuth: float, elevation: float) -> np.ndarray:
    """World -> camera rotation (3, 3): turn by ``azimuth`` degrees about the world's y
    (up) axis, then tilt by ``elevation`` degrees so the camera looks down on the object."""
    a, e = np.radians(azimuth), np.radians(elevation)
    turn = np.array([[np.cos(a), 0.0, -np.sin(a)], [0.0, 1.0, 0.0], [np.sin(a), 0.0, np.cos(a)]])
    tilt = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(e), -np.sin(e)], [0.0, np.sin(e), np.cos(e)]])
    return tilt @ turn


@dataclass(frozen=True)
class Camera:
    """An orthographic camera framing the ball (centre, radius) from (azimuth, elevation)."""

    centre: tuple[float, float, float]
    radius: float
    azimuth: float = VIEWS[0][0]
    elevation: float = VIEWS[0][1]

    @staticmethod
    def framing(points: Sequence[np.ndarray], azimuth: float = VIEWS[0][0],
                elevation: float = VIEWS[0][1]) -> Camera:
        """A camera whose view holds every array of points (N_i, 3) from any direction:
        the centre of their joint bounding box and the radius of the ball around it."""
        stacked = np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1, 3) for p in points])
        if len(stacked) == 0:
            return Camera((0.0, 0.0, 0.0), 1.0, azimuth, elevation)
        low, high = stacked.min(axis=0), stacked.max(axis=0)
        centre = (low + high) / 2
        radius = float(np.linalg.norm(stacked - centre, axis=1).max()) or 1.0
        return Camera(tuple(float(c) for c in centre), radius, azimuth, elevation)

    def turned(self, azimuth: float, elevation: float) -> Camera:
        return Camera(self.centre, self.radius, azimuth, elevation)

    def project(self, points: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        """World points (N, 3) -> pixel coordinates (N, 2) (column, row; pixel centres at
        .5) and depth (N,) (larger is farther) in a size x size image."""
        cam = (np.asarray(points, dtype=np.float64) - self.centre) @ rotation(self.azimuth, self.elevation).T
        scale = 0.5 * size / (1.04 * self.radius)
        uv = np.empty((len(cam), 2))
        uv[:, 0] = size / 2 + cam[:, 0] * scale
        uv[:, 1] = size / 2 - cam[:, 1] * scale
        return uv, -cam[:, 2]


def cluster_vertices(vertices: np.ndarray, faces: np.ndarray, cell: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Decimate by vertex clustering: vertices in one cube of edge ``cell`` merge into their
    mean, faces that collapse are dropped. With ``cell`` below a pixel the picture does not
    change, and a 2M-face mesh shrinks to about as many faces as it covers pixels."""
    keys = np.floor((vertices - vertices.min(axis=0)) / cell).astype(np.int64)
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    merged = np.stack([np.bincount(inverse, vertices[:, k], len(counts)) for k in range(3)], axis=1)
    merged /= counts[:, None]
    f = inverse[faces]
    keep = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
    return merged, f[keep]


def _unit(v: np.ndarray) -> np.ndarray:
    length = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(length > 0, length, 1.0)


def corner_normals(vertices: np.ndarray, faces: np.ndarray, crease: float = 40.0) -> np.ndarray:
    """Unit normals (F, 3, 3) at each face's corners: the area-weighted vertex normal, or the
    face's own normal where they differ by more than ``crease`` degrees (so the edges of a
    cube or of fandisk stay sharp while a marching-cubes surface shades smoothly)."""
    tri = vertices[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    index, weights = faces.reshape(-1), np.repeat(face_n, 3, axis=0)
    summed = np.stack([np.bincount(index, weights[:, k], len(vertices)) for k in range(3)], axis=1)
    smooth, flat = _unit(summed)[faces], _unit(face_n)[:, None, :]
    sharp = (smooth * flat).sum(axis=2) < np.cos(np.radians(crease))
    return np.where(sharp[..., None], flat, smooth)


def _fragments(uv: np.ndarray, depth: np.ndarray, faces: np.ndarray, size: int, cull: bool = False
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every (pixel, face) pair where a pixel centre lies in a projected triangle, by scan
    lines: each barycentric weight w_k = a_k x + b_k y + c_k is affine in the pixel position,
    so on a row y the triangle covers the x where all three are >= 0, an interval found
    from three divisions. The work is one step per (triangle, row) plus one per covered
    pixel, whatever the triangles' sizes. Returns pixel index (K,), depth (K,), face index
    (K,) and the barycentric weights (K, 3). cull: skip the faces turned away (for a closed,
    outward mesh only).
    """
    tri = uv[faces] - 0.5  # pixel centres at integer coordinates
    x, y = tri[..., 0], tri[..., 1]
    lo = np.maximum(np.ceil(tri.min(axis=1)), 0).astype(np.int64)
    hi = np.minimum(np.floor(tri.max(axis=1)), size - 1).astype(np.int64)
    area = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (x[:, 2] - x[:, 0]) * (y[:, 1] - y[:, 0])
    # cull: an outward face seen from outside winds clockwise on screen (rows grow downwards)
    facing = area < -1e-12 if cull else np.abs(area) > 1e-12
    alive = np.flatnonzero((hi >= lo).all(axis=1) & facing)
    x, y, area, lo, hi = x[alive], y[alive], area[alive], lo[alive], hi[alive]
    # plane of w_k: the edge function of the edge opposite vertex k, over twice the area
    j, k = [1, 2, 0], [2, 0, 1]
    a = (y[:, j] - y[:, k]) / area[:, None]
    b = (x[:, k] - x[:, j]) / area[:, None]
    c = (x[:, j] * y[:, k] - x[:, k] * y[:, j]) / area[:, None]
    # one entry per (triangle, row)
    rows_per = hi[:, 1] - lo[:, 1] + 1
    t = np.repeat(np.arange(len(alive)), rows_per)
    start = np.cumsum(rows_per) - rows_per
    row = lo[t, 1] + (np.arange(len(t)) - start[t])
    offset = b[t] * row[:, None] + c[t]  # w_k = a_k x + offset_k on this row
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = -offset / a[t]
    tol = 1e-9
    left = np.where(a[t] > 0, bound, -np.inf).max(axis=1)
    right = np.where(a[t] < 0, bound, np.inf).min(axis=1)
    flat_ok = np.where(a[t] == 0, offset >= -tol, True).all(axis=1)
    x0 = np.maximum(np.ceil(left - tol), lo[t, 0])
    x1 = np.minimum(np.floor(right + tol), hi[t, 0])
    count = np.where(flat_ok & (x1 >= x0), x1 - x0 + 1, 0).astype(np.int64)
    # one entry per covered pixel
    span = np.repeat(np.arange(len(t)), count)
    first = np.cumsum(count) - count
    px = (x0[span] + (np.arange(len(span)) - first[span])).astype(np.int64)
    py = row[span]
    f = t[span]
    w = a[f] * px[:, None] + b[f] * py[:, None] + c[f]
    keep = (w >= -1e-6).all(axis=1)  # drops rounding strays at the interval ends
    px, py, f, w = px[keep], py[keep], f[keep], w[keep]
    face = alive[f]
    return py * size + px, (w * depth[faces[face]]).sum(axis=1), face, w


@dataclass
class PreparedMesh:
    """A mesh ready to draw at one pixel size: thinned to what the pixels can show, with
    its corner normals computed once for all views."""

    vertices: np.ndarray  # (V, 3) float64
    faces: np.ndarray  # (F, 3) int64
    normals: np.ndarray  # (F, 3, 3) unit corner normals
    closed: bool = False  # a closed surface with outward, consistent winding: back faces can be culled

    @staticmethod
    def of(vertices: np.ndarray, faces: np.ndarray, camera: Camera, pixels: int) -> PreparedMesh:
        """Thin by vertex clustering (cells of 3/4 pixel) when the mesh has more faces than
        half the pixels of a pixels x pixels picture of camera's ball; orient a closed mesh
        outward so that its back faces (half the work) can be skipped."""
        vertices = np.asarray(vertices, dtype=np.float64)
        faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
        if len(faces) > pixels * pixels // 2:
            vertices, faces = cluster_vertices(vertices, faces, 0.75 * 2.08 * camera.radius / pixels)
        closed = closed_and_consistent(faces, len(vertices))
        if closed:
            tri = vertices[faces]
            if np.einsum("ij,ij->", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) < 0:  # inward
                faces = faces[:, [0, 2, 1]]
        return PreparedMesh(vertices, faces, corner_normals(vertices, faces), closed)


def closed_and_consistent(faces: np.ndarray, n_vertices: int) -> bool:
    """Whether every directed edge appears once and its reverse once: a closed surface whose
    faces all wind the same way, so from outside only its front faces can be seen."""
    if len(faces) == 0:
        return False
    a = faces.reshape(-1)
    b = faces[:, [1, 2, 0]].reshape(-1)
    directed = np.sort(a * n_vertices + b)
    if (directed[1:] == directed[:-1]).any():
        return False
    reverse = np.sort(b * n_vertices + a)
    return bool(np.array_equal(directed, reverse))


def render_mesh(vertices: np.ndarray | PreparedMesh, faces: np.ndarray | None, camera: Camera,
                size: int = 400, colour: Sequence[float] = MESH_COLOUR, supersample: int = 2,
                outline: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Shade a triangle mesh (V, 3), (F, 3) (or a :class:`PreparedMesh` for size x
    supersample pixels, with faces None) from ``camera`` into a size x size picture.

    Light: Lambert (two-sided, so flipped faces show too) from a lamp above-left of the
    camera plus ambient, interpolated from corner normals; the silhouette gets a dark
    outline. supersample renders at k x size and averages k x k blocks (anti-aliasing).
    Returns the RGB image (size, size, 3) float in [0, 1] and the coverage (size, size) in [0, 1].
    """
    big = size * max(1, supersample)
    mesh = vertices if isinstance(vertices, PreparedMesh) else PreparedMesh.of(vertices, faces, camera, big)
    image = np.ones((big * big, 3)) * BACKGROUND
    mask = np.zeros(big * big)
    if len(mesh.faces):
        uv, depth = camera.project(mesh.vertices, big)
        pix, frag_depth, frag_face, bary = _fragments(uv, depth, mesh.faces, big, mesh.closed)
        # z-buffer: sort by pixel, then depth (quantised to 2^20 levels over the scene), in
        # one integer key; the first fragment of each pixel is the nearest
        d = frag_depth - frag_depth.min()
        level = np.round(d * ((2**20 - 1) / max(float(d.max()), 1e-300))).astype(np.int64)
        order = np.argsort(pix * 2**20 + level, kind="stable")
        first = np.ones(len(order), bool)
        first[1:] = pix[order[1:]] != pix[order[:-1]]
        nearest = order[first]
        # only the light's direction and the view axis matter: two dot products per corner
        turn = rotation(camera.azimuth, camera.elevation)
        light = _unit(np.array([-0.35, 0.45, 1.0])) @ turn  # the lamp in world coordinates
        corners = mesh.normals[frag_face[nearest]].reshape(-1, 3)
        w = bary[nearest]
        diffuse = (w * np.abs(corners @ light).reshape(-1, 3)).sum(axis=1)
        facing = np.abs(corners @ turn[2]).reshape(-1, 3) ** 2  # cos^2 of the view angle
        facing = facing * facing
        shine = (w * (facing * facing * facing)).sum(axis=1)  # cos^24: a soft highlight facing the camera
        shade = (0.28 + 0.72 * diffuse)[:, None] * np.asarray(colour)[None] + 0.18 * shine[:, None]
        image[pix[nearest]] = np.clip(shade, 0.0, 1.0)
        mask[pix[nearest]] = 1.0
    image, mask = image.reshape(big, big, 3), mask.reshape(big, big)
    if outline and mask.any():
        edge = np.zeros_like(mask, dtype=bool)
        inside = mask > 0
        edge[1:] |= inside[1:] != inside[:-1]
        edge[:-1] |= inside[1:] != inside[:-1]
        edge[:, 1:] |= inside[:, 1:] != inside[:, :-1]
        edge[:, :-1] |= inside[:, 1:] != inside[:, :-1]
        image[edge & inside] *= 0.35
    if supersample > 1:
        k = supersample
        image = image.reshape(size, k, size, k, 3).mean(axis=(1, 3))
        mask = mask.reshape(size, k, size, k).mean(axis=(1, 3))
    return image, mask


def render_views(vertices: np.ndarray, faces: np.ndarray, camera: Camera,
                 views: Sequence[tuple[float, float]] = VIEWS, size: int = 400,
                 supersample: int = 2) -> list[np.ndarray]:
    """The mesh from each (azimuth, elevation) of ``views``, framed by ``camera``'s ball
    (thinned and shaded once for all views)."""
    mesh = PreparedMesh.of(vertices, faces, camera, size * supersample)
    return [render_mesh(mesh, None, camera.turned(a, e), size, supersample=supersample)[0]
            for a, e in views]
