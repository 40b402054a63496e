"""sdfrecon: watertight meshes from point clouds with a SIREN signed distance function.

The stages, one package each (see docs/design.md)::

    io (file -> PointCloud) -> cloud (clean, normals, normalise) -> sdf (SIREN, train,
      marching cubes) -> io (mesh file);  evaluation (metrics, Poisson baseline) beside it,
      image (SIREN fits to images) beside that, cli (the ``sdfrecon`` command) on top.

In Python (nothing is written; torch is imported on first use)::

    mesh = sdfrecon.reconstruct(points, normals, steps=500)   # a trimesh.Trimesh
    model = sdfrecon.fit(points); model.sdf(x); model.gradient(x); model.mesh(resolution=128)
    model = sdfrecon.load("out/bunny.run/checkpoint.pt"); sdfrecon.evaluate(mesh, reference)
"""

from sdfrecon.api import FittedSdf, evaluate, fit, load, reconstruct
from sdfrecon.config import (
    CleanConfig,
    ExtractConfig,
    LossConfig,
    NormalizationConfig,
    NormalsConfig,
    ReconstructConfig,
    SamplingConfig,
    SirenConfig,
    TrainConfig,
)
from sdfrecon.errors import InputError, TrainingError

__version__ = "0.1.0"

__all__ = [
    "CleanConfig",
    "ExtractConfig",
    "FittedSdf",
    "InputError",
    "LossConfig",
    "NormalizationConfig",
    "NormalsConfig",
    "ReconstructConfig",
    "SamplingConfig",
    "SirenConfig",
    "TrainConfig",
    "TrainingError",
    "evaluate",
    "fit",
    "load",
    "reconstruct",
]
