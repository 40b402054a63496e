"""The Python API: point cloud in memory -> fitted SDF -> mesh, without writing any file.

    import sdfrecon
    mesh = sdfrecon.reconstruct(points, normals, steps=500, resolution=128)  # trimesh.Trimesh
    model = sdfrecon.fit(points, normals)        # model.sdf(x), model.gradient(x), model.mesh()
    sdfrecon.evaluate(mesh, reference_mesh)      # {'chamfer_l1': ..., 'fscore@1%': ...}

Options are the fields of :class:`~sdfrecon.config.ReconstructConfig` by their bare names
(the command line's, with underscores): ``steps``, ``resolution``, ``hidden_features``,
``device``, ... Everything is in the input's coordinates; the normalisation into the unit
box is applied and inverted here. torch is imported on first use, not with ``sdfrecon``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sdfrecon.config import ReconstructConfig, with_options

if TYPE_CHECKING:
    import trimesh

    from sdfrecon.sdf.fit import SdfModel

CHUNK = 65536  # points per network evaluation in sdf() and gradient()


def _config(options: dict[str, Any], base: ReconstructConfig | None = None) -> ReconstructConfig:
    """``base`` (default: the command line's defaults) with ``options`` by name; TypeError
    (as for an unknown keyword argument) naming the option otherwise."""
    config = base if base is not None else ReconstructConfig()
    try:
        return with_options(config, options, "sdfrecon")
    except ValueError as err:
        raise TypeError(f"{err} (options are ReconstructConfig's fields by name, e.g. steps, "
                        "resolution, hidden_features, device)") from None


def _arrays(points: Any, normals: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """(N, 3) arrays from numpy-like input, an Open3D point cloud or a sdfrecon PointCloud."""
    if hasattr(points, "has_normals") and hasattr(points, "points"):  # open3d.geometry.PointCloud
        if normals is None and points.has_normals():
            normals = np.asarray(points.normals)
        points = np.asarray(points.points)
    elif hasattr(points, "points") and hasattr(points, "normals"):  # sdfrecon.io.PointCloud
        normals = points.normals if normals is None else normals
        points = points.points
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must have shape (N, 3), got {points.shape}")
    if normals is not None:
        normals = np.asarray(normals, dtype=np.float64)
        if normals.shape != points.shape:
            raise ValueError(f"normals must have shape {points.shape} like the points, got {normals.shape}")
    return points, normals


class FittedSdf:
    """A trained signed distance function, queried in the input's coordinates.

    ``sdf(x)`` is in input units (negative inside); ``gradient(x)`` is d sdf / dx (unit
    length near the surface). Both take (N, 3) or (3,) arrays and evaluate in chunks.
    """

    def __init__(self, model: SdfModel, device: str = "auto", support: np.ndarray | None = None):
        from sdfrecon.sdf.train import resolve_device

        self.model = model
        self.device = resolve_device(device)
        self.model.network.to(self.device).eval()
        self._support = support  # training points in normalised units, for mesh()

    @property
    def config(self) -> ReconstructConfig:
        return self.model.config

    def _field(self, x: np.ndarray, with_gradient: bool) -> tuple[np.ndarray, np.ndarray | None]:
        import torch

        from sdfrecon.sdf.derivatives import value_and_gradient

        x = np.asarray(x, dtype=np.float64)
        single = x.ndim == 1
        x = x.reshape(-1, 3) if single else x
        if x.ndim != 2 or x.shape[1] != 3:
            raise ValueError(f"x must have shape (N, 3) or (3,), got {x.shape}")
        unit = self.model.normalization.to_unit(x).astype(np.float32)
        values = np.empty(len(x), dtype=np.float64)
        grads = np.empty((len(x), 3), dtype=np.float64) if with_gradient else None
        network = self.model.network
        for start in range(0, len(x), CHUNK):
            batch = torch.from_numpy(unit[start:start + CHUNK]).to(self.device)
            if with_gradient:
                value, grad = value_and_gradient(network, batch, create_graph=False)
                grads[start:start + CHUNK] = grad.detach().cpu().numpy()
            else:
                with torch.no_grad():
                    value = network(batch)
            values[start:start + CHUNK] = value.detach().cpu().numpy()
        values = values / self.model.normalization.scale  # normalised units -> input units
        if single:
            return values[0], (grads[0] if grads is not None else None)
        return values, grads

    def sdf(self, x: np.ndarray) -> np.ndarray:
        """Signed distance (N,) in input units at points x (N, 3) in input coordinates."""
        return self._field(x, False)[0]

    def gradient(self, x: np.ndarray) -> np.ndarray:
        """d sdf / dx (N, 3) at points x (N, 3): the same in input and normalised units,
        since the normalisation is one uniform scale and a shift."""
        return self._field(x, True)[1]

    def mesh(self, resolution: int | None = None, **options: Any) -> trimesh.Trimesh:
        """The zero level set by marching cubes, in input coordinates, with the field's
        normals. ``resolution`` and ``options`` (ExtractConfig's fields, e.g.
        keep_components='all') default to the model's config."""
        import trimesh

        from sdfrecon.errors import TrainingError
        from sdfrecon.reconstruction import mesh_from_model

        if resolution is not None:
            options = {"resolution": resolution, **options}
        extract = _config(options, self.config).extract
        try:
            result = mesh_from_model(self.model, extract, self.device, self._support)
        except TrainingError as err:
            raise RuntimeError(str(err)) from None
        if len(result.faces) == 0:
            raise RuntimeError("no surface near the training points (every component was farther "
                               "than component_distance): train longer, or keep_components='all'")
        return trimesh.Trimesh(result.vertices, result.faces, vertex_normals=result.normals,
                               process=False)

    def save(self, path: str | Path, overwrite: bool = False) -> None:
        """A checkpoint that ``sdfrecon extract`` and :func:`load` read (without the
        optimiser's moments, so it does not ``--resume`` exactly), written atomically."""
        import torch

        from sdfrecon.io.atomic import check_writable
        from sdfrecon.sdf.checkpoint import save_checkpoint
        from sdfrecon.sdf.optim import Adam
        from sdfrecon.sdf.train import TrainState

        check_writable(path, overwrite)
        network = self.model.network
        state = TrainState(step=self.config.train.steps)
        checkpoint = self.model.to_checkpoint(Adam(network.parameters()), state,
                                              torch.Generator())
        save_checkpoint(Path(path), checkpoint)


def fit(points: Any, normals: Any = None, **options: Any) -> FittedSdf:
    """Train a SIREN SDF on a cloud: points (N, 3) in any units (a numpy array, an Open3D
    point cloud, or a :class:`sdfrecon.io.PointCloud`), normals (N, 3) or None (estimated
    and oriented as ``sdfrecon reconstruct`` does). ``options``: ReconstructConfig fields.

    Raises :class:`~sdfrecon.errors.InputError` for an unusable cloud (as the command
    line would) and TypeError for an unknown option. Writes nothing.
    """
    from sdfrecon.cloud.normalize import Normalization
    from sdfrecon.cloud.prepare import prepare_cloud
    from sdfrecon.io.pointcloud import validate_cloud
    from sdfrecon.sdf.fit import fit_sdf
    from sdfrecon.sdf.train import resolve_device

    config = _config(options)
    points, normals = _arrays(points, normals)
    cloud = validate_cloud("points", points, normals)
    cloud, _ = prepare_cloud(cloud, config, "points")
    normalization = Normalization.fit(cloud.points, config.normalization)
    unit = normalization.to_unit(cloud.points)
    device = resolve_device(config.train.device)
    model, _ = fit_sdf(unit, cloud.normals, normalization, config, device)
    return FittedSdf(model, config.train.device, support=unit)


def reconstruct(points: Any, normals: Any = None, **options: Any) -> trimesh.Trimesh:
    """A watertight mesh of the cloud, in its coordinates: :func:`fit`, then
    :meth:`FittedSdf.mesh` (the same stages as ``sdfrecon reconstruct``, in memory)."""
    return fit(points, normals, **options).mesh()


def load(checkpoint: str | Path, device: str = "auto") -> FittedSdf:
    """The model of a checkpoint (``<run>/checkpoint.pt`` of ``sdfrecon reconstruct``, or
    :meth:`FittedSdf.save`); InputError for a missing or damaged file."""
    from sdfrecon.reconstruction import load_model

    return FittedSdf(load_model(Path(checkpoint)), device)


def evaluate(mesh: trimesh.Trimesh, reference: Any, samples: int = 100_000, seed: int = 0,
             tau_fractions: Sequence[float] | None = None, exact: bool = True) -> dict:
    """The metrics of ``sdfrecon evaluate`` (Chamfer, Hausdorff, F-scores, normal
    consistency, ...; see :data:`sdfrecon.evaluation.scoring.CONVENTIONS`) of ``mesh``
    against ``reference``: a trimesh mesh, an (M, 3) array of points, or a file path."""
    import trimesh

    from sdfrecon.evaluation.scoring import DEFAULT_TAUS, evaluate_mesh, load_reference
    from sdfrecon.io import PointCloud

    if isinstance(reference, (str, Path)):
        reference = load_reference(reference)
    elif not isinstance(reference, (trimesh.Trimesh, PointCloud)):
        reference = PointCloud(*_arrays(reference, None))
    taus = DEFAULT_TAUS if tau_fractions is None else tau_fractions
    return evaluate_mesh(mesh, reference, samples, seed, taus, exact)
