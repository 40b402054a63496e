"""sdfrecon: watertight meshes from point clouds with a SIREN signed distance function.

The data flows one way through the package's modules::

    io (file -> PointCloud) -> normals -> normalize (kept, inverted at export)
      -> sampling -> siren + losses -> train -> extract (marching cubes) -> io (mesh file)

``metrics`` and the image module sit beside that flow and reuse its parts.
"""

__version__ = "0.1.0"
