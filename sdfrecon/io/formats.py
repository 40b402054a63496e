"""The one table of file formats: which suffixes are point clouds (and their reader and
writer) and which are meshes, and the first checks on an input path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sdfrecon.errors import InputError
from sdfrecon.io import arrays, pcd, ply, text

if TYPE_CHECKING:
    from sdfrecon.io.arrays import Arrays
    from sdfrecon.io.types import PointCloud

READERS: dict[str, Callable[[Path], Arrays]] = {
    ".xyz": text.read_xyz, ".txt": text.read_xyz, ".pts": text.read_xyz, ".ply": ply.read_cloud,
    ".pcd": pcd.read_pcd, ".obj": text.read_obj, ".off": text.read_off,
    ".npy": arrays.read_npy, ".npz": arrays.read_npz,
}
WRITERS: dict[str, Callable[[Path, PointCloud], None]] = {
    ".xyz": text.write_xyz, ".txt": text.write_xyz, ".pts": text.write_xyz, ".ply": ply.write_cloud,
    ".npy": arrays.write_npy, ".npz": arrays.write_npz, ".pcd": pcd.write_pcd,
}
POINT_CLOUD_SUFFIXES: tuple[str, ...] = tuple(READERS)
MESH_SUFFIXES: tuple[str, ...] = (".obj", ".ply", ".stl", ".glb", ".off")  # through trimesh


def check_input_file(path: Path, suffixes: tuple[str, ...], kind: str) -> None:
    """The common first checks on an input path: it exists, is a file, has a known suffix."""
    if not path.exists():
        raise InputError(path, "no such file")
    if path.is_dir():
        raise InputError(path, "is a directory, not a file")
    if path.suffix.lower() not in suffixes:
        raise InputError(path, f"unknown {kind} format '{path.suffix}' "
                               f"(supported: {', '.join(suffixes)})")


def check_mesh_suffix(path: Path) -> None:
    """InputError unless ``path`` names a mesh format we write (by its suffix)."""
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise InputError(path, f"unknown mesh format '{path.suffix}' "
                               f"(supported: {', '.join(MESH_SUFFIXES)})")
