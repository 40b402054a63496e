"""Reading and writing point clouds and meshes, with checks that name the file and problem."""

from sdfrecon.io.atomic import atomic_write
from sdfrecon.io.formats import MESH_SUFFIXES, POINT_CLOUD_SUFFIXES
from sdfrecon.io.mesh import load_mesh, save_mesh
from sdfrecon.io.pointcloud import load_point_cloud, save_point_cloud, validate_cloud
from sdfrecon.io.types import PointCloud

__all__ = [
    "MESH_SUFFIXES",
    "POINT_CLOUD_SUFFIXES",
    "PointCloud",
    "atomic_write",
    "load_mesh",
    "load_point_cloud",
    "save_mesh",
    "save_point_cloud",
    "validate_cloud",
]
